import assert from "node:assert/strict";
import { context, tflow } from "../../../testing.ts";
import { Counter } from "../../../addons/examples/counter.ts";
import { example, sandboxed } from "./_sandbox.ts";

Deno.test("counter: counts and logs", async () => {
  const c = new Counter();
  await using tctx = await context(c);
  await tctx.cycle(c, tflow());
  await tctx.cycle(c, tflow());
  assert.equal(c.num, 2);
  assert.ok(tctx.hasLog("We've seen 2 flows", "info"));
});

Deno.test("counter: sandboxed, ctx.log tagged with the script name", async () => {
  await using tctx = await sandboxed([example("counter.ts")]);
  for (let i = 0; i < 3; i++) await tctx.master.addons.handleLifecycle("request", tflow());
  const e = await tctx.waitForLog("We've seen 3 flows");
  assert.equal(e.source, "counter.ts");
});
