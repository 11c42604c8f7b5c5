import assert from "node:assert/strict";
import { ConnectionClosed, DataReceived, Start } from "../../../../lib/proxy/events.ts";
import { HttpLayer } from "../../../../lib/proxy/layers/http/layer.ts";
import { WebSocketLayer } from "../../../../lib/proxy/layers/websocket.ts";
import {
  type BlockingCommand,
  OpenConnection,
  SendData,
  type StartHook,
} from "../../../../lib/proxy/commands.ts";
import type { HTTPFlow } from "../../../../lib/flow/flow.ts";
import type { Server } from "../../../../lib/flow/connection.ts";
import {
  encodeClose,
  encodeFrame,
  FrameReader,
  Opcode,
  parseClose,
} from "../../../../lib/websocket/frame.ts";
import { Deflater, Inflater } from "../../../../lib/websocket/deflate.ts";
import { close, cmd, data, hook, Playbook, send, tctx, wakeup } from "../tutils.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const HANDSHAKE = "GET http://example.com/ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n" +
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const ACCEPT = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";

/** The frames in a SendData (decoded with the masking rules of the receiver). */
function frames(c: SendData, toServer: boolean) {
  const r = new FrameReader({ masked: toServer, rsv1: true, maxPayload: null });
  r.push(c.data);
  const out = [];
  for (let f = r.next(); f; f = r.next()) out.push(f);
  assert.equal(r.buffered, 0);
  return out;
}

/**
 * A playbook up to the WebSocket layer: handshake through the HTTP layer, hooks in mitmproxy's order. Every
 * message is kept (`websocket_keep_messages` all) unless `sets` says otherwise.
 */
function upgraded(opts: { extensions?: string; sets?: Record<string, unknown>; serverRest?: string } = {}) {
  const t = tctx({ websocket_keep_messages: "all", ...opts.sets });
  const pb = new Playbook(new HttpLayer(t.ctx, { mode: "regular", rewriteHost: false }));
  pb.in(new Start()).out(wakeup(60_000)).in(data(t.client, HANDSHAKE))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply();
  const o = pb.take() as OpenConnection;
  assert.ok(o instanceof OpenConnection);
  const server: Server = o.conn;
  pb.reply(null).out(send(() => server, /^GET \/ws HTTP\/1.1\r\n/)).out(wakeup(1000));
  const head = ACCEPT + (opts.extensions ? `Sec-WebSocket-Extensions: ${opts.extensions}\r\n` : "") + "\r\n";
  pb.in(data(server, head + (opts.serverRest ?? "")))
    .out(hook("responseheaders")).reply();
  const resp = pb.take() as StartHook;
  assert.equal(resp.name, "response");
  const flow = resp.flow as HTTPFlow;
  assert.ok(flow.websocket, "flow.websocket is set before the response hook");
  pb.reply()
    .out(send(t.client, /^HTTP\/1.1 101 Switching Protocols\r\n/))
    .out(hook("websocket_start")).reply();
  return { t, pb, server, flow };
}

Deno.test("websocket layer: messages both ways, recorded, websocket_message per message, re-masked", () => {
  const { t, pb, server, flow } = upgraded();
  pb.in(new DataReceived(t.client, encodeFrame(true, Opcode.TEXT, enc.encode("hello"), true)))
    .out(hook("websocket_message", () => flow.websocket!.messages.at(-1)!.text === "hello")).reply();
  const toServer = pb.take() as SendData;
  assert.equal(toServer.conn, server);
  const [f] = frames(toServer, true);
  assert.equal(dec.decode(f.payload), "hello");
  pb.in(new DataReceived(server, encodeFrame(true, Opcode.BINARY, Uint8Array.of(1, 2, 3), false)))
    .out(hook("websocket_message")).reply();
  const toClient = pb.take() as SendData;
  assert.equal(toClient.conn, t.client);
  assert.deepEqual(frames(toClient, false)[0].payload, Uint8Array.of(1, 2, 3));
  const [a, b] = flow.websocket!.messages;
  assert.equal(a.fromClient, true);
  assert.equal(a.isText, true);
  assert.equal(b.fromClient, false);
  assert.equal(b.type, 2);
  pb.done();
});

