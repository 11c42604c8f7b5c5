/**
 * The local module graph of a script, for the file watcher: the script and every local file it imports,
 * found by scanning the sources for import specifiers. This needs no `deno info` (absent from a compiled
 * binary) and no module loader: a regular expression over `import ... from "x"`, `export ... from "x"`,
 * `import "x"` and `import("x")` with a literal string. Only relative, absolute and `file:` specifiers
 * are followed; bare and remote specifiers ("mitmdeno", "npm:...") are not watched.
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

/** The script and the local files it imports, transitively (bounded to `limit` files). */
export async function moduleGraph(entry: string, limit = 500): Promise<string[]> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  while (queue.length && seen.size < limit) {
    const p = queue.shift()!;
    let src: string;
    try {
      src = await Deno.readTextFile(p);
    } catch {
      continue;
    }
    for (const dep of localImports(src, p)) {
      if (seen.has(dep) || !/\.(m?[jt]sx?|json)$/.test(dep)) continue;
      seen.add(dep);
      queue.push(dep);
    }
  }
  return [...seen];
}
