import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { StickyAuth } from "../../addons/stickyauth.ts";

Deno.test("stickyauth: remembers Authorization per host", async () => {
  const sa = new StickyAuth();
  await using tctx = await context(sa);
  await tctx.configure(sa, { stickyauth: ".*" });
  const f = tflow();
  f.request.headers.set("authorization", "foo");
  await tctx.invoke(sa, "request", f);
  assert.ok(sa.hosts.has("address"));
  const g = tflow();
  await tctx.invoke(sa, "request", g);
  assert.equal(g.request.headers.get("authorization"), "foo");
  const h = tflow();
  h.request.host = "other";
  await tctx.invoke(sa, "request", h);
  assert.equal(h.request.headers.has("authorization"), false);
  await tctx.configure(sa, { stickyauth: null });
  const i = tflow();
  await tctx.invoke(sa, "request", i);
  assert.equal(i.request.headers.has("authorization"), false);
  await assert.rejects(tctx.configure(sa, { stickyauth: "~x" }), /Option "stickyauth"/);
});
