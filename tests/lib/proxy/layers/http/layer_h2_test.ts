import assert from "node:assert/strict";
import { Start, WritesBlocked } from "../../../../../lib/proxy/events.ts";
import { HttpLayer } from "../../../../../lib/proxy/layers/http/layer.ts";
import {
  CloseConnection,
  OpenConnection,
  RequestWakeup,
  SendData,
  StartHook,
  StartTls,
  type TlsInfo,
  WatchWrites,
} from "../../../../../lib/proxy/commands.ts";
import { Server } from "../../../../../lib/flow/connection.ts";
import type { HTTPFlow } from "../../../../../lib/flow/flow.ts";
import { Playbook, tctx } from "../../tutils.ts";
import { H2Peer } from "./h2_tutils.ts";

/** An HTTP layer behind TLS with an h2 client; `serverAlpn`: what the server's handshake gives. */
function setup(
  serverAlpn: "h2" | "http/1.1",
  opts: { holdTls?: boolean; sets?: Record<string, unknown> } = {},
) {
  const t = tctx(opts.sets);
  t.client.tls = true;
  t.client.alpn = "h2";
  t.ctx.server = new Server(["example.com", 443]);
  t.ctx.server.tls = true;
  const pb = new Playbook(new HttpLayer(t.ctx, { mode: "transparent", rewriteHost: false }));
  const client = new H2Peer("client");
  const server = new H2Peer("server");
  const servers: Server[] = [];
  const held: StartHook[] = [];
  const h1: Uint8Array[] = [];
  /** Bytes sent to each HTTP/1 server connection. */
  const h1Bytes = new Map<Server, number>();
  /** Handshakes held back (opts.holdTls), to be finished by `finishTls`. */
  const handshakes: StartTls[] = [];
  const tlsInfo = (): TlsInfo => ({
    alpn: serverAlpn,
    tlsVersion: "TLSv1.3",
    cipher: "x",
    certificateList: [],
  });
  /** Carry out what the layer asks for, holding hooks `hold` says to, until nothing moves. */
  const pump = (hold: (h: StartHook) => boolean = () => false) => {
    for (let i = 0; i < 200; i++) {
      client.flushTo(pb, t.client);
      for (const s of servers) if (s.alpn === "h2") server.flushTo(pb, s);
      const c = pb.pending.shift();
      if (!c) break; // the peers' output was just flushed: nothing moves any more
      if (c instanceof SendData) {
        if (c.conn === t.client) client.h2.receive(c.data);
        else if ((c.conn as Server).alpn === "h2") server.h2.receive(c.data);
        else {
          h1.push(c.data);
          h1Bytes.set(c.conn as Server, (h1Bytes.get(c.conn as Server) ?? 0) + c.data.length);
        }
      } else if (c instanceof StartHook) {
        if (c.flow && hold(c)) held.push(c);
        else c.complete();
      } else if (c instanceof OpenConnection) {
        servers.push(c.conn);
        c.conn.timestampStart = Date.now() / 1000;
        c.complete(null);
      } else if (c instanceof StartTls) {
        if (opts.holdTls) handshakes.push(c);
        else c.complete(tlsInfo());
      } else if (c instanceof RequestWakeup || c instanceof CloseConnection) {
        // timers and closes need nothing here
      } else throw new Error(`unexpected ${c}`);
    }
  };
  pb.in(new Start());
  pump();
  const finishTls = () => {
    for (const h of handshakes.splice(0)) h.complete(tlsInfo());
    pump();
  };
  return { t, pb, client, server, servers, held, pump, h1, h1Bytes, handshakes, finishTls };
}

const req = (path: string): [string, string][] => [[":method", "GET"], [":scheme", "https"], [
  ":authority",
  "example.com",
], [":path", path]];

/** The head of a POST of `size` bytes (the body follows). */
const post = (path: string, size: number): [string, string][] => [
  [":method", "POST"],
  [":scheme", "https"],
  [":authority", "example.com"],
  [":path", path],
  ["content-length", String(size)],
];