Deno.test("websocket layer: bytes right after the 101 and several messages in one read keep their order", () => {
  const first = encodeFrame(true, Opcode.TEXT, enc.encode("early"), false);
  const { t, pb, server, flow } = upgraded({ serverRest: String.fromCharCode(...first) });
  // the early server message was queued during websocket_start
  pb.out(hook("websocket_message", () => flow.websocket!.messages[0].text === "early")).reply()
    .out(cmd(SendData, (c: SendData) => c.conn === t.client));
  const two = new Uint8Array([
    ...encodeFrame(true, Opcode.TEXT, enc.encode("one"), true),
    ...encodeFrame(true, Opcode.TEXT, enc.encode("two"), true),
  ]);
  pb.in(new DataReceived(t.client, two));
  const h1 = pb.take() as StartHook;
  assert.equal(h1.name, "websocket_message");
  // while the hook runs, nothing else goes out; "one" goes out when the layer's pass ends (after it
  // started the hook of "two", which waits)
  pb.done().reply(undefined, h1 as unknown as BlockingCommand<unknown>)
    .out(hook("websocket_message"))
    .out(
      cmd(SendData, (c: SendData) => c.conn === server && dec.decode(frames(c, true)[0].payload) === "one"),
    )
    .reply()
    .out(
      cmd(SendData, (c: SendData) => c.conn === server && dec.decode(frames(c, true)[0].payload) === "two"),
    )
    .done();
});

Deno.test("websocket layer: messages of one read whose hooks do not wait go out in one write, in order", () => {
  const t = tctx({ websocket_keep_messages: "all" });
  const pb = new Playbook(new HttpLayer(t.ctx, { mode: "regular", rewriteHost: false }), { autoHooks: true });
  pb.in(new Start()).out(wakeup(60_000)).in(data(t.client, HANDSHAKE));
  const o = pb.take() as OpenConnection;
  const server: Server = o.conn;
  pb.reply(null).out(send(() => server, /^GET/)).out(wakeup(1000)).in(data(server, ACCEPT + "\r\n"))
    .out(send(t.client, /^HTTP\/1.1 101/));
  const burst = new Uint8Array([
    ...encodeFrame(true, Opcode.TEXT, enc.encode("a"), true),
    ...encodeFrame(true, Opcode.PING, enc.encode("p"), true),
    ...encodeFrame(true, Opcode.TEXT, enc.encode("b"), true),
    ...encodeFrame(true, Opcode.BINARY, Uint8Array.of(7), true),
  ]);
  pb.in(new DataReceived(t.client, burst));
  const one = pb.take() as SendData;
  assert.equal(one.conn, server);
  assert.deepEqual(
    frames(one, true).map((f) => [f.opcode, dec.decode(f.payload)]),
    [[Opcode.TEXT, "a"], [Opcode.PING, "p"], [Opcode.TEXT, "b"], [Opcode.BINARY, "\x07"]],
  );
  pb.done();
});

