import assert from "node:assert/strict";
import { Start } from "../../../../../lib/proxy/events.ts";
import { HttpLayer } from "../../../../../lib/proxy/layers/http/layer.ts";
import { ProtocolError } from "../../../../../lib/proxy/errors.ts";
import type { HTTPFlow } from "../../../../../lib/flow/flow.ts";
import type { Server } from "../../../../../lib/flow/connection.ts";
import {
  OpenConnection,
  Relay,
  type StartHook,
  StartTls,
  type TlsInfo,
} from "../../../../../lib/proxy/commands.ts";
import { regularHttp } from "../../../../../lib/proxy/layers/modes.ts";
import { latin1 } from "../../../../../lib/http/bytes.ts";
import { Response } from "../../../../../lib/http/message.ts";
import {
  close,
  closed,
  data,
  hook,
  log,
  open,
  Playbook,
  send,
  startTls,
  tctx,
  wakeup,
} from "../../tutils.ts";

const GET = "GET http://example.com/path HTTP/1.1\r\nHost: example.com\r\n\r\n";
const OK = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

function regular() {
  const t = tctx();
  const layer = new HttpLayer(t.ctx, { mode: "regular", rewriteHost: false });
  return { t, pb: new Playbook(layer) };
}

Deno.test("http layer: a GET, hooks in mitmproxy's order, the server opened late, the response relayed", () => {
  const { t, pb } = regular();
  pb.in(new Start())
    .out(wakeup(60_000)) // http_header_timeout: the first request's head must come within 60 s
    .in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply();
  const o = pb.take() as OpenConnection;
  assert.ok(o instanceof OpenConnection);
  const server: Server = o.conn;
  assert.deepEqual(server.address, ["example.com", 80]);
  pb.reply(null)
    .out(send(() => server, "GET /path HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(wakeup(1000)) // the layer's check of streams waiting for a response (http_response_timeout)
    .in(data(server, OK))
    .out(hook("responseheaders")).reply()
    .out(hook("response", (f) => (f as HTTPFlow).response!.text === "hello")).reply()
    .out(send(t.client, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
    .done();
  // keep-alive: the next request reuses the connection, no OpenConnection
  pb.in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(send(() => server, /^GET \/path HTTP\/1.1\r\n/))
    .in(data(server, OK))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(send(t.client, /^HTTP\/1.1 200 OK/))
    .done();
  // the client goes: the idle server connection may serve another client
  pb.in(closed(t.client))
    .out(close(() => server, { reuse: true }))
    .out(close(t.client))
    .done();
});

Deno.test("http layer: a request hook that answers means no server connection at all", () => {
  const { t, pb } = regular();
  pb.in(new Start()).out(wakeup(60_000)).in(data(t.client, GET));
  const h = pb.take() as StartHook;
  (h.flow as HTTPFlow).response = Response.make(403, "no");
  pb.reply()
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(send(t.client, /^HTTP\/1.1 403 Forbidden\r\n(.|\r\n)*\r\n\r\nno$/))
    .done();
});

Deno.test("http layer: a server that cannot be reached: error hook, 502 page naming the reason", () => {
  const { t, pb } = regular();
  pb.in(new Start()).out(wakeup(60_000)).in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:80")).reply(
      new ProtocolError("connect", "Cannot connect to example.com:80: connection refused", 502),
    )
    .out(hook("error", (f) => (f as HTTPFlow).error!.msg.includes("connection refused"))).reply()
    .out(send(t.client, /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*connection refused/))
    .out(close(t.client))
    .done();
});

// ---- CONNECT, connection strategy, reuse, TLS to servers, upgrades, timers ----

const CONNECT = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";

function proxy(sets: Record<string, unknown> = {}) {
  const t = tctx({ http_header_timeout: 0, ...sets });
  return { t, pb: new Playbook(regularHttp(t.ctx)) };
}

const TLS_INFO: TlsInfo = {
  alpn: "http/1.1",
  tlsVersion: "TLSv1.3",
  cipher: "TLS_AES_128_GCM_SHA256",
  certificateList: ["PEM"],
  peerNames: { cn: "example.com", sans: ["example.com", "www.example.com"] },
};

Deno.test("http layer: CONNECT, eager: the server is connected before the 200; the tunnel's HTTP uses it", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, CONNECT))
    .out(hook("http_connect")).reply();
  const o = pb.take() as OpenConnection;
  assert.ok(o instanceof OpenConnection);
  assert.deepEqual(o.conn.address, ["example.com", 443]);
  const server = o.conn;
  pb.reply(null)
    .out(send(t.client, "HTTP/1.1 200 Connection established\r\n\r\n"))
    .out(hook("http_connected", (f) => (f as HTTPFlow).serverConn === server)).reply()
    // the NextLayer of the tunnel: waits for the client's first bytes
    .out(wakeup(3000))
    .out(wakeup(600_000))
    .in(data(t.client, "GET /in HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
    .out(hook("next_layer")).reply()
    .out(hook("requestheaders", (f) => (f as HTTPFlow).request.url === "http://example.com:443/in")).reply()
    .out(hook("request")).reply()
    // no OpenConnection: the tunnel's connection is open already
    .out(send(() => server, "GET /in HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
    .out(wakeup(1000))
    .in(data(server, "HTTP/1.1 204 No Content\r\n\r\n"))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(send(t.client, "HTTP/1.1 204 No Content\r\n\r\n"))
    .done();
});

Deno.test("http layer: CONNECT, lazy: the 200 at once, the server only when the first request needs it", () => {
  const { t, pb } = proxy({ connection_strategy: "lazy" });
  pb.in(new Start()).in(data(t.client, CONNECT + "GET / HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
    .out(hook("http_connect")).reply()
    .out(send(t.client, "HTTP/1.1 200 Connection established\r\n\r\n"))
    .out(hook("http_connected")).reply()
    .out(wakeup(3000))
    .out(wakeup(600_000))
    // the request came with the CONNECT: the tunnel's layer gets it at once
    .out(hook("next_layer")).reply()
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:443"));
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null)
    .out(send(() => server, "GET / HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
    .out(wakeup(1000))
    .done();
});

Deno.test("http layer: CONNECT, eager, to a server that refuses: http_connect_error and a 502 page", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, CONNECT))
    .out(hook("http_connect")).reply()
    .out(open("example.com:443")).reply(
      new ProtocolError("connect", "Cannot connect to example.com:443: connection refused", 502),
    )
    .out(hook("http_connect_error")).reply()
    .out(send(t.client, /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*connection refused/))
    .out(close(t.client))
    .done();
});

Deno.test("http layer: CONNECT without a tunnel layer closes the client (nothing to run the tunnel)", () => {
  const t = tctx({ http_header_timeout: 0, connection_strategy: "lazy" });
  const pb = new Playbook(new HttpLayer(t.ctx, { mode: "regular", rewriteHost: false }), { logs: true });
  pb.in(new Start()).in(data(t.client, CONNECT))
    .out(hook("http_connect")).reply()
    .out(send(t.client, "HTTP/1.1 200 Connection established\r\n\r\n"))
    .out(hook("http_connected")).reply()
    .out(log(/no layer for the tunnel/, "warn"))
    .out(close(t.client))
    .done();
});

Deno.test("http layer: an HTTP/1.0 server (no keep-alive) is not reused; the next request opens another", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:80"));
  const first = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null)
    .out(send(() => first, /^GET \/path/))
    .out(wakeup(1000))
    .in(data(first, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"))
    .out(hook("responseheaders"))
    .out(close(() => first)) // the codec read the whole response while the hook runs
    .reply()
    .out(hook("response")).reply()
    .out(send(t.client, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"))
    .done();
  pb.in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:80"));
  const second = (pb.history.at(-1) as OpenConnection).conn;
  assert.notEqual(second, first);
});

Deno.test("http layer: an idle server connection the server closes is dropped; the next request opens another", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:80"));
  const first = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null).take();
  pb.out(wakeup(1000)).in(data(first, OK))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .take();
  pb.in(closed(first)).out(close(() => first)).done();
  pb.in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply();
  assert.notEqual((pb.take() as OpenConnection).conn, first);
});

Deno.test("http layer: an https URL: TLS to the server with tls_start_server / tls_established_server", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, "GET https://example.com/s HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:443"));
  const server = (pb.history.at(-1) as OpenConnection).conn;
  assert.equal(server.tls, true);
  assert.equal(server.sni, "example.com");
  assert.deepEqual(server.alpnOffers, ["http/1.1"]);
  pb.reply(null)
    .out(hook("tls_start_server", (d) => (d as { conn: unknown }).conn === server)).reply();
  const st = pb.take() as StartTls;
  assert.ok(st instanceof StartTls);
  assert.equal(st.conn, server);
  assert.deepEqual([st.settings.sni, st.settings.alpn, st.settings.insecure], [
    "example.com",
    ["http/1.1"],
    false,
  ]);
  pb.reply(TLS_INFO)
    .out(hook("tls_established_server")).reply()
    .out(send(() => server, "GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n"));
  assert.deepEqual([server.alpn, server.tlsVersion, server.certificateList], ["http/1.1", "TLSv1.3", [
    "PEM",
  ]]);
  assert.ok(server.timestampTlsSetup !== null);
});

Deno.test("http layer: a failed server handshake: tls_failed_server, the connection closed, a 502 naming why", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, "GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:443"));
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null)
    .out(hook("tls_start_server")).reply()
    .out(startTls(() => server)).reply(new ProtocolError("tls", "certificate has expired", null))
    .out(hook("tls_failed_server")).reply()
    .out(close(() => server))
    .out(hook("error", (f) => (f as HTTPFlow).error!.msg === "certificate has expired")).reply()
    .out(send(t.client, /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*certificate has expired/))
    .out(close(t.client))
    .done();
  assert.equal(server.error, "certificate has expired");
});