Deno.test("http layer over h2: an intercepted stream blocks no other; both share one h2 server connection", () => {
  const { client, server, servers, held, pump } = setup("h2");
  client.h2.sendHeaders(1, req("/slow"), true);
  client.h2.sendHeaders(3, req("/fast"), true);
  const isSlow = (h: StartHook) => h.name === "request" && (h.flow as HTTPFlow).request.path === "/slow";
  pump(isSlow);
  assert.equal(held.length, 1);
  // only /fast reached the server so far
  const sent = server.take("headers");
  assert.deepEqual(sent.map((h) => h.fields.find((f) => f[0] === ":path")![1]), ["/fast"]);
  server.h2.sendHeaders(sent[0].id, [[":status", "200"]], false);
  server.h2.sendData(sent[0].id, new TextEncoder().encode("fast body"), true);
  pump(isSlow);
  const got = client.take("headers");
  assert.deepEqual(got.map((h) => [h.id, h.fields[0][1]]), [[3, "200"]]);
  assert.equal(client.take("data").map((d) => d.data).join(""), "fast body");
  // the intercepted one resumes: same server connection, a new stream there
  held.shift()!.complete();
  pump();
  assert.equal(servers.length, 1);
  const slow = server.take("headers");
  assert.equal(slow.length, 1);
  assert.notEqual(slow[0].id, sent[0].id);
  server.h2.sendHeaders(slow[0].id, [[":status", "404"]], true);
  pump();
  assert.deepEqual(client.take("headers").map((h) => [h.id, h.fields[0][1]]), [[1, "404"]]);
});

Deno.test("http layer over h2: an h2 client to an HTTP/1 server (:authority -> Host)", () => {
  const { client, pump, h1, servers } = setup("http/1.1");
  client.h2.sendHeaders(1, [...req("/one"), ["accept", "*/*"]], true);
  pump();
  assert.equal(servers.length, 1);
  const text = new TextDecoder().decode(h1[0]);
  assert.equal(text, "GET /one HTTP/1.1\r\nHost: example.com\r\naccept: */*\r\n\r\n");
});

Deno.test("http layer over h2: streams that come while the server's TLS handshake runs wait for it and share it", () => {
  const { client, server, servers, pump, handshakes, finishTls } = setup("h2", { holdTls: true });
  client.h2.sendHeaders(1, req("/a"), true);
  pump();
  assert.equal(servers.length, 1);
  assert.equal(handshakes.length, 1); // the first stream's connection is in its handshake (ALPN unknown)
  client.h2.sendHeaders(3, req("/b"), true);
  client.h2.sendHeaders(5, req("/c"), true);
  pump();
  assert.equal(servers.length, 1, "no second connection while the first may still become HTTP/2");
  finishTls();
  assert.equal(servers.length, 1);
  const sent = server.take("headers").map((h) => h.fields.find((f) => f[0] === ":path")![1]);
  assert.deepEqual(sent.sort(), ["/a", "/b", "/c"]);
});

Deno.test("http layer over h2: if the awaited connection turns out HTTP/1, the waiting streams open their own", () => {
  const { client, servers, pump, handshakes, finishTls, h1 } = setup("http/1.1", { holdTls: true });
  client.h2.sendHeaders(1, req("/a"), true);
  pump();
  client.h2.sendHeaders(3, req("/b"), true);
  pump();
  assert.equal(servers.length, 1);
  assert.equal(handshakes.length, 1);
  finishTls(); // HTTP/1: /a goes on it, /b needs a connection of its own (handshake held again)
  assert.equal(servers.length, 2);
  finishTls();
  const paths = h1.map((d) => new TextDecoder().decode(d).split(" ")[1]).sort();
  assert.deepEqual(paths, ["/a", "/b"]);
});

