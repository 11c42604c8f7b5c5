import assert from "node:assert/strict";
import { context, tflow, treq } from "mitmdeno/testing";
import { OptionsError, Request } from "mitmdeno";
import { MapRemote } from "../../addons/mapremote.ts";

Deno.test("mapremote: rewrites matching URLs and the Host header", async () => {
  const m = new MapRemote();
  await using tctx = await context(m);
  await tctx.configure(m, { map_remote: [":example.org/images/:mitmproxy.org/img/"] });
  const f = tflow({ req: Request.make("GET", "http://example.org/images/test.png") });
  await tctx.cycle(m, f);
  assert.equal(f.request.url, "http://mitmproxy.org/img/test.png");
  assert.equal(f.request.headers.get("host"), "mitmproxy.org");
});

Deno.test("mapremote: filter, groups, untouched when unchanged", async () => {
  const m = new MapRemote();
  await using tctx = await context(m);
  await tctx.configure(m, {
    map_remote: [
      "|~m POST|example.org|other.org",
      "|^http://([a-z]+)\\.test/(.*)$|https://\\1.example:8443/\\g<2>",
    ],
  });
  const g = tflow({ req: Request.make("GET", "http://example.org/") });
  await tctx.invoke(m, "request", g);
  assert.equal(g.request.url, "http://example.org/");
  const p = tflow({ req: Request.make("POST", "http://example.org/x") });
  await tctx.invoke(m, "request", p);
  assert.equal(p.request.url, "http://other.org/x");
  const r = tflow({ req: Request.make("GET", "http://abc.test/p?q=1") });
  await tctx.invoke(m, "request", r);
  assert.equal(r.request.url, "https://abc.example:8443/p?q=1");
  const same = tflow({ req: treq() });
  same.request.headers.set("host", "keep:22");
  await tctx.invoke(m, "request", same);
  assert.equal(same.request.headers.get("host"), "keep:22");
});

Deno.test("mapremote: bad specs are rejected with the option name", async () => {
  const m = new MapRemote();
  await using tctx = await context(m);
  await assert.rejects(
    tctx.configure(m, { map_remote: ["/x"] }),
    /Option "map_remote".*invalid number of parameters/,
  );
  await assert.rejects(tctx.configure(m, { map_remote: ["/~b/x/y"] }), /Option "map_remote".*invalid filter/);
  await assert.rejects(
    tctx.configure(m, { map_remote: ["/[/y"] }),
    (e: Error) => e instanceof OptionsError && /invalid regular expression/.test(e.message),
  );
});
