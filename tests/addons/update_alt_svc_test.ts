import assert from "node:assert/strict";
import { context, tclientConn, tflow } from "mitmdeno/testing";
import { UpdateAltSvc, updateAltSvcHeader } from "../../addons/update_alt_svc.ts";

Deno.test("update_alt_svc: rewrites Alt-Svc in reverse mode only", async () => {
  assert.equal(
    updateAltSvcHeader('h3="example.com:443"; ma=3600, h2=":443"', 8080),
    'h3=":8080"; ma=3600, h2=":8080"',
  );
  const a = new UpdateAltSvc();
  await using tctx = await context(a);
  const rev = () =>
    tflow({
      resp: true,
      clientConn: tclientConn({ proxyMode: "reverse:https://example.com", sockname: ["127.0.0.1", 8080] }),
    });
  const f = rev();
  f.response!.headers.set("alt-svc", 'h3="example.com:443"');
  await tctx.invoke(a, "responseheaders", f);
  assert.equal(f.response!.headers.get("alt-svc"), 'h3=":8080"');
  const reg = tflow({ resp: true });
  reg.response!.headers.set("alt-svc", 'h3="example.com:443"');
  await tctx.invoke(a, "responseheaders", reg);
  assert.equal(reg.response!.headers.get("alt-svc"), 'h3="example.com:443"');
  await tctx.configure(a, { keep_alt_svc_header: true });
  const k = rev();
  k.response!.headers.set("alt-svc", 'h3="example.com:443"');
  await tctx.invoke(a, "responseheaders", k);
  assert.equal(k.response!.headers.get("alt-svc"), 'h3="example.com:443"');
});
