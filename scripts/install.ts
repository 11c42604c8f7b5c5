/**
 * `deno task install`: put a `mitmdeno` command on PATH that runs this checkout with the flags the runtime
 * needs (worker permissions, the V8 flags of `deno task start`) and this project's import map and lock.
 *
 * It runs `deno install --global` (a small shell script in `$DENO_INSTALL_ROOT/bin`, default `~/.deno/bin`),
 * so the command keeps using this checkout: `git pull` updates it, moving the checkout needs a re-install.
 * Usage: `deno task install [--root DIR] [--name NAME]`.
 */
import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "./runtime_flags.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** The `deno install` arguments (exported for the test that checks them). */
export function installArgs(opts: { root?: string; name?: string } = {}): string[] {
  return [
    "install",
    "--global",
    "--force",
    "--name",
    opts.name ?? "mitmdeno",
    ...(opts.root ? ["--root", opts.root] : []),
    ...RUNTIME_FLAGS,
    "--allow-all",
    // the import map (npm packages by bare name) and its lock
    "--config",
    `${ROOT}deno.json`,
    `--lock=${ROOT}deno.lock`,
    `${ROOT}main.ts`,
  ];
}

/** Where `deno install` puts the command: `root/bin`, `$DENO_INSTALL_ROOT/bin` or `~/.deno/bin`. */
export function binDir(root?: string): string {
  const r = root ?? Deno.env.get("DENO_INSTALL_ROOT") ?? `${Deno.env.get("HOME") ?? ""}/.deno`;
  return `${r.replace(/\/+$/, "")}/bin`;
}

/** Whether `deno` is found on PATH. */
function denoOnPath(): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d || "."}/deno`).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * The command deno writes runs `deno` from PATH. Run through `npx deno@...` there is none: point the command
 * at the Deno running this script instead, so it works (and stays on the pinned version).
 */
function pinDeno(shim: string): void {
  if (denoOnPath()) return;
  const text = Deno.readTextFileSync(shim);
  const exe = Deno.execPath();
  Deno.writeTextFileSync(shim, text.replace(/^exec deno /m, `exec '${exe.replaceAll("'", "'\\''")}' `));
  console.log(
    `install: no deno on PATH; the command runs ${exe} (\`npm install -g deno\` for a lasting one)`,
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { root: { type: "string" }, name: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("Usage: deno task install [--root DIR] [--name NAME]\n\nInstalls the mitmdeno command.");
    Deno.exit(0);
  }
  const name = values.name ?? "mitmdeno";
  const r = await new Deno.Command(Deno.execPath(), {
    args: installArgs({ root: values.root, name }),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) {
    console.error(new TextDecoder().decode(r.stderr));
    Deno.exit(1);
  }
  const bin = binDir(values.root);
  pinDeno(`${bin}/${name}`);
  const onPath = (Deno.env.get("PATH") ?? "").split(":").some((p) => p.replace(/\/+$/, "") === bin);
  console.log(`install: ${bin}/${name} runs ${ROOT}main.ts`);
  if (!onPath) console.log(`install: add it to PATH:  export PATH="${bin}:$PATH"`);
  console.log(`install: try  ${name} --version`);
}
