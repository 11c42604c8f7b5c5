/**
 * `deno task compile`: build the single `mitmdeno` binary with the flags the runtime needs baked in
 * and every file loaded at run time included (addon API, workers, built-in addons).
 *
 * `deno compile` downloads its base runtime (denort) unless `DENORT_BIN` points at one. Offline without
 * it, this fails with one clear line. Usage: `deno task compile [--output dist/mitmdeno]`.
 */
import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "./runtime_flags.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** The `deno compile` arguments (exported for the test that checks them). */
export function compileArgs(output: string): string[] {
  return [
    "compile",
    ...RUNTIME_FLAGS,
    "--allow-all",
    "--no-check",
    // files imported by computed specifiers at run time: the public API scripts import as "mitmdeno",
    // the test kit, script worker entry points and built-in addons
    "--include",
    `${ROOT}mod.ts`,
    "--include",
    `${ROOT}lib`,
    "--include",
    `${ROOT}addons`,
    // the web UI: index.html, styles and the bundle built by `deno task build:web`
    "--include",
    `${ROOT}web/index.html`,
    "--include",
    `${ROOT}web/static`,
    "--include",
    `${ROOT}web/dist`,
    ...(exists(`${ROOT}testing.ts`) ? ["--include", `${ROOT}testing.ts`] : []),
    "--output",
    output,
    `${ROOT}main.ts`,
  ];
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { output: { type: "string", short: "o" } } });
  const output = values.output ?? `${ROOT}dist/mitmdeno`;
  const denort = Deno.env.get("DENORT_BIN");
  if (denort && !exists(denort)) {
    console.error(`compile: DENORT_BIN=${denort} does not exist`);
    Deno.exit(1);
  }
  const r = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(output),
    stdout: "inherit",
    stderr: "piped",
  })
    .output();
  const err = new TextDecoder().decode(r.stderr);
  if (r.code !== 0) {
    if (!denort && /dns error|download|failed to lookup|error sending request/i.test(err)) {
      console.error(
        "compile: deno compile could not download its base runtime (denort) and DENORT_BIN is not set; " +
          "set DENORT_BIN=/path/to/denort (the denort of Deno " + Deno.version.deno + ") to compile offline.",
      );
    } else console.error(err);
    Deno.exit(1);
  }
  // A full `deno` binary given as DENORT_BIN produces a file that just runs deno: catch that.
  const v = await new Deno.Command(output, { args: ["--version"], stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(v.stdout);
  if (!out.startsWith("mitmdeno")) {
    console.error(
      `compile: ${output} does not run mitmdeno (DENORT_BIN is probably the deno CLI, not denort)`,
    );
    Deno.exit(1);
  }
  console.log(`compile: built ${output} (${out.split("\n")[0]})`);
}
