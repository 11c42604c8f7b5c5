import assert from "node:assert/strict";
import { context, tflow, tresp } from "mitmdeno/testing";
import { Request } from "mitmdeno";
import { domainMatch, isExpired, StickyCookie } from "../../addons/stickycookie.ts";

function respWith(url: string, ...setCookies: string[]) {
  const f = tflow({ req: Request.make("GET", url), resp: tresp() });
  for (const c of setCookies) f.response!.headers.add("set-cookie", c);
  return f;
}

Deno.test("stickycookie: remembers cookies and sends them to matching requests", async () => {
  const sc = new StickyCookie();
  await using tctx = await context(sc);
  await tctx.configure(sc, { stickycookie: ".*" });
  await tctx.invoke(sc, "response", respWith("http://www.example.com/", "foo=bar; Path=/", "baz=qux"));
  const f = tflow({ req: Request.make("GET", "http://www.example.com/page") });
  await tctx.invoke(sc, "request", f);
  assert.equal(f.request.headers.get("cookie"), "foo=bar; baz=qux");
  assert.equal(f.metadata.stickycookie, true);
  // other host, other port: nothing
  const g = tflow({ req: Request.make("GET", "http://other.com/") });
  await tctx.invoke(sc, "request", g);
  assert.equal(g.request.headers.has("cookie"), false);
  const h = tflow({ req: Request.make("GET", "http://www.example.com:8080/") });
  await tctx.invoke(sc, "request", h);
  assert.equal(h.request.headers.has("cookie"), false);
  // expiry removes it
  await tctx.invoke(
    sc,
    "response",
    respWith("http://www.example.com/", "foo=; Max-Age=0", "baz=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
  );
  assert.equal(sc.jar.size, 0);
});

Deno.test("stickycookie: domain attribute, path prefix, off without filter, bad filter", async () => {
  const sc = new StickyCookie();
  await using tctx = await context(sc);
  await tctx.invoke(sc, "response", respWith("http://a.example.com/", "x=1"));
  assert.equal(sc.jar.size, 0);
  await tctx.configure(sc, { stickycookie: "~d example.com" });
  await tctx.invoke(sc, "response", respWith("http://a.example.com/", "x=1; Domain=.example.com; Path=/app"));
  await tctx.invoke(sc, "response", respWith("http://a.example.com/", "evil=1; Domain=attacker.com"));
  const f = tflow({ req: Request.make("GET", "http://b.example.com/app/x") });
  await tctx.invoke(sc, "request", f);
  assert.equal(f.request.headers.get("cookie"), "x=1");
  const g = tflow({ req: Request.make("GET", "http://b.example.com/other") });
  await tctx.invoke(sc, "request", g);
  assert.equal(g.request.headers.has("cookie"), false);
  await assert.rejects(tctx.configure(sc, { stickycookie: "~x" }), /Option "stickycookie"/);
  assert.ok(domainMatch("www.example.com", ".example.com"));
  assert.ok(domainMatch("www.example.com", "www.example.com"));
  assert.ok(!domainMatch("example.com", "ample.com"));
  assert.ok(isExpired({ "Max-Age": "0" }));
  assert.ok(!isExpired({ expires: "Fri, 01 Jan 2100 00:00:00 GMT" }));
});
