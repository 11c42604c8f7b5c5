/**
 * The local module graph of a script: the script and every local file it imports, found by scanning the
 * sources for import specifiers. The file watcher watches these files, and the sandbox grants read access
 * to exactly these files (see {@link sandboxReads}). This needs no `deno info` (absent from a compiled
 * binary) and no module loader: a regular expression over `import ... from "x"`, `export ... from "x"`,
 * `import "x"` and `import("x")` with a literal string. Only relative, absolute and `file:` specifiers
 * are followed; bare and remote specifiers ("mitmdeno", "npm:...") are not.
 *
 * The scan does not need to be exact for the sandbox to hold: Deno checks every module a script worker
 * loads against the worker's read permission, so an import the scan missed fails to load with Deno's
 * "Requires read access" error naming the file.
 */

const IMPORT_RE =
  /(?:^|[;\s}])(?:import|export)\s*(?:type\s+)?(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"'\n]+)["']|\bimport\s*\(\s*["']([^"'\n]+)["']\s*\)/g;

/** Strip comments (roughly: enough not to follow commented-out imports). */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** Local import specifiers of one source file, resolved to absolute paths. */
export function localImports(src: string, fromPath: string): string[] {
  const out = new Set<string>();
  const base = new URL(`file://${fromPath}`);
  for (const m of stripComments(src).matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (!spec) continue;
    if (
      !(spec.startsWith("./") || spec.startsWith("../") || spec.startsWith("/") || spec.startsWith("file:"))
    ) {
      continue;
    }
    try {
      const u = new URL(spec, base);
      if (u.protocol === "file:") out.add(decodeURIComponent(u.pathname));
    } catch { /* not a URL */ }
  }
  return [...out];
}

/** Files whose imports are followed (JSON, text and byte imports are leaves). */
const SOURCE = /\.(?:[mc]?[jt]sx?)$/;

/**
 * Every local file in the graph of `entry` (itself included), mapped to the file that first imports it
 * (null for `entry`). Bounded to `limit` files.
 */
export async function importEdges(entry: string, limit = 500): Promise<Map<string, string | null>> {
  const seen = new Map<string, string | null>([[entry, null]]);
  const queue = [entry];
  while (queue.length && seen.size < limit) {
    const p = queue.shift()!;
    if (!SOURCE.test(p)) continue;
    let src: string;
    try {
      src = await Deno.readTextFile(p);
    } catch {
      continue;
    }
    for (const dep of localImports(src, p)) {
      if (seen.has(dep)) continue;
      seen.set(dep, p);
      queue.push(dep);
    }
  }
  return seen;
}

/** The script and the local files it imports, transitively (bounded to `limit` files). */
export async function moduleGraph(entry: string, limit = 500): Promise<string[]> {
  return [...(await importEdges(entry, limit)).keys()];
}

/** An import a sandboxed script may not load. The message names the import and the importing file. */
export class ScriptImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScriptImportError";
  }
}

async function realPath(p: string): Promise<string | null> {
  try {
    return await Deno.realPath(p);
  } catch {
    return null;
  }
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith("/") ? dir : dir + "/");
}

/**
 * The files a sandboxed script's worker must be able to read to load the script: its local module graph,
 * each file checked to lie (after resolving symlinks) under the script's own folder or under a path of
 * `readGrants` (its `--script-allow read=` grants; true = every path). Throws {@link ScriptImportError}
 * for the first import outside both. Both the path as imported and its real path are returned (Deno
 * checks the former).
 */
export async function sandboxReads(entry: string, readGrants: string[] | boolean): Promise<string[]> {
  const edges = await importEdges(entry);
  const realEntry = (await realPath(entry)) ?? entry;
  const folder = realEntry.slice(0, realEntry.lastIndexOf("/")) || "/";
  const grants: string[] = [];
  if (Array.isArray(readGrants)) {
    for (const g of readGrants) grants.push((await realPath(g)) ?? g);
  }
  const out = new Set<string>();
  for (const [file, from] of edges) {
    const real = await realPath(file);
    // a missing file fails to load with Deno's own "not found" error
    if (real === null) continue;
    if (readGrants !== true && !isUnder(real, folder) && !grants.some((g) => isUnder(real, g))) {
      const via = real === file ? "" : ` (a link to ${real})`;
      throw new ScriptImportError(
        `import of ${file}${via}${from ? ` from ${from}` : ""} is outside the script's folder ${folder}; ` +
          `grant it with --script-allow "read=${real}"`,
      );
    }
    out.add(file);
    out.add(real);
  }
  return [...out];
}
