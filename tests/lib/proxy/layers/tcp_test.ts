import assert from "node:assert/strict";
import { ConnectionClosed, Start } from "../../../../lib/proxy/events.ts";
import { TcpLayer } from "../../../../lib/proxy/layers/tcp.ts";
import { Server } from "../../../../lib/flow/connection.ts";
import type { TCPFlow } from "../../../../lib/flow/tcp.ts";
import type { StartHook } from "../../../../lib/proxy/commands.ts";
import { close, data, hook, open, Playbook, relay, send, tctx } from "../tutils.ts";

async function withTcpHooks() {
  const t = tctx();
  await t.master.addAddons({ name: "tcphooks", tcp_message() {} });
  t.ctx.server = new Server(["example.com", 7]);
  return t;
}

Deno.test("tcp layer: no addon with TCP hooks: a native relay, the early bytes first", () => {
  const t = tctx();
  t.ctx.server = new Server(["example.com", 7]);
  const pb = new Playbook(new TcpLayer(t.ctx, new TextEncoder().encode("early")));
  pb.in(new Start()).out(open("example.com:7")).reply(null).out(relay()).done();
});

Deno.test("tcp layer: TCP flow: tcp_start, a message per read both ways (changed by the hook), half-close, tcp_end", async () => {
  const t = await withTcpHooks();
  const server = t.ctx.server;
  const pb = new Playbook(new TcpLayer(t.ctx, new TextEncoder().encode("first")));
  pb.in(new Start());
  const start = pb.take() as StartHook;
  assert.equal(start.name, "tcp_start");
  const flow = start.flow as TCPFlow;
  pb.reply()
    .out(open("example.com:7")).reply(null)
    .out(hook("tcp_message", () => flow.messages[0].text === "first")).reply()
    .out(send(() => server, "first"))
    .in(data(server, "pong"))
    .out(hook("tcp_message"));
  flow.messages.at(-1)!.text = "PONG";
  pb.reply().out(send(t.client, "PONG"));
  // injection
  assert.ok(flow.inject(false, "to server"));
  pb.out(hook("tcp_message", () => flow.messages.at(-1)!.injected)).reply().out(
    send(() => server, "to server"),
  );
  pb.in(new ConnectionClosed(t.client)).out(close(() => server, { halfClose: true }))
    .in(data(server, "bye")).out(hook("tcp_message")).reply().out(send(t.client, "bye"))
    .in(new ConnectionClosed(server))
    .out(close(t.client)).out(close(() => server)).out(hook("tcp_end")).reply().done();
  assert.deepEqual(flow.messages.map((m) => [m.fromClient, m.text]), [
    [true, "first"],
    [false, "PONG"],
    [true, "to server"],
    [false, "bye"],
  ]);
  assert.equal(flow.inject(true, "late"), false);
});

Deno.test("tcp layer: the server cannot be reached: tcp_error", async () => {
  const t = await withTcpHooks();
  const pb = new Playbook(new TcpLayer(t.ctx, null));
  pb.in(new Start()).out(hook("tcp_start")).reply().out(open()).reply(
    new (await import("../../../../lib/proxy/errors.ts")).ProtocolError("connect", "connection refused", 502),
  ).out(close(t.client)).out(hook("tcp_error", (d) => !!(d as TCPFlow).error)).reply().done();
});

Deno.test("tcp layer: an ignored host is a passthrough even with TCP hooks", async () => {
  const t = await withTcpHooks();
  const pb = new Playbook(new TcpLayer(t.ctx, null, null, true));
  pb.in(new Start()).out(open()).reply(null).out(relay()).done();
});
