/**
 * Test-only npm packages (playwright-core) stay out of what a user's `deno task start` downloads.
 *
 * `deno task` installs every npm package in deno.lock before running a task (for npm binaries), so
 * deno.lock holds the runtime's packages only; the test and check tasks use tests/deno.lock.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const TEST_ONLY = ["playwright-core"];

function lockPackages(text: string): string[] {
  const lock = JSON.parse(text) as { npm?: Record<string, unknown> };
  return Object.keys(lock.npm ?? {}).map((k) => k.replace(/(.)@.*$/, "$1"));
}

Deno.test("deps: deno.lock and the import map hold no test-only package", async () => {
  const pkgs = lockPackages(await Deno.readTextFile(`${ROOT}deno.lock`));
  for (const p of TEST_ONLY) {
    assert.ok(
      !pkgs.includes(p),
      `${p} is in deno.lock, so every \`deno task\` downloads it: run tests with --lock=tests/deno.lock ` +
        "(as `deno task test` does) and drop it from deno.lock",
    );
  }
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const v of Object.values(config.imports as Record<string, string>)) {
    for (const p of TEST_ONLY) assert.ok(!v.includes(p), `${p} in deno.json imports`);
  }
  assert.match(config.tasks.test.command, /--lock=tests\/deno\.lock/);
  assert.match(config.tasks.check, /--lock=tests\/deno\.lock/);
  assert.ok(lockPackages(await Deno.readTextFile(`${ROOT}tests/deno.lock`)).includes("playwright-core"));
});

Deno.test("deps: `deno task start` with an empty DENO_DIR downloads only runtime packages", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-denodir-" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--cwd", ROOT, "start", "--version"],
      cwd: dir,
      env: { DENO_DIR: dir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.match(out, /^mitmdeno /m);
    const reg = `${dir}/npm/registry.npmjs.org`;
    const got = [...Deno.readDirSync(reg)].map((e) => e.name);
    assert.ok(got.includes("yaml") && got.includes("node-forge"), `runtime packages fetched: ${got}`);
    for (const p of TEST_ONLY) assert.ok(!got.includes(p), `start downloaded ${p}: ${got}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