Deno.test("http layer: a server handshake timing out is a 504", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, "GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open()).reply(null)
    .out(hook("tls_start_server")).reply()
    .take();
  pb.reply(new ProtocolError("timeout", "TLS handshake timed out", null))
    .out(hook("tls_failed_server")).reply()
    .take();
  pb.out(hook("error")).reply()
    .out(send(t.client, /^HTTP\/1.1 504 Gateway Timeout\r\n/));
});

Deno.test("http layer: 101 Switching Protocols: both connections are relayed raw, with the bytes already read", () => {
  const { t, pb } = proxy();
  pb.in(new Start())
    .in(
      data(
        t.client,
        "GET http://example.com/ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      ),
    )
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open());
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null)
    .out(
      send(
        () => server,
        "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      ),
    )
    .out(wakeup(1000))
    .in(
      data(
        server,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x01s",
      ),
    )
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(
      send(t.client, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    );
  const r = pb.take() as Relay;
  assert.ok(r instanceof Relay);
  assert.equal(r.a, t.client);
  assert.equal(r.b, server);
  assert.equal(r.aPending?.length ?? 0, 0);
  assert.equal(latin1(r.bPending!), "\x81\x01s");
  pb.done();
  // from now on the relay has the connections: events are ignored
  pb.in(data(t.client, "\x81\x01c")).in(closed(t.client)).done();
});

Deno.test("http layer: the response timer: a server silent past http_response_timeout gets the client a 504", () => {
  const { t, pb } = proxy({ http_response_timeout: 2 });
  pb.in(new Start()).in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open());
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null).take();
  pb.out(wakeup(500)); // checked at a quarter of the limit
  pb.fire().out(wakeup(500)); // not yet: checked again
  const realNow = Date.now;
  try {
    Date.now = () => realNow() + 2500;
    pb.fire();
  } finally {
    Date.now = realNow;
  }
  pb.out(close(() => server)) // the request was sent: the connection's state is unknown
    .out(hook("error")).reply()
    .out(send(t.client, /^HTTP\/1.1 504 Gateway Timeout\r\n(.|\r\n)*within 2s \(http_response_timeout\)/))
    .out(close(t.client))
    .done();
});