Deno.test("websocket layer: fragmented messages keep their fragmentation unless changed; pings pass at once", () => {
  const { t, pb, server, flow } = upgraded();
  pb.in(new DataReceived(t.client, encodeFrame(false, Opcode.TEXT, enc.encode("abc"), true)))
    .in(new DataReceived(t.client, encodeFrame(true, Opcode.PING, enc.encode("p"), true)))
    .out(cmd(SendData, (c: SendData) => c.conn === server && frames(c, true)[0].opcode === Opcode.PING))
    .in(new DataReceived(t.client, encodeFrame(true, Opcode.CONTINUATION, enc.encode("def"), true)))
    .out(hook("websocket_message")).reply();
  const same = frames(pb.take() as SendData, true);
  assert.deepEqual(same.map((f) => [f.opcode, f.fin, dec.decode(f.payload)]), [[1, false, "abc"], [
    0,
    true,
    "def",
  ]]);
  pb.in(new DataReceived(t.client, encodeFrame(false, Opcode.TEXT, enc.encode("abc"), true)))
    .in(new DataReceived(t.client, encodeFrame(true, Opcode.CONTINUATION, enc.encode("def"), true)));
  pb.out(hook("websocket_message"));
  flow.websocket!.messages.at(-1)!.text = "x".repeat(9000);
  pb.reply();
  const changed = frames(pb.take() as SendData, true);
  assert.deepEqual(changed.map((f) => f.payload.length), [4000, 4000, 1000]);
  pb.done();
});

Deno.test("websocket layer: a hook drops one message and injects another", () => {
  const { t, pb, server, flow } = upgraded();
  pb.in(new DataReceived(t.client, encodeFrame(true, Opcode.TEXT, enc.encode("secret"), true)))
    .out(hook("websocket_message"));
  flow.websocket!.messages.at(-1)!.drop();
  assert.ok(flow.websocket!.inject(true, "injected to client"));
  pb.reply()
    .out(hook("websocket_message", () => flow.websocket!.messages.at(-1)!.injected)).reply()
    .out(
      cmd(
        SendData,
        (c: SendData) =>
          c.conn === t.client && dec.decode(frames(c, false)[0].payload) === "injected to client",
      ),
    )
    .done();
  assert.equal(flow.websocket!.messages[0].dropped, true);
  assert.equal(flow.websocket!.messages[1].fromClient, false);
  void server;
});

Deno.test("websocket layer: a close from the client is forwarded and answered, then websocket_end", () => {
  const { t, pb, server, flow } = upgraded();
  pb.in(new DataReceived(t.client, encodeClose(1000, "bye", true)));
  const toServer = pb.take() as SendData;
  assert.equal(toServer.conn, server);
  assert.deepEqual(parseClose(frames(toServer, true)[0].payload), { code: 1000, reason: "bye" });
  const toClient = pb.take() as SendData;
  assert.equal(toClient.conn, t.client);
  assert.deepEqual(parseClose(frames(toClient, false)[0].payload), { code: 1000, reason: "bye" });
  pb.out(close(() => server)).out(close(t.client)).out(hook("websocket_end")).reply().done();
  const ws = flow.websocket!;
  assert.equal(ws.closedByClient, true);
  assert.equal(ws.closeCode, 1000);
  assert.equal(ws.closeReason, "bye");
  assert.ok(ws.timestampEnd);
  assert.equal(ws.injectable, false);
  // late data is ignored
  pb.in(new DataReceived(t.client, encodeFrame(true, 1, enc.encode("late"), true))).done();
});

Deno.test("websocket layer: the server goes away without a close frame: 1006, the client gets a close", () => {
  const { t, pb, server, flow } = upgraded();
  pb.in(new ConnectionClosed(server));
  const toClient = pb.take() as SendData;
  assert.equal(toClient.conn, t.client);
  assert.equal(frames(toClient, false)[0].payload.length, 0);
  pb.out(close(() => server)).out(close(t.client)).out(hook("websocket_end")).reply().done();
  assert.equal(flow.websocket!.closeCode, 1006);
  assert.equal(flow.websocket!.closedByClient, false);
});