Deno.test("http layer over h2: a full HTTP/1 server connection holds back only the stream that feeds it", () => {
  const { pb, client, servers, pump, h1, h1Bytes } = setup("http/1.1", {
    sets: { stream_large_bodies: "1k" },
  });
  const size = 3 << 20;
  client.h2.sendHeaders(1, post("/upload", size), false);
  pump();
  assert.equal(servers.length, 1);
  const upload = servers[0];
  // the layer asked to be told about that connection's writes instead of the client's being paused
  assert.ok(pb.history.some((c) => c instanceof WatchWrites && c.conn === upload));
  pb.in(new WritesBlocked(upload, true)); // its socket is full
  client.h2.sendData(1, new Uint8Array(size).fill(120), true);
  pump();
  // stream 1 used its window (1 MiB) and got no more credit: the rest waits at the client
  const sent = h1Bytes.get(upload)!;
  assert.ok(sent < (1 << 20) + 1024, `sent ${sent}`);
  assert.ok(client.h2.queuedOn(1) >= size - (1 << 20), `queued ${client.h2.queuedOn(1)}`);
  // the client connection is still read: another stream gets its own connection and its request goes out
  client.h2.sendHeaders(3, req("/fast"), true);
  pump();
  assert.equal(servers.length, 2);
  assert.ok(h1.some((d) => new TextDecoder().decode(d).startsWith("GET /fast HTTP/1.1\r\n")));
  // drained: stream 1 gets its credit again and the rest of the body goes
  pb.in(new WritesBlocked(upload, false));
  pump();
  assert.equal(client.h2.queuedOn(1), 0);
  const first = new TextDecoder("latin1").decode(h1[0]);
  const head = first.slice(0, first.indexOf("\r\n\r\n") + 4);
  assert.match(head, /^POST \/upload HTTP\/1\.1\r\n.*content-length: 3145728\r\n\r\n$/s);
  assert.equal(h1Bytes.get(upload), head.length + size);
});

Deno.test("http layer over h2: a full HTTP/2 server connection holds back the streams that feed it, not the client connection", () => {
  const { pb, client, server, servers, pump } = setup("h2", { sets: { stream_large_bodies: "1k" } });
  const size = 3 << 20;
  client.h2.sendHeaders(1, post("/upload", size), false);
  pump();
  assert.equal(servers.length, 1);
  const upstream = servers[0];
  // an h2 server connection is watched too (it used to pause the whole client connection when full)
  assert.ok(pb.history.some((c) => c instanceof WatchWrites && c.conn === upstream));
  pb.in(new WritesBlocked(upstream, true));
  client.h2.sendData(1, new Uint8Array(size).fill(120), true);
  pump();
  // stream 1 used the window it had and got no more credit: the rest waits at the client
  const got = () => server.take("data").reduce((n, d) => n + d.data.length, 0);
  let received = got();
  assert.ok(received <= 1 << 20, `forwarded ${received}`);
  assert.ok(client.h2.queuedOn(1) >= size - (1 << 20), `queued ${client.h2.queuedOn(1)}`);
  // the client connection is still read: a new stream goes out on the same server connection and back
  client.h2.sendHeaders(3, req("/fast"), true);
  pump();
  const heads = server.take("headers");
  const fast = heads.find((h) => h.fields.some((f) => f[0] === ":path" && f[1] === "/fast"));
  assert.ok(fast, "GET /fast reached the server while the upload is held");
  server.h2.sendHeaders(fast.id, [[":status", "200"]], true);
  pump();
  assert.deepEqual(client.take("headers").map((h) => [h.id, h.fields[0][1]]), [[3, "200"]]);
  assert.ok(client.h2.queuedOn(1) >= size - (1 << 20), "the upload is still held");
  // an upload that joins the full connection is held back as well: beyond the window credited while its
  // head went through the hooks (received data is credited until the stream is bound), nothing more
  client.h2.sendHeaders(5, post("/second", size), false);
  client.h2.sendData(5, new Uint8Array(size).fill(121), true);
  pump();
  assert.ok(client.h2.queuedOn(5) >= size - (2 << 20), `queued ${client.h2.queuedOn(5)}`);
  // drained: stream 1 gets credit again and the whole body arrives
  pb.in(new WritesBlocked(upstream, false));
  pump();
  for (let i = 0; i < 200 && client.h2.queuedOn(1) + client.h2.queuedOn(5) > 0; i++) {
    received += got();
    pump();
  }
  received += got();
  assert.equal(client.h2.queuedOn(1), 0);
  assert.equal(client.h2.queuedOn(5), 0);
  assert.equal(received, 2 * size);
});
