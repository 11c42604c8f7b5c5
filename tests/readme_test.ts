/** The README's two set-up commands use the pinned Deno version and the tasks that exist. */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

Deno.test("README: set-up commands match .deno-version and deno.json tasks", async () => {
  const version = (await Deno.readTextFile(new URL(".deno-version", root))).trim();
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks;
  for (const task of ["start", "test"]) {
    assert.ok(
      readme.includes(`npx -y deno@${version} task ${task}`),
      `README lacks 'npx -y deno@${version} task ${task}'`,
    );
    assert.ok(tasks[task], `deno.json has no ${task} task`);
  }
  const ci = await Deno.readTextFile(new URL(".ci/run", root));
  assert.match(ci, /cat \.deno-version/);
  assert.match(ci, /task test/);
});
