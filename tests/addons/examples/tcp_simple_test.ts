import assert from "node:assert/strict";
import { context, TCPMessage, ttcpflow } from "../../../testing.ts";
import { example } from "./_sandbox.ts";

Deno.test("tcp_simple: replaces foo with bar and logs the message", async () => {
  await using tctx = await context();
  const addon = await tctx.script(example("tcp_simple.ts"));
  const f = ttcpflow({ messages: false });
  f.messages.push(new TCPMessage(true, "foo and foo"));
  await tctx.invoke(addon, "tcp_message", f);
  assert.equal(f.messages[0].text, "bar and bar");
  assert.ok(tctx.hasLog('tcp_message[fromClient=true, content="bar and bar"]'));
});
