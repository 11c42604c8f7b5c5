/**
 * `mitmdeno new-addon [DIR/]NAME [--dir DIR] [--force]`: write a starter addon (`NAME.ts`), its test
 * (`NAME_test.ts`) and a `deno.json` whose import map resolves `mitmdeno` and `mitmdeno/testing`, so `deno test`
 * passes at once. An existing deno.json is kept and only its import map is updated; `--force` overwrites the two
 * addon files only; `--update` writes only deno.json (and the vendored API, see below). Nothing is ever written inside mitmdeno's own source tree. The files pass `deno fmt --check`
 * and `deno lint`; the import map uses absolute URLs, so the addon's folder can move.
 *
 * Where the API comes from:
 * - run from a source checkout: absolute `file://` URLs of this checkout's `mod.ts` and `testing.ts`;
 * - run as the compiled binary (its sources live in an embedded file system no other process can read):
 *   the API sources (`mod.ts`, `testing.ts`, `deno.json`, `lib/`) are copied from the binary into
 *   `DIR/.mitmdeno/<version>/` and the import map points there. Re-running `new-addon` refreshes them.
 */
import { VERSION } from "./version.ts";

const SOURCE_ROOT = new URL("../", import.meta.url);

/** What {@link scaffoldAddon} wrote. */
export interface ScaffoldResult {
  dir: string;
  files: string[];
  /** Where "mitmdeno" resolves to. */
  api: string;
  /** Whether an existing deno.json got the import map entries (instead of a new deno.json). */
  merged: boolean;
}

function pascal(name: string): string {
  return name.split(/[_-]+/).filter(Boolean).map((p) => p[0].toUpperCase() + p.slice(1)).join("");
}

function exists(p: string | URL): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether this process runs from `deno compile`'s embedded file system. */
export function isCompiled(root: URL = SOURCE_ROOT): boolean {
  return root.protocol === "file:" &&
    /[\\/]deno-compile-[^\\/]+[\\/]/.test(decodeURIComponent(root.pathname));
}

function copyTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    if (e.isDirectory) copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile && /\.(ts|json)$/.test(e.name)) {
      Deno.copyFileSync(`${from}/${e.name}`, `${to}/${e.name}`);
    }
  }
}

/** The directory holding mod.ts/testing.ts for `dir`'s import map (vendoring them when compiled). */
function apiRoot(dir: string): URL {
  if (!isCompiled()) return SOURCE_ROOT;
  const src = decodeURIComponent(SOURCE_ROOT.pathname);
  const dest = `${dir}/.mitmdeno/${VERSION}`;
  for (const f of ["mod.ts", "testing.ts"]) Deno.copyFileSync(`${src}${f}`, `${dest}/${f}`);
  try {
    Deno.copyFileSync(`${src}deno.json`, `${dest}/deno.json`);
  } catch {
    // lib/version.ts imports ../deno.json; the API graph needs nothing else from it
    Deno.writeTextFileSync(
      `${dest}/deno.json`,
      JSON.stringify({ name: "@mitmdeno/mitmdeno", version: VERSION }) + "\n",
    );
  }
  copyTree(`${src}lib`, `${dest}/lib`);
  return new URL(`file://${dest}/`);
}

/** Every .ts file under `dir` (none if it does not exist). */
function tsFiles(dir: string, out: string[] = []): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.isDirectory) tsFiles(`${dir}/${e.name}`, out);
    else if (e.isFile && e.name.endsWith(".ts")) out.push(`${dir}/${e.name}`);
  }
  return out;
}

/**
 * The import map keys (npm packages) that the runtime's sources use: the API (mod.ts, testing.ts, lib/) and
 * the built-in addons, not the web UI's front end (preact) nor test-only packages. Some of these modules load
 * others by computed specifier, so this scans the source trees rather than following imports.
 */
function usedImports(keys: string[]): Set<string> {
  const src = decodeURIComponent(SOURCE_ROOT.pathname);
  const files = [`${src}mod.ts`, `${src}testing.ts`, ...tsFiles(`${src}lib`), ...tsFiles(`${src}addons`)];
  const used = new Set<string>();
  for (const f of files) {
    let text: string;
    try {
      text = Deno.readTextFileSync(f);
    } catch {
      continue;
    }
    for (const k of keys) {
      if (text.includes(`"${k}"`) || text.includes(`'${k}'`) || text.includes(`"${k}/`)) used.add(k);
    }
  }
  return used;
}