Deno.test("websocket layer: protocol errors close both sides with the code (1002 unmasked, 1007 bad UTF-8, 1009 limit)", () => {
  for (
    const [bytes, code, sets] of [
      [encodeFrame(true, Opcode.TEXT, enc.encode("x"), false), 1002, {}],
      [encodeFrame(true, Opcode.TEXT, Uint8Array.of(0xff, 0xfe), true), 1007, {}],
      [encodeFrame(true, Opcode.BINARY, new Uint8Array(2000), true), 1009, { body_size_limit: "1k" }],
    ] as const
  ) {
    const { t, pb, server, flow } = upgraded({ sets });
    pb.in(new DataReceived(t.client, bytes));
    const a = pb.take() as SendData;
    assert.equal(a.conn, server);
    assert.equal(parseClose(frames(a, true)[0].payload).code, code);
    const b = pb.take() as SendData;
    assert.equal(parseClose(frames(b, false)[0].payload).code, code);
    pb.out(close(() => server)).out(close(t.client)).out(hook("websocket_end")).reply().done();
    assert.equal(flow.websocket!.closeCode, code);
  }
});

Deno.test("websocket layer: websocket option off: a raw relay after the 101, no websocket data", () => {
  const t = tctx({ websocket: false });
  const pb = new Playbook(new HttpLayer(t.ctx, { mode: "regular", rewriteHost: false }), { autoHooks: true });
  pb.in(new Start()).out(wakeup(60_000)).in(data(t.client, HANDSHAKE));
  const o = pb.take() as OpenConnection;
  pb.reply(null).out(send(() => o.conn, /^GET/)).out(wakeup(1000)).in(data(o.conn, ACCEPT + "\r\n"));
  pb.out(send(t.client, /^HTTP\/1.1 101/));
  const relay = pb.take();
  assert.equal(relay.constructor.name, "Relay");
});

