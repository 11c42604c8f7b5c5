import assert from "node:assert/strict";
import { context, twebsocketflow, WebSocketMessage } from "../../../testing.ts";
import { example, sandboxed } from "./_sandbox.ts";

function flowWith(text: string, fromClient = true) {
  const f = twebsocketflow({ messages: false });
  f.websocket!.messages.push(new WebSocketMessage(1, fromClient, text));
  return f;
}

Deno.test("websocket_simple: in-process: rewrites a leading Hello, drops FOOBAR, logs the direction", async () => {
  await using tctx = await context();
  const addon = await tctx.script(example("websocket_simple.ts"));
  const f = flowWith("Hello world");
  await tctx.invoke(addon, "websocket_message", f);
  assert.equal(f.websocket!.messages[0].text, "HAPPY world");
  assert.ok(tctx.hasLog('Client sent a message: text message: "Hello world"'));
  const g = flowWith("xx FOOBAR", false);
  await tctx.invoke(addon, "websocket_message", g);
  assert.equal(g.websocket!.messages[0].dropped, true);
  assert.ok(tctx.hasLog("Server sent a message"));
});

Deno.test("websocket_simple: sandboxed: the changes cross the worker wire, only the newest message is sent", async () => {
  await using tctx = await sandboxed([example("websocket_simple.ts")]);
  const f = flowWith("earlier");
  f.websocket!.messages.push(new WebSocketMessage(1, true, "Hello there"));
  await tctx.master.addons.handleLifecycle("websocket_message", f);
  assert.equal(f.websocket!.messages[0].text, "earlier");
  assert.equal(f.websocket!.messages[1].text, "HAPPY there");
  f.websocket!.messages.push(new WebSocketMessage(2, false, new TextEncoder().encode("FOOBAR!")));
  await tctx.master.addons.handleLifecycle("websocket_message", f);
  assert.equal(f.websocket!.messages[2].dropped, true);
  await tctx.waitForLog("Client sent a message");
});
