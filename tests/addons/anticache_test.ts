import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { AntiCache } from "../../addons/anticache.ts";

Deno.test("anticache: off by default, strips conditional headers when on", async () => {
  const sa = new AntiCache();
  await using tctx = await context();
  const f = tflow({ resp: true });
  f.request.headers.set("if-modified-since", "test");
  f.request.headers.set("if-none-match", "test");
  sa.request(f);
  assert.ok(f.request.headers.has("if-modified-since"));
  await tctx.configure(sa, { anticache: true });
  sa.request(f);
  assert.ok(!f.request.headers.has("if-modified-since"));
  assert.ok(!f.request.headers.has("if-none-match"));
});
