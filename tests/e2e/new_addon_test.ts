/** `mitmdeno new-addon NAME`: the starter addon, its test and deno.json work with a plain `deno test`. */
import assert from "node:assert/strict";
import { runCli } from "./helpers.ts";
import { isCompiled, scaffoldAddon } from "../../lib/scaffold.ts";

Deno.test("new-addon: scaffold, then `deno test` passes in the new directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runCli(["new-addon", "header_counter", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /header_counter\.ts/);
    const denoJson = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
    assert.equal(denoJson.imports["mitmdeno"], new URL("../../mod.ts", import.meta.url).href);
    assert.equal(denoJson.imports["mitmdeno/testing"], new URL("../../testing.ts", import.meta.url).href);
    const t = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--no-lock"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(t.stdout) + new TextDecoder().decode(t.stderr);
    assert.equal(t.code, 0, out);
    assert.match(out, /1 passed \| 0 failed/);
    // refuses to overwrite, and bad names
    const again = await runCli(["new-addon", "header_counter", "--dir", dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists \(use --force/);
    const badName = await runCli(["new-addon", "9lives", "--dir", dir]);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /invalid addon name/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("new-addon: --force overwrites; compiled-binary detection", async () => {
  const dir = await Deno.makeTempDir();
  try {
    scaffoldAddon("a", dir);
    assert.throws(() => scaffoldAddon("a", dir), /exists/);
    assert.deepEqual(scaffoldAddon("a", dir, { force: true }).files, ["a.ts", "a_test.ts", "deno.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(isCompiled(new URL("file:///tmp/deno-compile-mitmdeno/main/")), true);
  assert.equal(isCompiled(new URL("file:///work/main/")), false);
});