function snake(name: string): string {
  return name.replaceAll("-", "_");
}

function addonTemplate(name: string, cls: string): string {
  const opt = `${snake(name)}_header`;
  const header = `x-${name.replaceAll("_", "-").toLowerCase()}`;
  return `/**
 * ${name}: a mitmdeno addon. Run it with \`mitmdeno -s ${name}.ts\`, test it with \`deno test\`.
 * See docs/addons.md in mitmdeno for the events, options, commands and the test kit.
 */
import { ctx, type HTTPFlow, type Loader } from "mitmdeno";

/** Counts requests and adds a header to responses. */
export class ${cls} {
  num = 0;

  load(loader: Loader): void {
    loader.addOption(
      "${opt}",
      "str",
      "${header}",
      "Response header to add.",
    );
  }

  request(flow: HTTPFlow): void {
    this.num++;
    ctx.log.info(
      \`${name}: seen \${this.num} flows (\${flow.request.prettyUrl})\`,
    );
  }

  response(flow: HTTPFlow): void {
    flow.response?.headers.set(
      ctx.options.${opt},
      String(this.num),
    );
  }
}

export const addons = [new ${cls}()];
`;
}

function testTemplate(name: string, cls: string): string {
  const opt = `${snake(name)}_header`;
  const header = `x-${name.replaceAll("_", "-").toLowerCase()}`;
  return `import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { ${cls} } from "./${name}.ts";

Deno.test("${name} counts flows and sets its header", async () => {
  const addon = new ${cls}();
  await using tctx = await context(addon);
  const flow = tflow({ resp: true });
  await tctx.cycle(addon, flow);
  assert.equal(addon.num, 1);
  assert.equal(
    flow.response?.headers.get("${header}"),
    "1",
  );
  await tctx.waitForLog("seen 1 flows");

  await tctx.configure(addon, {
    ${opt}: "x-other",
  });
  const second = tflow({ resp: true });
  await tctx.cycle(addon, second);
  assert.equal(second.response?.headers.get("x-other"), "2");
});
`;
}

/** Where `new-addon ARG` writes: `DIR/NAME` splits into a folder and a name (`.ts` dropped). */
export function addonTarget(arg: string, dir = "."): { name: string; dir: string } {
  const i = arg.lastIndexOf("/");
  let name = i >= 0 ? arg.slice(i + 1) : arg;
  if (i >= 0) dir = arg.slice(0, i) || "/";
  name = name.replace(/\.[jt]s$/, "");
  return { name, dir };
}

function inside(child: string, parent: string): boolean {
  const p = parent.replace(/\/+$/, "");
  return child === p || child.startsWith(`${p}/`);
}

/** The real path of `dir`, or of its nearest existing ancestor joined with the rest. */
function realish(dir: string): string {
  const abs = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
  const parts = abs.split("/").filter(Boolean);
  for (let n = parts.length; n >= 0; n--) {
    try {
      const base = Deno.realPathSync(`/${parts.slice(0, n).join("/")}`);
      return [base.replace(/\/+$/, ""), ...parts.slice(n)].join("/") || "/";
    } catch { /* go up */ }
  }
  return abs;
}

