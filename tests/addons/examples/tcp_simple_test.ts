import assert from "node:assert/strict";
import { context, TCPMessage, ttcpflow } from "../../../testing.ts";
import { example, sandboxed } from "./_sandbox.ts";

Deno.test("tcp_simple: replaces foo with bar and logs the message", async () => {
  await using tctx = await context();
  const addon = await tctx.script(example("tcp_simple.ts"));
  const f = ttcpflow({ messages: false });
  f.messages.push(new TCPMessage(true, "foo and foo"));
  await tctx.invoke(addon, "tcp_message", f);
  assert.equal(f.messages[0].text, "bar and bar");
  assert.ok(tctx.hasLog('tcp_message[fromClient=true, content="bar and bar"]'));
});

Deno.test("tcp_simple: sandboxed: the change crosses the worker wire, only the newest message is sent", async () => {
  await using tctx = await sandboxed([example("tcp_simple.ts")]);
  assert.ok(!tctx.hasLog("not available to sandboxed scripts"));
  const f = ttcpflow({ messages: false });
  f.messages.push(new TCPMessage(true, "earlier foo"));
  f.messages.push(new TCPMessage(false, "foo from the server"));
  await tctx.master.addons.handleLifecycle("tcp_message", f);
  assert.equal(f.messages[0].text, "earlier foo", "not sent: unchanged");
  assert.equal(f.messages[1].text, "bar from the server");
  await tctx.waitForLog('tcp_message[fromClient=false, content="bar from the server"]');
});
