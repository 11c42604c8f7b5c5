import assert from "node:assert/strict";
import {
  isIgnored,
  looksLikeTls,
  NextLayer,
  type NextLayerData,
  probablyNotHttp,
} from "../../../../lib/proxy/layers/next_layer.ts";
import { TcpLayer } from "../../../../lib/proxy/layers/tcp.ts";
import { DataReceived, Start } from "../../../../lib/proxy/events.ts";
import { Relay, type RequestWakeup, type StartHook } from "../../../../lib/proxy/commands.ts";
import { ProtocolError } from "../../../../lib/proxy/errors.ts";
import type { TlsLayerOptions } from "../../../../lib/proxy/core.ts";
import { Server } from "../../../../lib/flow/connection.ts";
import type { HTTPFlow } from "../../../../lib/flow/flow.ts";
import { fromLatin1, latin1 } from "../../../../lib/http/bytes.ts";
import {
  clientHello,
  close,
  closed,
  data,
  hook,
  log,
  open,
  Playbook,
  send,
  tctx,
  wakeup,
} from "../tutils.ts";

const b = (s: string) => new TextEncoder().encode(s);
const bytes = (...xs: number[]) => new Uint8Array(xs);

Deno.test("looksLikeTls: recognises a TLS handshake record header for SSLv3 to TLS 1.2 record versions", () => {
  for (const minor of [0, 1, 2, 3]) {
    assert.ok(looksLikeTls(bytes(0x16, 0x03, minor, 0x00, 0x2f)), `03 0${minor}`);
  }
  assert.ok(looksLikeTls(bytes(0x16, 0x03, 0x01)));
});

Deno.test("looksLikeTls: rejects other record types, versions and short inputs", () => {
  assert.ok(!looksLikeTls(bytes()));
  assert.ok(!looksLikeTls(bytes(0x16, 0x03)));
  assert.ok(!looksLikeTls(bytes(0x17, 0x03, 0x03)), "application data record");
  assert.ok(!looksLikeTls(bytes(0x16, 0x02, 0x00)), "SSLv2");
  assert.ok(!looksLikeTls(bytes(0x16, 0x03, 0x05)));
  assert.ok(!looksLikeTls(bytes(0x16, 0xfe, 0xfd)), "DTLS");
  assert.ok(!looksLikeTls(b("GET / HTTP/1.1\r\n")));
});

Deno.test("probablyNotHttp: HTTP request starts are HTTP", () => {
  for (
    const s of [
      "GET / HTTP/1.1\r\n",
      "POST /x HTTP/1.1\r\nHost: h\r\n",
      "OPTIONS * HTTP/1.1",
      "get /",
      "PRI * HTTP/2.0",
    ]
  ) {
    assert.equal(probablyNotHttp(b(s)), false, s);
  }
});

Deno.test("probablyNotHttp: fewer than 3 bytes is not HTTP", () => {
  assert.equal(probablyNotHttp(b("")), true);
  assert.equal(probablyNotHttp(b("GE")), true);
});

Deno.test("probablyNotHttp: no space, or the first space after the first newline, is not HTTP", () => {
  assert.equal(probablyNotHttp(b("GETX")), true);
  assert.equal(probablyNotHttp(b("HELO\r\nMAIL FROM")), true);
  assert.equal(probablyNotHttp(b("GET\n /")), true);
});

Deno.test("probablyNotHttp: a start that is not three letters is not HTTP", () => {
  assert.equal(probablyNotHttp(b("1GET / HTTP/1.1")), true);
  assert.equal(probablyNotHttp(b("G T / HTTP/1.1")), true);
  assert.equal(probablyNotHttp(bytes(0x16, 0x03, 0x01, 0x20, 0x41)), true);
  assert.equal(probablyNotHttp(bytes(0x00, 0x01, 0x02, 0x20)), true);
});

