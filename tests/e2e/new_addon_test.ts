/** `mitmdeno new-addon [DIR/]NAME`: the starter addon, its test and deno.json work with plain `deno test`. */
import assert from "node:assert/strict";
import { runCli } from "./helpers.ts";
import { addonTarget, isCompiled, scaffoldAddon } from "../../lib/scaffold.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function deno(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const t = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: t.code, out: new TextDecoder().decode(t.stdout) + new TextDecoder().decode(t.stderr) };
}

Deno.test("new-addon DIR/NAME: scaffold passes deno test, fmt and lint, and keeps working when moved", async () => {
  const base = await Deno.makeTempDir();
  try {
    const r = await runCli(["new-addon", `${base}/proj/header-counter`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /header-counter\.ts/);
    const dir = `${base}/proj`;
    const denoJson = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
    assert.equal(denoJson.imports["mitmdeno"], new URL("../../mod.ts", import.meta.url).href);
    assert.equal(denoJson.imports["mitmdeno/testing"], new URL("../../testing.ts", import.meta.url).href);
    // only the packages the runtime uses: not the web UI's front end, not test-only ones
    for (const k of ["preact", "preact/hooks", "playwright-core"]) assert.ok(!(k in denoJson.imports), k);
    assert.ok("node-forge" in denoJson.imports);
    for (const [args, what] of [[["fmt", "--check"], "fmt"], [["lint"], "lint"]] as const) {
      const c = await deno([...args], dir);
      assert.equal(c.code, 0, `deno ${what} fails on the scaffold:\n${c.out}`);
    }
    const t = await deno(["test", "--no-lock"], dir);
    assert.equal(t.code, 0, t.out);
    assert.match(t.out, /1 passed \| 0 failed/);
    // the project folder moves: the import map is absolute, so it still works
    await Deno.rename(dir, `${base}/moved`);
    const moved = await deno(["test", "--no-lock"], `${base}/moved`);
    assert.equal(moved.code, 0, moved.out);
    // refuses to overwrite, and bad names
    const again = await runCli(["new-addon", "header-counter", "--dir", `${base}/moved`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /header-counter\.ts exists \(use --force/);
    const badName = await runCli(["new-addon", `${base}/9lives`]);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /invalid addon name "9lives"/);
    const both = await runCli(["new-addon", `${base}/x/y`, "--dir", base]);
    assert.equal(both.code, 2);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("new-addon: never writes into mitmdeno's own tree, even with --force", async () => {
  const before = await Deno.readTextFile(`${ROOT}deno.json`);
  for (
    const [args, cwd] of [
      [["new-addon", "deno", "--force"], ROOT],
      [["new-addon", "addons/examples/foo", "--force"], ROOT],
      [["new-addon", `${ROOT}lib/foo`], "/tmp"],
      [["new-addon", "mod", "--dir", `${ROOT}.`, "--force"], "/tmp"],
    ] as const
  ) {
    const r = await runCli([...args], { cwd });
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.stderr, /inside mitmdeno's own source tree/);
  }
  assert.equal(await Deno.readTextFile(`${ROOT}deno.json`), before);
  for (const f of ["deno.ts", "deno_test.ts", "addons/examples/foo.ts", "lib/foo.ts", "mod_test.ts"]) {
    assert.throws(() => Deno.statSync(`${ROOT}${f}`), Deno.errors.NotFound, f);
  }
});

Deno.test("new-addon: an existing deno.json keeps its settings; --force overwrites the addon files only", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({
        tasks: { dev: "deno run x.ts" },
        imports: { foo: "./foo.ts" },
        fmt: { lineWidth: 100 },
      }),
    );
    const r = await scaffoldAddon("a", dir);
    assert.equal(r.merged, true);
    const merged = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
    assert.deepEqual(merged.tasks, { dev: "deno run x.ts" });
    assert.deepEqual(merged.fmt, { lineWidth: 100 });
    assert.equal(merged.imports.foo, "./foo.ts");
    assert.ok(merged.imports.mitmdeno);
    await assert.rejects(() => scaffoldAddon("a", dir), /exists/);
    await Deno.writeTextFile(`${dir}/a.ts`, "// mine\n");
    assert.deepEqual((await scaffoldAddon("a", dir, { force: true })).files, [
      "a.ts",
      "a_test.ts",
      "deno.json",
    ]);
    assert.match(await Deno.readTextFile(`${dir}/a.ts`), /export class A /);
    await Deno.writeTextFile(`${dir}/deno.json`, "{ not json");
    await assert.rejects(() => scaffoldAddon("b", dir), /deno\.json is not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(addonTarget("/a/b/name.ts"), { name: "name", dir: "/a/b" });
  assert.deepEqual(addonTarget("name", "d"), { name: "name", dir: "d" });
  assert.deepEqual(addonTarget("/name"), { name: "name", dir: "/" });
  assert.equal(isCompiled(new URL("file:///tmp/deno-compile-mitmdeno/main/")), true);
  assert.equal(isCompiled(new URL("file:///work/main/")), false);
});

Deno.test("new-addon --update: rewrites the import map only, leaves the addon alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await scaffoldAddon("a", dir);
    await Deno.writeTextFile(`${dir}/a.ts`, "// mine\n");
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
    cfg.imports.mitmdeno = "file:///old/place/mod.ts";
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(cfg));
    const r = await runCli(["new-addon", `${dir}/a`, "--update"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await Deno.readTextFile(`${dir}/a.ts`), "// mine\n");
    const now = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
    assert.equal(now.imports.mitmdeno, new URL("../../mod.ts", import.meta.url).href);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
