import assert from "node:assert/strict";
import { H2Connection, type H2Handler } from "../../../lib/http2/connection.ts";
import {
  ErrorCode,
  FrameReader,
  FrameType,
  PREFACE,
  settingsFrame,
  windowUpdateFrame,
} from "../../../lib/http2/frames.ts";

type Ev = [string, ...unknown[]];

function recorder(): { h: H2Handler; events: Ev[] } {
  const events: Ev[] = [];
  const dec = new TextDecoder();
  return {
    events,
    h: {
      headers: (id, fields, end) => events.push(["headers", id, fields, end]),
      data: (id, d, end) => events.push(["data", id, dec.decode(d), end]),
      reset: (id, code, remote) => events.push(["reset", id, code, remote]),
      goaway: (last, code) => events.push(["goaway", last, code]),
      failed: (code, msg) => events.push(["failed", code, msg]),
      pingAck: () => events.push(["pingAck"]),
    },
  };
}

/** A client and a server connection wired to each other in memory. */
function pair(opts: { serverWindow?: number; clientWindow?: number } = {}) {
  const c = recorder();
  const s = recorder();
  const client = new H2Connection(c.h, { role: "client", initialWindow: opts.clientWindow });
  const server = new H2Connection(s.h, { role: "server", initialWindow: opts.serverWindow });
  client.start();
  server.start();
  const pump = () => {
    for (let i = 0; i < 100; i++) {
      const a = client.takeOutput();
      const b = server.takeOutput();
      if (!a && !b) return;
      if (a) server.receive(a);
      if (b) client.receive(b);
    }
  };
  pump();
  return { client, server, c: c.events, s: s.events, pump };
}

const REQ: [string, string][] = [[":method", "POST"], [":scheme", "https"], [":path", "/x"], [
  ":authority",
  "example.com",
]];

Deno.test("h2 connection: a request with a body and a response with trailers, both ways", () => {
  const { client, server, c, s, pump } = pair();
  const id = client.newStreamId();
  assert.equal(id, 1);
  client.sendHeaders(id, REQ, false);
  client.sendData(id, new TextEncoder().encode("hello"));
  client.endStream(id);
  pump();
  assert.deepEqual(s, [["headers", 1, REQ, false], ["data", 1, "hello", false], ["data", 1, "", true]]);
  server.sendHeaders(1, [[":status", "200"]], false);
  server.sendData(1, new TextEncoder().encode("world"));
  server.sendTrailers(1, [["grpc-status", "0"]]);
  pump();
  assert.deepEqual(c, [["headers", 1, [[":status", "200"]], false], ["data", 1, "world", false], [
    "headers",
    1,
    [["grpc-status", "0"]],
    true,
  ]]);
  assert.equal(client.openStreams, 0);
  assert.equal(server.openStreams, 0);
});

Deno.test("h2 connection: data waits for the peer's window and goes out when it opens", () => {
  const { client, server, c, pump } = pair({ clientWindow: 100 });
  const id = client.newStreamId();
  client.sendHeaders(id, REQ, true);
  pump();
  server.sendHeaders(id, [[":status", "200"]], false);
  server.sendData(id, new Uint8Array(250).fill(97), true);
  // the client's stream window is 100: the rest waits
  assert.equal(server.queuedOn(id), 150);
  const out = server.takeOutput()!;
  client.receive(out);
  const got = c.filter((e) => e[0] === "data").map((e) => (e[2] as string).length).reduce((a, b) => a + b, 0);
  assert.equal(got, 100);
  // the client credits what it received; the server sends the rest
  pump();
  const all = c.filter((e) => e[0] === "data").map((e) => (e[2] as string).length).reduce((a, b) => a + b, 0);
  assert.equal(all, 250);
  assert.equal(c[c.length - 1][3], true);
});

Deno.test("h2 connection: a paused stream gets no credit until resumed; others go on", () => {
  const { client, server, c, pump } = pair({ clientWindow: 100 });
  const a = client.newStreamId();
  const b = client.newStreamId();
  client.sendHeaders(a, REQ, true);
  client.sendHeaders(b, REQ, true);
  pump();
  client.setPaused(a, true);
  for (const id of [a, b]) {
    server.sendHeaders(id, [[":status", "200"]], false);
    server.sendData(id, new Uint8Array(300).fill(98), true);
  }
  pump();
  const bytes = (id: number) =>
    c.filter((e) => e[0] === "data" && e[1] === id).reduce((n, e) => n + (e[2] as string).length, 0);
  assert.equal(bytes(a), 100);
  assert.equal(bytes(b), 300);
  client.setPaused(a, false);
  pump();
  assert.equal(bytes(a), 300);
});

