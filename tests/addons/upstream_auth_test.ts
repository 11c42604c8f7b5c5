import assert from "node:assert/strict";
import { context, tclientConn, tflow } from "mitmdeno/testing";
import { UpstreamAuth } from "../../addons/upstream_auth.ts";

Deno.test("upstream_auth: Proxy-Authorization upstream, Authorization in reverse mode", async () => {
  const up = new UpstreamAuth();
  await using tctx = await context(up);
  await tctx.configure(up, { upstream_auth: "test:test" });
  const want = "Basic " + btoa("test:test");
  const c = tflow();
  await tctx.invoke(up, "http_connect_upstream", c);
  assert.equal(c.request.headers.get("proxy-authorization"), want);
  const u = tflow({ clientConn: tclientConn({ proxyMode: "upstream:http://proxy:3128" }) });
  await tctx.invoke(up, "requestheaders", u);
  assert.equal(u.request.headers.get("proxy-authorization"), want);
  const r = tflow({ clientConn: tclientConn({ proxyMode: "reverse:http://origin" }) });
  await tctx.invoke(up, "requestheaders", r);
  assert.equal(r.request.headers.get("authorization"), want);
  const reg = tflow();
  await tctx.invoke(up, "requestheaders", reg);
  assert.equal(reg.request.headers.has("authorization"), false);
  assert.equal(reg.request.headers.has("proxy-authorization"), false);
  await assert.rejects(tctx.configure(up, { upstream_auth: "nocolon" }), /Option "upstream_auth"/);
  await tctx.configure(up, { upstream_auth: null });
  assert.equal(up.auth, null);
});