/** Write the starter files for addon `name` into `dir`. Throws Error (with a message for the user). */
export async function scaffoldAddon(
  name: string,
  dir: string,
  opts: { force?: boolean; update?: boolean } = {},
): Promise<ScaffoldResult> {
  if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,39}$/.test(name)) {
    throw new Error(
      `invalid addon name "${name}": use up to 40 letters, digits, _ and - (starting with a letter)`,
    );
  }
  const target = realish(dir);
  if (!isCompiled()) {
    const own = decodeURIComponent(SOURCE_ROOT.pathname).replace(/\/+$/, "");
    if (inside(target, realish(own))) {
      throw new Error(
        `${target} is inside mitmdeno's own source tree (${own}); write the addon elsewhere, ` +
          `e.g. \`mitmdeno new-addon ~/addons/${name}\``,
      );
    }
  }
  Deno.mkdirSync(target, { recursive: true });
  dir = Deno.realPathSync(target);
  const cls = pascal(name);
  const files: [string, string][] = [
    [`${name}.ts`, addonTemplate(name, cls)],
    [`${name}_test.ts`, testTemplate(name, cls)],
  ];
  // --update: only the import map (and, from the binary, the vendored API), e.g. after upgrading mitmdeno
  if (opts.update) files.length = 0;
  for (const [f] of files) {
    if (!opts.force && exists(`${dir}/${f}`)) {
      throw new Error(`${dir}/${f} exists (use --force to overwrite it)`);
    }
  }
  if (isCompiled()) Deno.mkdirSync(`${dir}/.mitmdeno/${VERSION}`, { recursive: true });
  const root = apiRoot(dir);
  // the API's own npm dependencies resolve through the addon project's import map: only those it uses
  const own = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root))) as {
    imports?: Record<string, string>;
  };
  const npm = Object.entries(own.imports ?? {}).filter(([k, v]) =>
    !k.startsWith("mitmdeno") && v.startsWith("npm:")
  );
  const used = usedImports(npm.map(([k]) => k));
  const imports: Record<string, string> = {};
  for (const [k, v] of npm) if (used.has(k)) imports[k] = v;
  imports["mitmdeno"] = new URL("mod.ts", root).href;
  imports["mitmdeno/testing"] = new URL("testing.ts", root).href;
  // an existing deno.json (the user's project) is kept: only its import map gains these entries
  // `unstable: worker-options`: the test kit's sandboxed() runs scripts in workers with their own permissions
  let denoJson: Record<string, unknown> = {
    imports: {},
    unstable: ["worker-options"],
    compilerOptions: { strict: true },
  };
  let merged = false;
  if (exists(`${dir}/deno.json`)) {
    try {
      denoJson = JSON.parse(Deno.readTextFileSync(`${dir}/deno.json`));
      merged = true;
    } catch (e) {
      throw new Error(`${dir}/deno.json is not valid JSON (${(e as Error).message}); fix or remove it`);
    }
  }
  denoJson.imports = { ...(denoJson.imports as Record<string, string> ?? {}), ...imports };
  const unstable = Array.isArray(denoJson.unstable) ? denoJson.unstable as string[] : [];
  if (!unstable.includes("worker-options")) denoJson.unstable = [...unstable, "worker-options"];
  files.push(["deno.json", JSON.stringify(denoJson, null, 2) + "\n"]);
  for (const [f, text] of files) Deno.writeTextFileSync(`${dir}/${f}`, text);
  return { dir, files: files.map(([f]) => f), api: imports["mitmdeno"], merged };
}

const USAGE = "Usage: mitmdeno new-addon [DIR/]NAME [--dir DIR] [--force | --update]";

/** The `new-addon` subcommand. Returns the exit code. */
export async function newAddonMain(args: string[]): Promise<number> {
  let dir: string | undefined;
  let force = false;
  let update = false;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--dir" || a === "-d") dir = args[++i] ?? ".";
    else if (a.startsWith("--dir=")) dir = a.slice(6);
    else if (a === "--force" || a === "-f") force = true;
    else if (a === "--update") update = true;
    else if (a === "-h" || a === "--help") {
      console.log(
        `${USAGE}\n\nWrites NAME.ts, NAME_test.ts and deno.json (an existing deno.json only gains the import map ` +
          "entries) into DIR (default: the current folder). --force overwrites NAME.ts and NAME_test.ts; " +
          "--update only refreshes deno.json (and the copied API, from the compiled binary), e.g. after an upgrade.",
      );
      return 0;
    } else if (a.startsWith("-") && a !== "-") {
      console.error(`mitmdeno new-addon: unknown flag ${a}\n${USAGE}`);
      return 2;
    } else pos.push(a);
  }
  if (pos.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const t = addonTarget(pos[0], dir ?? ".");
  if (dir !== undefined && pos[0].includes("/")) {
    console.error(`mitmdeno new-addon: give the folder once: ${pos[0]} or --dir ${dir}`);
    return 2;
  }
  try {
    const r = await scaffoldAddon(t.name, t.dir, { force, update });
    const written = r.files.map((f) => `${r.dir}/${f}`);
    console.log(`Wrote ${written.join(", ")}${r.merged ? " (deno.json: import map entries added)" : ""}`);
    console.log(`"mitmdeno" resolves to ${r.api}`);
    console.log(`Next: cd ${r.dir} && deno test   (run it: mitmdeno -s ${t.name}.ts)`);
    return 0;
  } catch (e) {
    console.error(`mitmdeno new-addon: ${(e as Error).message}`);
    return 1;
  }
}