Deno.test("probablyNotHttp: an SSH banner is not HTTP", () => {
  assert.equal(probablyNotHttp(b("SSH-2.0-OpenSSH_9.6 Ubuntu\r\n")), true);
});

// ---- NextLayer as a state machine ----

/** A NextLayer for a tunnel to host:port (`initial`: bytes that came with the CONNECT). */
function tunnel(
  sets: Record<string, unknown> = {},
  address: [string, number] = ["example.com", 443],
  initial?: string,
) {
  const t = tctx({ http_header_timeout: 0, ...sets });
  t.ctx.server = new Server(address);
  const layer = new NextLayer(t.ctx, initial === undefined ? null : fromLatin1(initial));
  return { t, layer, pb: new Playbook(layer) };
}

const relayOf = (pb: Playbook) => {
  const r = pb.take();
  assert.ok(r instanceof Relay, `not a Relay: ${r}`);
  return r as Relay;
};

Deno.test("next layer: ignore_hosts: a passthrough before any byte (TCP relay, no next_layer hook)", () => {
  const { t, pb } = tunnel({ ignore_hosts: ["^example\\.com:443$"] });
  pb.in(new Start()).out(open("example.com:443")).reply(null);
  const r = relayOf(pb);
  assert.equal(r.a, t.client);
  assert.equal(r.b, t.ctx.server);
  assert.equal(r.aPending, null);
  pb.done();
});

Deno.test("next layer: allow_hosts: a host not allowed is passed through, an allowed one is inspected", () => {
  const a = tunnel({ allow_hosts: ["allowed\\.example"] });
  a.pb.in(new Start()).out(open("example.com:443"));
  const b = tunnel({ allow_hosts: ["allowed\\.example"] }, ["allowed.example", 443]);
  b.pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000)).done();
});

Deno.test("isIgnored: patterns match host:port, case-insensitively; no patterns, nothing ignored", () => {
  assert.equal(isIgnored([], [], "a", 1), false);
  assert.equal(isIgnored(["EXAMPLE"], [], "example.com", 443), true);
  assert.equal(isIgnored([":8443$"], [], "example.com", 443), false);
  assert.equal(isIgnored([], ["^good:"], "good", 80), false);
  assert.equal(isIgnored([], ["^good:"], "bad", 80), true);
  // both spellings of an IPv6 address are tried: [::1]:80 and ::1:80
  assert.equal(isIgnored(["^::1:"], [], "::1", 80), true);
  assert.equal(isIgnored(["^\\[::1\\]:80$"], [], "::1", 80), true);
});

Deno.test("next layer: HTTP bytes: next_layer hook, then an HTTP layer reads them (transparent: the tunnel's host)", () => {
  const { t, pb } = tunnel({}, ["example.com", 8080]);
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(t.client, "GET /x HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"));
  const h = pb.take() as StartHook;
  assert.equal(h.name, "next_layer");
  const d = h.data as NextLayerData;
  assert.deepEqual(d.destination, { host: "example.com", port: 8080 });
  assert.equal(latin1(d.dataClient), "GET /x HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  assert.equal(d.dataServer.length, 0);
  pb.reply()
    .out(hook("requestheaders", (f) => (f as HTTPFlow).request.url === "http://example.com:8080/x"))
    .done();
});

Deno.test("next layer: bytes that came with the CONNECT are looked at first", () => {
  const { pb } = tunnel({}, ["example.com", 80], "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000)).out(hook("next_layer")).reply()
    .out(hook("requestheaders")).done();
});

Deno.test("next layer: a TLS ClientHello goes to the TLS layer of the core (server TLS on)", () => {
  const { t, pb } = tunnel();
  const made: TlsLayerOptions[] = [];
  t.master.proxy.layers.tls = (ctx, opts) => {
    made.push(opts);
    return new (class extends TcpLayer {})(ctx); // stands in for the TLS layer: it only has to be chosen
  };
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(t.client, "\x16\x03\x01\x00\x05hello"))
    .out(hook("next_layer")).reply()
    .out(open("example.com:443")).reply(null);
  const r = relayOf(pb);
  assert.equal(latin1(r.aPending!), "\x16\x03\x01\x00\x05hello", "the chosen layer got the bytes");
  assert.deepEqual(made, [{ serverTls: true }]);
});

