import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { AntiComp } from "../../addons/anticomp.ts";

Deno.test("anticomp: sets accept-encoding identity when on", async () => {
  const sa = new AntiComp();
  await using tctx = await context(sa);
  const f = tflow({ resp: true });
  f.request.headers.set("Accept-Encoding", "gzip, br");
  await tctx.cycle(sa, f);
  assert.equal(f.request.headers.get("accept-encoding"), "gzip, br");
  await tctx.configure(sa, { anticomp: true });
  await tctx.cycle(sa, f);
  assert.equal(f.request.headers.get("accept-encoding"), "identity");
});
