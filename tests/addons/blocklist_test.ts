import assert from "node:assert/strict";
import { context, tflow, treq } from "mitmdeno/testing";
import { OptionsError } from "mitmdeno";
import { BlockList, parseBlockSpec } from "../../addons/blocklist.ts";

Deno.test("blocklist: parse errors name the option", async () => {
  const b = new BlockList();
  await using tctx = await context(b);
  for (
    const [bad, why] of [
      ["/~u foo", "invalid number of parameters"],
      ["/~u foo/xyz", "invalid HTTP status code"],
      ["/~u foo/999", "invalid HTTP status code"],
      ["/~x/200", "invalid filter expression"],
    ]
  ) {
    await assert.rejects(
      tctx.configure(b, { block_list: [bad] }),
      (e: Error) =>
        e instanceof OptionsError && e.message.includes('"block_list"') && e.message.includes(why),
    );
  }
  assert.deepEqual(tctx.options.block_list, []);
  assert.equal(parseBlockSpec(":~d example.com:404").status, 404);
});

Deno.test("blocklist: status response, 444 kills, non-matching untouched", async () => {
  const b = new BlockList();
  await using tctx = await context(b);
  await tctx.configure(b, { block_list: ["/~u blocked/403", "|~u killme|444"] });
  const f = tflow({ req: treq({ path: "/blocked" }) });
  await tctx.invoke(b, "request", f);
  assert.equal(f.response?.statusCode, 403);
  assert.match(f.response!.headers.get("server")!, /^mitmdeno /);
  assert.equal(f.metadata.blocklisted, true);
  const k = tflow({ req: treq({ path: "/killme" }) });
  await tctx.invoke(b, "request", k);
  assert.ok(k.killed);
  assert.equal(k.response, null);
  const ok = tflow();
  await tctx.invoke(b, "request", ok);
  assert.equal(ok.response, null);
  assert.equal(ok.metadata.blocklisted, undefined);
  const notLive = tflow({ req: treq({ path: "/blocked" }), live: false });
  await tctx.invoke(b, "request", notLive);
  assert.equal(notLive.response, null);
});
