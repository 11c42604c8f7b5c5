import assert from "node:assert/strict";
import { Response, tflow } from "../../../testing.ts";
import { example, sandboxed } from "./_sandbox.ts";

Deno.test("replacer/arguments: positional args parsed with node:util parseArgs()", async () => {
  await using tctx = await sandboxed([`${example("replacer/arguments.ts")} html fakehtml`]);
  const f = tflow({ resp: Response.make(200, "<html>html</html>", { "content-type": "text/html" }) });
  await tctx.master.addons.handleLifecycle("response", f);
  assert.equal(f.response!.text, "<fakehtml>fakehtml</fakehtml>");
  assert.equal(f.response!.headers.get("content-length"), String(f.response!.rawContent!.length));
});

Deno.test("replacer/arguments: wrong usage is a load error with file:line", async () => {
  await using tctx = await sandboxed([`${example("replacer/arguments.ts")} onlyone`]);
  const e = await tctx.waitForLog("usage: arguments.ts SRC DST", { level: "error" });
  assert.match(e.msg, /arguments\.ts:\d+:\d+/);
});
