import assert from "node:assert/strict";
import { Request, tflow } from "../../../testing.ts";
import { example, sandboxed } from "./_sandbox.ts";

Deno.test("nonblocking: a slow hook delays only its own flow", async () => {
  await using tctx = await sandboxed([example("nonblocking.ts")]);
  const slow = tflow({ req: Request.make("GET", "http://example.com/slow") });
  const t0 = performance.now();
  const slowDone = tctx.master.addons.handleLifecycle("request", slow).then(() => performance.now() - t0);
  await new Promise((r) => setTimeout(r, 50));
  const t1 = performance.now();
  for (let i = 0; i < 5; i++) await tctx.master.addons.handleLifecycle("request", tflow());
  const fastMs = performance.now() - t1;
  assert.ok(fastMs < 500, `fast flows took ${fastMs} ms`);
  assert.ok((await slowDone) >= 1000);
  assert.ok(tctx.hasLog("end request: example.com/slow"));
});

Deno.test("concurrent: refuses load/configure and non-hook names, like mitmproxy", async () => {
  const { concurrent } = await import("../../../mod.ts");
  assert.throws(() => concurrent(function configure() {}), /not supported for 'configure'/);
  assert.throws(() => concurrent(function slowThing() {}), /not supported for 'slowThing'/);
  const f = concurrent(function request(x: number) {
    return x + 1;
  });
  assert.equal(await f(1), 2);
});