Deno.test("next layer: TLS without a TLS layer registered is passed through", () => {
  const { t, pb } = tunnel();
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(t.client, "\x16\x03\x03\x00\x01x"))
    .out(hook("next_layer")).reply()
    .out(open("example.com:443")).reply(null);
  assert.equal(latin1(relayOf(pb).aPending!), "\x16\x03\x03\x00\x01x");
});

Deno.test("next layer: tcp_hosts and non-HTTP bytes (rawtcp) are relayed; with rawtcp off they go to HTTP", () => {
  const a = tunnel({ tcp_hosts: ["example\\.com"] }, ["example.com", 80]);
  a.pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(a.t.client, "GET / HTTP/1.1\r\n\r\n"))
    .out(hook("next_layer")).reply()
    .out(open("example.com:80"));
  const b = tunnel({}, ["example.com", 22]);
  b.pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(b.t.client, "SSH-2.0-OpenSSH_9.6\r\n"))
    .out(hook("next_layer")).reply()
    .out(open("example.com:22")).reply(null);
  assert.equal(latin1(relayOf(b.pb).aPending!), "SSH-2.0-OpenSSH_9.6\r\n");
  const c = tunnel({ rawtcp: false }, ["example.com", 22]);
  c.pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(c.t.client, "SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    .out(hook("next_layer")).reply()
    .out(send(c.t.client, /^HTTP\/1.1 400 Bad Request\r\n/))
    .out(close(c.t.client));
});

Deno.test("next layer: an addon decides by setting data.layer in next_layer", () => {
  const { t, pb } = tunnel({}, ["example.com", 80]);
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000)).in(data(t.client, "GET / HTTP/1.1\r\n\r\n"));
  const h = pb.take() as StartHook;
  const d = h.data as NextLayerData;
  d.layer = new TcpLayer(d.context.fork());
  pb.reply().out(open("example.com:80")).reply(null);
  assert.equal(latin1(relayOf(pb).aPending!), "GET / HTTP/1.1\r\n\r\n");
});

Deno.test("next layer: a server that speaks first makes it TCP at once, its bytes go first", () => {
  const { t, pb } = tunnel({}, ["mail.example", 25]);
  t.ctx.server.timestampStart = Date.now() / 1000; // eager CONNECT: connected
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(t.ctx.server, "220 mail.example ESMTP\r\n"));
  const r = relayOf(pb); // the server is open: no OpenConnection
  assert.equal(r.aPending, null);
  assert.equal(latin1(r.bPending!), "220 mail.example ESMTP\r\n");
});

Deno.test("next layer: a silent client and no server connection after 3 s: taken for server-first, TCP", () => {
  const { pb } = tunnel({ connection_strategy: "lazy" }, ["example.com", 5432]);
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000)).done();
  pb.fire(pb.history[0] as RequestWakeup).out(open("example.com:5432"));
});

Deno.test("next layer: a silent client with a connected, silent server: keep waiting", () => {
  const { t, pb } = tunnel();
  t.ctx.server.timestampStart = Date.now() / 1000;
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000));
  pb.fire(pb.history[0] as RequestWakeup).done();
});

Deno.test("next layer: only 'GET' so far: a little longer for the rest, then decided with what there is", () => {
  const { t, pb } = tunnel({}, ["example.com", 80]);
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(t.client, "GET"))
    .out(wakeup(200))
    .done()
    .in(data(t.client, " / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("next_layer", (d) => latin1((d as NextLayerData).dataClient).startsWith("GET / HTTP/1.1")));
  const b = tunnel({}, ["example.com", 80]);
  b.pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(b.t.client, "abc"))
    .out(wakeup(200))
    .fire()
    .out(hook("next_layer", (d) => latin1((d as NextLayerData).dataClient) === "abc"));
});

