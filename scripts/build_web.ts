/**
 * `deno task build:web`: bundle the web UI (`web/src/app.tsx`, Preact) into `web/dist/app.js` with
 * `deno bundle`. Skipped when the bundle is newer than every source file (so the test, start and compile
 * tasks can depend on it for free). `--force` rebuilds.
 */
const ROOT = new URL("../", import.meta.url).pathname;
const SRC = `${ROOT}web/src`;
const OUT = `${ROOT}web/dist/app.js`;

function newest(dir: string): number {
  let t = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    t = Math.max(t, e.isDirectory ? newest(p) : Deno.statSync(p).mtime?.getTime() ?? 0);
  }
  return t;
}

if (import.meta.main) {
  let fresh = false;
  try {
    fresh = !Deno.args.includes("--force") &&
      (Deno.statSync(OUT).mtime?.getTime() ?? 0) >
        Math.max(newest(SRC), Deno.statSync(`${ROOT}deno.json`).mtime?.getTime() ?? 0);
  } catch { /* not built yet */ }
  if (!fresh) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--minify", "--platform", "browser", "-o", OUT, `${SRC}/app.tsx`],
      cwd: ROOT,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (r.code !== 0) {
      console.error("build:web: deno bundle failed");
      Deno.exit(1);
    }
    console.error(`build:web: wrote ${OUT}`);
  }
}
