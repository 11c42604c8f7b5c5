import assert from "node:assert/strict";
import { context, tflow } from "../../../testing.ts";
import { example, sandboxed } from "./_sandbox.ts";

Deno.test("old API: start() returns the addon (in-process)", async () => {
  await using tctx = await context();
  const addon = await tctx.script(example("old_api.ts"));
  const f = tflow({ resp: true });
  await tctx.cycle(addon, f);
  assert.equal(f.response!.headers.get("count"), "1");
});

Deno.test("old API: start() returns the addon (sandboxed)", async () => {
  await using tctx = await sandboxed([example("old_api.ts")]);
  for (const n of ["1", "2"]) {
    const f = tflow({ resp: true });
    await tctx.master.addons.handleLifecycle("response", f);
    assert.equal(f.response!.headers.get("count"), n);
  }
});