Deno.test("next layer: the client closing before any byte closes both sides", () => {
  const { t, pb } = tunnel();
  t.ctx.server.timestampStart = Date.now() / 1000;
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(closed(t.client))
    .out(close(t.client))
    .out(close(() => t.ctx.server))
    .done();
  assert.ok((pb.history[0] as RequestWakeup).cancelled);
});

Deno.test("next layer: the client closing after some bytes: decided with them, the close goes to the child", () => {
  const { t, pb } = tunnel({}, ["example.com", 80]);
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(600_000))
    .in(data(t.client, "GET"))
    .out(wakeup(200))
    .in(closed(t.client))
    .out(hook("next_layer")).reply()
    // "GET" without a space is not HTTP (mitmproxy's check): a TCP relay, the server gets the half-close
    .out(open("example.com:80")).reply(null)
    .out(close(() => t.ctx.server, { halfClose: true }));
  assert.equal(latin1(relayOf(pb).aPending!), "GET");
});

Deno.test("next layer: a client that sends nothing for tcp_timeout is closed, with the reason on the connection", () => {
  const { t, pb } = tunnel({ tcp_timeout: 5 }, ["example.com", 443]);
  t.ctx.server.timestampStart = Date.now() / 1000;
  pb.in(new Start()).out(wakeup(3000)).out(wakeup(5000));
  pb.fire(pb.history[1] as RequestWakeup)
    .out(close(t.client))
    .out(close(() => t.ctx.server))
    .done();
  assert.equal(t.client.error, "client sent nothing for 5s after CONNECT example.com:443");
});

// ---- TCP layer ----

Deno.test("tcp: opens the server, then relays natively with the bytes received so far going first", () => {
  const t = tctx();
  t.ctx.server = new Server(["example.com", 7]);
  const pb = new Playbook(new TcpLayer(t.ctx, fromLatin1("first"), null));
  pb.in(new Start()).out(open("example.com:7"))
    .in(data(t.client, " second"))
    .in(data(t.ctx.server, "banner"))
    .done()
    .reply(null);
  const r = relayOf(pb);
  assert.equal(latin1(r.aPending!), "first second");
  assert.equal(latin1(r.bPending!), "banner");
  pb.done();
  // the relay runs in the driver: events no longer concern the layer
  pb.in(data(t.client, "late")).done();
});

Deno.test("tcp: a client that half-closed before the relay: the server gets the half-close first", () => {
  const t = tctx();
  t.ctx.server = new Server(["example.com", 7]);
  const pb = new Playbook(new TcpLayer(t.ctx, fromLatin1("QUIT\r\n")));
  pb.in(new Start()).out(open()).in(closed(t.client)).reply(null)
    .out(close(() => t.ctx.server, { halfClose: true }));
  const r = relayOf(pb);
  assert.equal(latin1(r.aPending!), "QUIT\r\n");
});

Deno.test("tcp: a server that cannot be reached: the client is closed, the reason logged", () => {
  const t = tctx();
  t.ctx.server = new Server(["example.com", 7]);
  const pb = new Playbook(new TcpLayer(t.ctx), { logs: true });
  pb.in(new Start()).out(open())
    .reply(new ProtocolError("connect", "Cannot connect to example.com:7: connection refused", 502))
    .out(log(/connection refused/))
    .out(close(t.client))
    .done();
});

Deno.test("next layer: ignore_hosts with a lazy CONNECT: the ClientHello that comes while connecting is relayed", () => {
  const { t, pb } = tunnel({ ignore_hosts: ["example"], connection_strategy: "lazy" });
  const hello = clientHello({ sni: "example.com" });
  pb.in(new Start()).out(open("example.com:443"))
    .in(new DataReceived(t.client, hello))
    .done()
    .reply(null);
  assert.deepEqual(relayOf(pb).aPending, hello);
});