Deno.test("http layer: a request hook can route the flow elsewhere; the connection follows the flow", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, GET)).out(hook("requestheaders")).reply();
  const h = pb.take() as StartHook;
  (h.flow as HTTPFlow).request.host = "other.example";
  (h.flow as HTTPFlow).request.port = 8080;
  pb.reply().out(open("other.example:8080")).reply(null)
    .out(
      send(
        () => (pb.history.at(-2) as OpenConnection).conn,
        "GET /path HTTP/1.1\r\nHost: other.example:8080\r\n\r\n",
      ),
    );
});

Deno.test("http layer: Connection: close from the server closes both connections after the response (as mitmproxy)", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open());
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null).take();
  pb.out(wakeup(1000))
    .in(data(server, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"))
    .out(hook("responseheaders"))
    .out(close(() => server, { reuse: false }))
    .reply()
    .out(hook("response")).reply()
    .out(send(t.client, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"))
    .out(close(t.client))
    .done();
});

Deno.test("http layer: the client closing while a response is on its way: the server connection is not reused", () => {
  const { t, pb } = proxy();
  pb.in(new Start()).in(data(t.client, GET))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open());
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null).take();
  pb.out(wakeup(1000))
    .in(closed(t.client)) // half-close: the response may still go out
    .done()
    .in(data(server, OK))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(send(t.client, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"))
    .out(close(t.client))
    .done();
});

Deno.test("http layer: trailers go through both ways (chunked on both sides, the flow holds them)", () => {
  const { t, pb } = proxy();
  pb.in(new Start())
    .in(
      data(
        t.client,
        "POST http://example.com/t HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
          "3\r\nabc\r\n0\r\nX-Sum: 3\r\n\r\n",
      ),
    )
    .out(hook("requestheaders")).reply()
    .out(hook("request", (f) => (f as HTTPFlow).request.trailers!.get("x-sum") === "3")).reply()
    .out(open());
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null)
    .out(
      // (Trailer is in the hop-by-hop list of lib/http1/hop.ts: not forwarded)
      send(
        () => server,
        "POST /t HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
      ),
    )
    .out(send(() => server, "0\r\nX-Sum: 3\r\n\r\n"))
    .out(wakeup(1000))
    .in(
      data(server, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Done: 1\r\n\r\n"),
    )
    .out(hook("responseheaders")).reply()
    .out(hook("response", (f) => (f as HTTPFlow).response!.trailers!.get("x-done") === "1")).reply()
    .out(send(t.client, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"))
    .out(send(t.client, "0\r\nX-Done: 1\r\n\r\n"))
    .done();
});
