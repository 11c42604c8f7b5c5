import assert from "node:assert/strict";
import { context, tflow, treq } from "mitmdeno/testing";
import { DisableH2C } from "../../addons/disable_h2c.ts";

Deno.test("disable_h2c: strips h2c upgrades, kills prior knowledge", async () => {
  const d = new DisableH2C();
  await using tctx = await context(d);
  const f = tflow();
  f.request.headers.set("upgrade", "h2c");
  f.request.headers.set("connection", "Upgrade, HTTP2-Settings");
  f.request.headers.set("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA");
  await tctx.cycle(d, f);
  for (const h of ["upgrade", "connection", "http2-settings"]) assert.equal(f.request.headers.has(h), false);
  await tctx.waitForLog("h2c upgrade requests", { level: "warn" });
  const ws = tflow();
  ws.request.headers.set("upgrade", "websocket");
  await tctx.cycle(d, ws);
  assert.equal(ws.request.headers.get("upgrade"), "websocket");
  const pri = tflow({ req: treq({ method: "PRI", path: "*", httpVersion: "HTTP/2.0" }) });
  await tctx.cycle(d, pri);
  assert.ok(pri.killed);
});