Deno.test("h2 connection: pauses are counted: credit comes back only when the last hold is undone", () => {
  const { client, server, c, pump } = pair({ clientWindow: 100 });
  const a = client.newStreamId();
  client.sendHeaders(a, REQ, true);
  pump();
  // two owners hold the stream (a full queue elsewhere, a slow hook): undoing one must not credit
  client.setPaused(a, true);
  client.setPaused(a, true);
  server.sendHeaders(a, [[":status", "200"]], false);
  server.sendData(a, new Uint8Array(300).fill(98), true);
  pump();
  const bytes = () => c.filter((e) => e[0] === "data").reduce((n, e) => n + (e[2] as string).length, 0);
  assert.equal(bytes(), 100);
  client.setPaused(a, false);
  pump();
  assert.equal(bytes(), 100);
  client.setPaused(a, false);
  pump();
  assert.equal(bytes(), 300);
  client.setPaused(a, false); // one undo too many is harmless
});

Deno.test("h2 connection: RST_STREAM, GOAWAY and PING reach the other side", () => {
  const { client, server, c, s, pump } = pair();
  const id = client.newStreamId();
  client.sendHeaders(id, REQ, false);
  pump();
  client.reset(id, ErrorCode.CANCEL);
  pump();
  assert.deepEqual(s[s.length - 1], ["reset", 1, ErrorCode.CANCEL, true]);
  client.ping();
  pump();
  assert.deepEqual(c[c.length - 1], ["pingAck"]);
  server.goaway(ErrorCode.NO_ERROR, "bye");
  pump();
  assert.deepEqual(c[c.length - 1], ["goaway", 1, 0]);
  assert.ok(!client.alive);
});

Deno.test("h2 connection: a bad preface, a window overflow and CONTINUATION floods are connection errors", () => {
  let r = recorder();
  let server = new H2Connection(r.h, { role: "server" });
  server.start();
  server.takeOutput();
  server.receive(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  assert.equal(r.events[0][0], "failed");
  assert.equal(r.events[0][1], ErrorCode.PROTOCOL_ERROR);
  const goaway = new FrameReader().push(server.takeOutput()!);
  assert.equal(goaway[0].type, FrameType.GOAWAY);

  r = recorder();
  server = new H2Connection(r.h, { role: "server" });
  server.start();
  server.receive(PREFACE);
  server.receive(settingsFrame([]));
  server.receive(windowUpdateFrame(0, 0x7fffffff));
  assert.deepEqual(r.events[0].slice(0, 2), ["failed", ErrorCode.FLOW_CONTROL_ERROR]);

  r = recorder();
  server = new H2Connection(r.h, { role: "server", maxHeaderListSize: 1000 });
  server.start();
  server.receive(PREFACE);
  server.receive(settingsFrame([]));
  // HEADERS without END_HEADERS, then CONTINUATION frames far over the limit
  const f = (type: number, flags: number, payload: Uint8Array) => {
    const b = new Uint8Array(9 + payload.length);
    b[0] = payload.length >> 16;
    b[1] = (payload.length >> 8) & 255;
    b[2] = payload.length & 255;
    b[3] = type;
    b[4] = flags;
    b[8] = 1;
    b.set(payload, 9);
    return b;
  };
  server.receive(f(FrameType.HEADERS, 0, new Uint8Array(16000)));
  for (let i = 0; i < 10 && !r.events.length; i++) {
    server.receive(f(FrameType.CONTINUATION, 0, new Uint8Array(16000)));
  }
  assert.deepEqual(r.events[0].slice(0, 2), ["failed", ErrorCode.ENHANCE_YOUR_CALM]);
});

Deno.test("h2 connection: a header list over the limit resets only that stream", () => {
  const c = recorder();
  const s = recorder();
  const client = new H2Connection(c.h, { role: "client" });
  const server = new H2Connection(s.h, { role: "server", maxHeaderListSize: 200 });
  client.start();
  server.start();
  server.receive(client.takeOutput()!);
  client.receive(server.takeOutput()!);
  server.receive(client.takeOutput()!);
  client.sendHeaders(1, [...REQ, ["x-big", "y".repeat(500)]], true);
  client.sendHeaders(3, REQ, true);
  server.receive(client.takeOutput()!);
  assert.equal(s.events[0][0], "reset");
  assert.equal(s.events[0][1], 1);
  assert.deepEqual(s.events[1], ["headers", 3, REQ, true]);
  assert.ok(server.alive);
});
