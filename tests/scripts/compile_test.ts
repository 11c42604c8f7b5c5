/** `deno task compile`: the flags baked in, and (where a denort runtime is available) the real binary. */
import assert from "node:assert/strict";
import { compileArgs } from "../../scripts/compile.ts";
import { RUNTIME_FLAGS } from "../../scripts/runtime_flags.ts";

Deno.test("runtime flags: `deno task start` runs with the same flags as the binary, bench and tests", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const task = config.tasks.start;
  const start = (typeof task === "string" ? task : task.command as string).split(/\s+/);
  for (const f of RUNTIME_FLAGS) assert.ok(start.includes(f), `deno task start lacks ${f}`);
});

Deno.test("compile: bakes in worker permissions and includes the runtime-loaded files", () => {
  const args = compileArgs("/tmp/out");
  for (const f of RUNTIME_FLAGS) assert.ok(args.includes(f), `${f} not baked in`);
  assert.ok(args.includes("--allow-all"));
  const included = args.filter((_, i) => args[i - 1] === "--include").map((p) => p.split("/").pop());
  for (const f of ["mod.ts", "lib", "addons", "index.html", "static", "dist"]) {
    assert.ok(included.includes(f), `${f} not included`);
  }
  assert.ok(args[args.length - 1].endsWith("main.ts"));
});

Deno.test("compile: fails with one clear line when no runtime can be had", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "scripts/compile.ts", "--output", "/tmp/mitmdeno-compile-test"],
    env: { DENORT_BIN: "/nonexistent/denort" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 1);
  assert.match(new TextDecoder().decode(r.stderr), /DENORT_BIN=\/nonexistent\/denort does not exist/);
});

const denort = Deno.env.get("DENORT_BIN");
Deno.test({
  name: denort
    ? "compile: the binary runs the proxy"
    : "compile: the binary runs the proxy [ignored: set DENORT_BIN to a denort runtime; none can be downloaded here]",
  ignore: !denort,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "scripts/compile.ts", "--output", `${out}/mitmdeno`],
      }).output();
      assert.equal(r.code, 0);
      const v = await new Deno.Command(`${out}/mitmdeno`, { args: ["--version"], stdout: "piped" }).output();
      assert.match(new TextDecoder().decode(v.stdout), /^mitmdeno /);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
