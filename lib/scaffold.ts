/**
 * `mitmdeno new-addon NAME [--dir DIR] [--force]`: write a starter addon (`NAME.ts`), its test (`NAME_test.ts`)
 * and a `deno.json` whose import map resolves `mitmdeno` and `mitmdeno/testing`, so `deno test` passes at once.
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

function addonTemplate(name: string, cls: string): string {
  return `/**
 * ${name}: a mitmdeno addon. Run it with \`mitmdeno -s ${name}.ts\`, test it with \`deno test\`.
 * See docs/addons.md in mitmdeno for the events, options, commands and the test kit.
 */
import { ctx, type HTTPFlow, type Loader } from "mitmdeno";

/** Counts requests and adds a header to responses. */
export class ${cls} {
  num = 0;

  load(loader: Loader): void {
    loader.addOption("${name}_header", "str", "x-${name.replaceAll("_", "-")}", "Response header to add.");
  }

  request(flow: HTTPFlow): void {
    this.num++;
    ctx.log.info(\`${name}: seen \${this.num} flows (\${flow.request.prettyUrl})\`);
  }

  response(flow: HTTPFlow): void {
    flow.response?.headers.set(ctx.options.${name}_header, String(this.num));
  }
}

export const addons = [new ${cls}()];
`;
}

function testTemplate(name: string, cls: string): string {
  return `import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { ${cls} } from "./${name}.ts";

Deno.test("${name} counts flows and sets its header", async () => {
  const addon = new ${cls}();
  await using tctx = await context(addon);
  const flow = tflow({ resp: true });
  await tctx.cycle(addon, flow);
  assert.equal(addon.num, 1);
  assert.equal(flow.response?.headers.get("x-${name.replaceAll("_", "-")}"), "1");
  await tctx.waitForLog("seen 1 flows");

  await tctx.configure(addon, { ${name}_header: "x-other" });
  const second = tflow({ resp: true });
  await tctx.cycle(addon, second);
  assert.equal(second.response?.headers.get("x-other"), "2");
});
`;
}

/** Write the starter files for addon `name` into `dir`. Throws Error (with a message for the user). */
export function scaffoldAddon(name: string, dir: string, opts: { force?: boolean } = {}): ScaffoldResult {
  if (!/^[a-zA-Z][a-zA-Z0-9_]*$/.test(name)) {
    throw new Error(`invalid addon name "${name}": use letters, digits and _ (starting with a letter)`);
  }
  Deno.mkdirSync(dir, { recursive: true });
  dir = Deno.realPathSync(dir);
  const cls = pascal(name);
  const files: [string, string][] = [
    [`${name}.ts`, addonTemplate(name, cls)],
    [`${name}_test.ts`, testTemplate(name, cls)],
  ];
  for (const [f] of [...files, ["deno.json"]]) {
    if (!opts.force && exists(`${dir}/${f}`)) {
      throw new Error(`${dir}/${f} exists (use --force to overwrite)`);
    }
  }
  if (isCompiled()) Deno.mkdirSync(`${dir}/.mitmdeno/${VERSION}`, { recursive: true });
  const root = apiRoot(dir);
  // the API's own npm dependencies resolve through the addon project's import map
  const own = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root))) as {
    imports?: Record<string, string>;
  };
  const imports: Record<string, string> = {};
  for (const [k, v] of Object.entries(own.imports ?? {})) {
    if (!k.startsWith("mitmdeno") && v.startsWith("npm:")) imports[k] = v;
  }
  imports["mitmdeno"] = new URL("mod.ts", root).href;
  imports["mitmdeno/testing"] = new URL("testing.ts", root).href;
  const denoJson = { imports, compilerOptions: { strict: true } };
  files.push(["deno.json", JSON.stringify(denoJson, null, 2) + "\n"]);
  for (const [f, text] of files) Deno.writeTextFileSync(`${dir}/${f}`, text);
  return { dir, files: files.map(([f]) => f), api: imports["mitmdeno"] };
}

/** The `new-addon` subcommand. Returns the exit code. */
export function newAddonMain(args: string[]): number {
  let dir = ".";
  let force = false;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--dir" || a === "-d") dir = args[++i] ?? ".";
    else if (a.startsWith("--dir=")) dir = a.slice(6);
    else if (a === "--force" || a === "-f") force = true;
    else if (a === "-h" || a === "--help") {
      console.log(
        "Usage: mitmdeno new-addon NAME [--dir DIR] [--force]\n\nWrites NAME.ts, NAME_test.ts and deno.json.",
      );
      return 0;
    } else pos.push(a);
  }
  if (pos.length !== 1) {
    console.error("Usage: mitmdeno new-addon NAME [--dir DIR] [--force]");
    return 2;
  }
  try {
    const r = scaffoldAddon(pos[0], dir, { force });
    console.log(`Wrote ${r.files.map((f) => `${r.dir}/${f}`).join(", ")}`);
    console.log(`"mitmdeno" resolves to ${r.api}`);
    console.log(`Next: cd ${r.dir} && deno test   (run it: mitmdeno -s ${pos[0]}.ts)`);
    return 0;
  } catch (e) {
    console.error(`mitmdeno new-addon: ${(e as Error).message}`);
    return 1;
  }
}
