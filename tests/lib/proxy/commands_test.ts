/** Commands: blocking replies (once, to a paused layer or a callback), descriptions, wakeup cancellation. */
import assert from "node:assert/strict";
import { Client, Server } from "../../../lib/flow/connection.ts";
import {
  type BlockingCommand,
  CloseConnection,
  Command,
  Log,
  OpenConnection,
  Relay,
  type ReplyTarget,
  RequestWakeup,
  SendData,
  SetReading,
  StartHook,
  StartTls,
} from "../../../lib/proxy/commands.ts";

Deno.test("BlockingCommand.complete: once; the reply goes to the target, else to the callback", () => {
  const got: unknown[][] = [];
  const c = new OpenConnection(new Server(["h", 1])).onReply((r) => got.push(["fn", r]));
  assert.equal(c.done, false);
  c.complete(null);
  c.complete(null);
  assert.deepEqual(got.slice(), [["fn", null]]);
  assert.ok(c.done);
  assert.equal(c.reply, null);
  const target: ReplyTarget = {
    resume: (cmd: BlockingCommand<unknown>, r: unknown) => got.push(["target", cmd, r]),
  };
  const h = new StartHook("tcp_start", {}).onReply(() => got.push(["not me"])).replyTo(target);
  h.complete(undefined);
  h.complete(undefined);
  assert.deepEqual(got.slice(1), [["target", h, undefined]]);
  // without either, complete just records the reply
  const lone = new StartHook("tcp_end", {});
  lone.complete(undefined);
  assert.ok(lone.done);
});

Deno.test("Commands describe themselves for logs and test failures", () => {
  const client = new Client();
  const server = new Server(["example.com", 443]);
  assert.equal(String(new SendData(client, new Uint8Array(3))), "SendData(client, 3b)");
  assert.equal(String(new SendData(server, new Uint8Array(0))), "SendData(server, 0b)");
  assert.equal(String(new OpenConnection(server)), "OpenConnection(example.com:443)");
  assert.equal(String(new CloseConnection(server)), "CloseConnection(server)");
  assert.equal(String(new CloseConnection(client, { halfClose: true })), "CloseConnection(client, half)");
  assert.equal(String(new StartHook("request", null)), "StartHook(request)");
  assert.equal(String(new Log('a "b"', "error")), 'Log(error, "a \\"b\\"")');
  assert.equal(String(new Log("x")), 'Log(info, "x")');
  assert.equal(String(new RequestWakeup(250, () => {})), "RequestWakeup(250)");
  assert.equal(String(new StartTls(client, { alpn: [], timeoutMs: 0 })), "StartTls(client)");
  assert.equal(String(new Relay(client, server)), "Relay");
  assert.equal(String(new SetReading(client, false)), "SetReading");
  class Custom extends Command {}
  assert.equal(String(new Custom()), "Custom");
  const r = new Relay(client, server);
  assert.equal(r.aPending, null);
  assert.equal(r.bPending, null);
  assert.deepEqual(new CloseConnection(client).opts, {});
});

Deno.test("RequestWakeup.cancel: once, telling whoever runs the timer", () => {
  let cancels = 0;
  const w = new RequestWakeup(100, () => {});
  w.onCancel = () => cancels++;
  w.cancel();
  w.cancel();
  assert.equal(cancels, 1);
  assert.ok(w.cancelled);
  assert.equal(w.onCancel, null);
  const never = new RequestWakeup(100, () => {});
  never.cancel();
  assert.ok(never.cancelled, "cancelling an unscheduled wakeup is fine");
});