Deno.test("websocket layer: permessage-deflate: hooks see plain text, each side gets it compressed again", async () => {
  const { t, pb, server, flow } = upgraded({ extensions: "permessage-deflate; client_max_window_bits" });
  const clientDeflate = new Deflater(15, false);
  const serverInflate = new Inflater(15, false);
  for (const text of ["hello hello hello", "hello hello hello", ""]) {
    const c = await clientDeflate.deflate(enc.encode(text));
    pb.in(new DataReceived(t.client, encodeFrame(true, Opcode.TEXT, c, true, true)));
    for (let i = 0; i < 50 && pb.pending.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    pb.out(hook("websocket_message", () => flow.websocket!.messages.at(-1)!.text === text)).reply();
    for (let i = 0; i < 50 && pb.pending.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const out = pb.take() as SendData;
    assert.equal(out.conn, server);
    const [f] = frames(out, true);
    assert.equal(f.rsv1, true);
    assert.equal(dec.decode(await serverInflate.inflate(f.payload, null)), text);
  }
  for (const z of [clientDeflate, serverInflate]) z.close();
  pb.in(new DataReceived(t.client, encodeClose(1000, "", true)));
  pb.take();
  pb.take();
  pb.out(close(() => server)).out(close(t.client)).out(hook("websocket_end")).reply().done();
});

Deno.test("websocket layer: a killed flow closes both connections", () => {
  const { t, pb, server, flow } = upgraded();
  pb.in(new DataReceived(t.client, encodeFrame(true, Opcode.TEXT, enc.encode("x"), true)))
    .out(hook("websocket_message"));
  flow.kill();
  pb.reply().out(close(() => server)).out(close(t.client)).out(hook("websocket_end")).reply().done();
  assert.ok(flow.websocket!.timestampEnd);
  void WebSocketLayer;
});

/** One client message through the layer; returns the flow's message count after its hooks. */
function oneMessage(
  pb: Playbook,
  t: ReturnType<typeof tctx>,
  server: Server,
  flow: HTTPFlow,
  text: string,
): number {
  pb.in(new DataReceived(t.client, encodeFrame(true, Opcode.TEXT, enc.encode(text), true)))
    .out(hook("websocket_message", () => flow.websocket!.messages.at(-1)!.text === text)).reply()
    .out(
      cmd(SendData, (c: SendData) => c.conn === server && dec.decode(frames(c, true)[0].payload) === text),
    );
  return flow.websocket!.messages.length;
}

Deno.test("websocket layer: websocket_keep_messages auto without a recorder keeps only the message in its hooks", () => {
  const { t, pb, server, flow } = upgraded({ sets: { websocket_keep_messages: "auto" } });
  // the hook still sees its message as the last one; afterwards the flow holds none
  for (const text of ["one", "two", "three"]) assert.equal(oneMessage(pb, t, server, flow, text), 0);
  // a message changed and dropped by its hook: changed and dropped on the wire, then forgotten too
  pb.in(new DataReceived(t.client, encodeFrame(true, Opcode.TEXT, enc.encode("x"), true)))
    .out(hook("websocket_message"));
  flow.websocket!.messages.at(-1)!.drop();
  pb.reply().done();
  assert.equal(flow.websocket!.messages.length, 0);
  pb.in(new DataReceived(t.client, encodeClose(1000, "", true)));
  pb.take();
  pb.take();
  pb.out(close(() => server)).out(close(t.client)).out(hook("websocket_end")).reply().done();
});

Deno.test("websocket layer: websocket_keep_messages auto keeps every message for a websocket_end hook, current never", async () => {
  // an addon with websocket_end (it sees the whole history in mitmproxy): kept
  {
    const { t, pb, server, flow } = upgraded({ sets: { websocket_keep_messages: "auto" } });
    await t.master.addons.add({ name: "ender", websocket_end() {} });
    assert.equal(oneMessage(pb, t, server, flow, "a"), 1);
    assert.equal(oneMessage(pb, t, server, flow, "b"), 2);
  }
  // one that says it needs no history (as the dumper does), or only while it records (as the save addon)
  {
    const { t, pb, server, flow } = upgraded({ sets: { websocket_keep_messages: "auto" } });
    let recording = false;
    await t.master.addons.add(
      { name: "quiet", websocket_end() {}, websocketHistory: false },
      { name: "recorder", websocket_end() {}, websocketHistory: (f: HTTPFlow) => recording && f === flow },
    );
    assert.equal(oneMessage(pb, t, server, flow, "a"), 0);
    recording = true;
    assert.equal(oneMessage(pb, t, server, flow, "b"), 1);
  }
  // current: not even for a websocket_end hook
  {
    const { t, pb, server, flow } = upgraded({ sets: { websocket_keep_messages: "current" } });
    await t.master.addons.add({ name: "ender", websocket_end() {} });
    assert.equal(oneMessage(pb, t, server, flow, "a"), 0);
  }
  // all: as mitmproxy, whatever the addons
  {
    const { t, pb, server, flow } = upgraded({ sets: { websocket_keep_messages: "all" } });
    assert.equal(oneMessage(pb, t, server, flow, "a"), 1);
    assert.equal(oneMessage(pb, t, server, flow, "b"), 2);
  }
});

Deno.test("websocket layer: the dump tool's own addons need no history unless recording (save, hardump)", async () => {
  const { Dumper } = await import("../../../../addons/dumper.ts");
  const { Save } = await import("../../../../addons/save.ts");
  const { SaveHar } = await import("../../../../addons/savehar.ts");
  const t = tctx();
  await t.master.addons.add(new Dumper(), new Save(), new SaveHar());
  const flow = { type: "http" } as unknown as HTTPFlow;
  assert.equal(t.master.addons.wantsWebSocketHistory(flow), false);
  await t.master.options.update({ hardump: "/tmp/never-written.har" });
  assert.equal(t.master.addons.wantsWebSocketHistory(flow), true);
  await t.master.options.update({ hardump: "" });
  const dir = await Deno.makeTempDir();
  try {
    await t.master.options.update({ save_stream_file: `${dir}/out.flows` });
    assert.equal(t.master.addons.wantsWebSocketHistory(flow), true);
    await t.master.options.update({ save_stream_file: null });
    assert.equal(t.master.addons.wantsWebSocketHistory(flow), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
