/**
 * The HTTP/1 codec towards the client (Http1Server) alone: client bytes in, request events out (as
 * ReceiveHttp commands); response events in, exact bytes out.
 */
import assert from "node:assert/strict";
import { Start } from "../../../../../lib/proxy/events.ts";
import { Http1Server } from "../../../../../lib/proxy/layers/http/http1_server.ts";
import {
  HttpSend,
  RequestProtocolError,
  ResponseData,
  ResponseEndOfMessage,
  ResponseHeaders,
  ResponseProtocolError,
  ResponseTrailers,
} from "../../../../../lib/proxy/layers/http/events.ts";
import { ProtocolError } from "../../../../../lib/proxy/errors.ts";
import { Response } from "../../../../../lib/http/message.ts";
import { Headers } from "../../../../../lib/http/headers.ts";
import { latin1 } from "../../../../../lib/http/bytes.ts";
import { close, closed, data, Playbook, send, tctx, wakeup } from "../../tutils.ts";

/** A started codec; `sets`: options (the head timeout is off unless set). */
function codec(sets: Record<string, unknown> = {}) {
  const t = tctx({ http_header_timeout: 0, ...sets });
  const layer = new Http1Server(t.ctx);
  const pb = new Playbook(layer);
  pb.in(new Start());
  return { t, pb, layer };
}

const ok = (body = "hello", headers: Record<string, string> = {}) => Response.make(200, body, headers);
const bytes = (s: string) => new TextEncoder().encode(s);

/** Send a complete response of stream `id` with a known length. */
function respond(pb: Playbook, id: number, r: Response = ok()) {
  const body = r.rawContent!;
  pb.in(new ResponseHeaders(id, r, body.length === 0, body.length));
  if (body.length) pb.in(new ResponseData(id, body)).in(new ResponseEndOfMessage(id));
}

Deno.test("http1 server: a GET without body is headers + end of message, stream 1", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"));
  const evs = pb.http();
  assert.deepEqual(evs.map(String), ["RequestHeaders(1)", "RequestEndOfMessage(1)"]);
  const req =
    (evs[0] as unknown as { request: import("../../../../../lib/http/message.ts").Request }).request;
  assert.equal(req.method, "GET");
  assert.equal(req.path, "/a?b=1");
  assert.equal(req.host, "");
  assert.equal(req.scheme, "http");
  assert.deepEqual(req.headers.fields, [["Host", "example.com"], ["Accept", "*/*"]]);
  pb.done();
});

Deno.test("http1 server: absolute form, a body by Content-Length split over three reads", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "POST http://example.com:8080/up HTTP/1.1\r\nHost: example.com:8080\r\nContent-"))
    .in(data(t.client, "Length: 11\r\n\r\nhello"));
  assert.deepEqual(pb.events(), [
    "RequestHeaders(1, POST http://example.com:8080/up HTTP/1.1)",
    'RequestData(1, "hello")',
  ]);
  pb.in(data(t.client, " world"));
  assert.deepEqual(pb.events(), ['RequestData(1, " world")', "RequestEndOfMessage(1)"]);
  pb.done();
});

Deno.test("http1 server: a chunked body with trailers", () => {
  const { t, pb } = codec();
  pb.in(
    data(
      t.client,
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
    ),
  );
  assert.deepEqual(pb.events(), [
    "RequestHeaders(1, POST / HTTP/1.1)",
    'RequestData(1, "hello")',
    'RequestData(1, " world")',
    "RequestTrailers(1, X-Sum: 42)",
    "RequestEndOfMessage(1)",
  ]);
  pb.done();
});

Deno.test("http1 server: pipelined requests are read one at a time, the next once the response went out", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert.deepEqual(pb.events(), ["RequestHeaders(1, GET /1 HTTP/1.1, end)", "RequestEndOfMessage(1)"]);
  pb.done();
  respond(pb, 1);
  pb.out(send(t.client, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"));
  assert.deepEqual(pb.events(), ["RequestHeaders(3, GET /2 HTTP/1.1, end)", "RequestEndOfMessage(3)"]);
  // an event of another stream is ignored
  pb.in(new ResponseHeaders(1, ok(), false, 5)).done();
  respond(pb, 3, ok("two"));
  pb.out(send(t.client, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntwo")).done();
});

Deno.test("http1 server: blank lines between requests are skipped", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert.deepEqual(pb.events(), ["RequestHeaders(1, GET / HTTP/1.1, end)", "RequestEndOfMessage(1)"]);
});

Deno.test("http1 server: a response of unknown length to an HTTP/1.1 client is chunked, trailers in the last chunk", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  pb.http();
  const r = new Response({ statusCode: 200, headers: new Headers([["Content-Type", "text/plain"]]) });
  pb.in(new ResponseHeaders(1, r, false, null))
    .done() // the head waits for the first body bytes: one write
    .in(new ResponseData(1, bytes("abc")))
    .out(
      send(
        t.client,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
      ),
    )
    .in(new ResponseData(1, bytes("defgh")))
    .out(send(t.client, "5\r\ndefgh\r\n"))
    .in(new ResponseTrailers(1, new Headers([["X-Checksum", "1"]])))
    .out(send(t.client, "0\r\nX-Checksum: 1\r\n\r\n"))
    .in(new ResponseEndOfMessage(1))
    .done();
});

Deno.test("http1 server: an HTTP/1.0 client gets a close-delimited body of unknown length, then the close", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.0\r\n\r\n"));
  assert.deepEqual(pb.events(), ["RequestHeaders(1, GET / HTTP/1.0, end)", "RequestEndOfMessage(1)"]);
  const r = new Response({ statusCode: 200, headers: new Headers() });
  pb.in(new ResponseHeaders(1, r, false, null))
    .in(new ResponseData(1, bytes("all of it")))
    .out(send(t.client, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"))
    .in(new ResponseEndOfMessage(1))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: HTTP/1.0 with keep-alive stays open and says so", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  pb.http();
  respond(pb, 1, ok("x"));
  pb.out(send(t.client, "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nConnection: keep-alive\r\n\r\nx")).done();
  pb.in(data(t.client, "GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  assert.deepEqual(pb.events(), ["RequestHeaders(3, GET /2 HTTP/1.0, end)", "RequestEndOfMessage(3)"]);
});

Deno.test("http1 server: Connection: close from the client closes after the response", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  pb.http();
  respond(pb, 1, ok("x"));
  pb.out(send(t.client, "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nConnection: close\r\n\r\nx"))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: Connection: close from the response closes after it", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  pb.http();
  respond(pb, 1, ok("x", { Connection: "close" }));
  pb.out(send(t.client, "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nConnection: close\r\n\r\nx"))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: a HEAD response keeps its Content-Length and sends no body; 204 and 304 neither", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"));
  pb.http();
  const head = new Response({ statusCode: 200, headers: new Headers([["Content-Length", "1234"]]) });
  pb.in(new ResponseHeaders(1, head, true, 0))
    .out(send(t.client, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"))
    .done();
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  pb.http();
  pb.in(new ResponseHeaders(3, new Response({ statusCode: 204, headers: new Headers() }), true, 0))
    .out(send(t.client, "HTTP/1.1 204 No Content\r\n\r\n"));
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  pb.http();
  const nm = new Response({
    statusCode: 304,
    headers: new Headers([["ETag", '"x"'], ["Content-Length", "9"]]),
  });
  pb.in(new ResponseHeaders(5, nm, true, 0))
    .out(send(t.client, 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 9\r\n\r\n'))
    .done();
});

Deno.test("http1 server: hop-by-hop fields of the response are dropped, a large body goes in its own write", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  pb.http();
  const big = new Uint8Array(70_000).fill(0x61);
  const r = new Response({
    statusCode: 200,
    headers: new Headers([["Keep-Alive", "timeout=5"], ["Transfer-Encoding", "chunked"], ["X-A", "1"]]),
  });
  pb.in(new ResponseHeaders(1, r, false, big.length))
    .in(new ResponseData(1, big))
    .out(send(t.client, "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 70000\r\n\r\n"));
  const body = pb.take();
  assert.equal(
    latin1((body as import("../../../../../lib/proxy/commands.ts").SendData).data),
    "a".repeat(70_000),
  );
  pb.in(new ResponseEndOfMessage(1)).done();
});

Deno.test("http1 server: 100 Continue goes out at once, the final response follows", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  assert.deepEqual(pb.events(), ["RequestHeaders(1, PUT /f HTTP/1.1)"]);
  pb.in(new ResponseHeaders(1, Response.make(100, ""), false)) // made as HttpStream makes it (content-length: 0)
    .out(send(t.client, "HTTP/1.1 100 Continue\r\n\r\n"))
    .in(data(t.client, "data"));
  assert.deepEqual(pb.events(), ['RequestData(1, "data")', "RequestEndOfMessage(1)"]);
  respond(pb, 1, ok("stored"));
  pb.out(send(t.client, /^HTTP\/1.1 200 OK\r\ncontent-length: 6\r\n\r\nstored$/)).done();
});

Deno.test("http1 server: a CONNECT answered 200 is a bare status line; the rest stays buffered after upgrade()", () => {
  const { t, pb, layer } = codec();
  pb.in(data(t.client, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01"));
  assert.deepEqual(pb.events(), [
    "RequestHeaders(1, CONNECT example.com:443 HTTP/1.1, end)",
    "RequestEndOfMessage(1)",
  ]);
  const r = new Response({
    statusCode: 200,
    reason: "Connection established",
    headers: new Headers([["X", "y"]]),
  });
  pb.in(new HttpSend(new ResponseHeaders(1, r, true, 0)))
    .out(send(t.client, "HTTP/1.1 200 Connection established\r\n\r\n"))
    .done();
  layer.upgrade();
  assert.equal(latin1(layer.takeBuffered()), "\x16\x03\x01");
  pb.in(data(t.client, "more")).done(); // not HTTP any more: nothing read
  assert.equal(latin1(layer.takeBuffered()), "more");
});

Deno.test("http1 server: 101 Switching Protocols keeps Upgrade/Connection and the connection", () => {
  const { t, pb, layer } = codec();
  pb.in(data(t.client, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
  pb.http();
  const r = new Response({
    statusCode: 101,
    headers: new Headers([["Upgrade", "websocket"], ["Connection", "Upgrade"]]),
  });
  layer.upgrade();
  pb.in(new ResponseHeaders(1, r, true, 0))
    .out(
      send(t.client, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    )
    .done(); // no close: the connection now belongs to the relay
});

Deno.test("http1 server: a malformed request line is answered 400 with the reason, then closed", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET\r\n\r\n"))
    .out(
      send(
        t.client,
        /^HTTP\/1.1 400 Bad Request\r\n(.|\r\n)*Connection: close(.|\r\n)*malformed request line/,
      ),
    )
    .out(close(t.client))
    .done();
  assert.deepEqual(pb.http(), []);
  pb.in(data(t.client, "GET / HTTP/1.1\r\n\r\n")).done(); // closed: ignored
});

Deno.test("http1 server: HTTP/2.0 in a request line is 505, a missing Host on HTTP/1.1 is 400", () => {
  const a = codec();
  a.pb.in(data(a.t.client, "GET / HTTP/2.0\r\n\r\n"))
    .out(send(a.t.client, /^HTTP\/1.1 505 HTTP Version Not Supported\r\n/))
    .out(close(a.t.client));
  const b = codec();
  b.pb.in(data(b.t.client, "GET / HTTP/1.1\r\n\r\n"))
    .out(send(b.t.client, /^HTTP\/1.1 400 Bad Request\r\n(.|\r\n)*missing Host header/))
    .out(close(b.t.client));
});

Deno.test("http1 server: a header section over max_header_size is 431, even before it ends", () => {
  const { t, pb } = codec({ max_header_size: 100 });
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + "a".repeat(120)))
    .out(send(t.client, /^HTTP\/1.1 431 Request Header Fields Too Large\r\n(.|\r\n)*over 100 bytes/))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: a broken chunked body is a RequestProtocolError with status 400", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
  const evs = pb.events();
  assert.equal(evs[0], "RequestHeaders(1, POST / HTTP/1.1)");
  assert.match(evs[1], /^RequestProtocolError\(1, client-protocol, 400, Invalid chunked request body: /);
  assert.equal(evs.length, 2);
  // the stream answers with the error page: the codec writes it and closes
  pb.in(
    new RequestProtocolError(1, new ProtocolError("client-protocol", "Invalid chunked request body", 400)),
  )
    .out(send(t.client, /^HTTP\/1.1 400 Bad Request\r\n(.|\r\n)*Invalid chunked request body/))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: the client closing in the middle of a body is a client-closed error without status", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")).in(closed(t.client));
  assert.deepEqual(pb.events(), [
    "RequestHeaders(1, POST / HTTP/1.1)",
    'RequestData(1, "abc")',
    "RequestProtocolError(1, client-closed, null, Request body incomplete: connection closed after 3 of 10 bytes)",
  ]);
  pb.done();
});

Deno.test("http1 server: a half-close after a complete request still gets the response, then the close", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")).in(closed(t.client));
  pb.http();
  pb.done();
  respond(pb, 1, ok("late"));
  pb.out(send(t.client, "HTTP/1.1 200 OK\r\ncontent-length: 4\r\nConnection: close\r\n\r\nlate"))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: the client closing between requests closes the connection", () => {
  const { t, pb } = codec();
  pb.in(closed(t.client)).out(close(t.client)).done();
});

Deno.test("http1 server: an error with a status before any response byte is an error page; after it, a close", () => {
  const a = codec();
  a.pb.in(data(a.t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  a.pb.http();
  a.pb.in(new ResponseProtocolError(1, new ProtocolError("connect", "Cannot connect to h:80: refused", 502)))
    .out(send(a.t.client, /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*Cannot connect to h:80: refused/))
    .out(close(a.t.client))
    .done();
  const b = codec();
  b.pb.in(data(b.t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  b.pb.http();
  b.pb.in(new ResponseHeaders(1, ok(), false, 10))
    .in(new ResponseData(1, bytes("hello")))
    .out(send(b.t.client, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"))
    .in(new ResponseProtocolError(1, new ProtocolError("server-closed", "Response body incomplete", 502)))
    .out(close(b.t.client))
    .done();
});

Deno.test("http1 server: a response an addon made unserializable becomes a 502 page", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  pb.http();
  const r = ok("x");
  r.headers.fields.push(["X-Bad", "a\r\nInjected: 1"]);
  pb.in(new ResponseHeaders(1, r, false, 1))
    .in(new ResponseData(1, bytes("x")))
    .out(send(t.client, /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*Cannot send the response: /))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: an early response while a small body still comes: the body is read, then the next request", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab"));
  assert.deepEqual(pb.events(), ["RequestHeaders(1, POST / HTTP/1.1)", 'RequestData(1, "ab")']);
  respond(pb, 1, Response.make(403, "no"));
  pb.out(send(t.client, /^HTTP\/1.1 403 Forbidden\r\n(.|\r\n)*\r\n\r\nno$/)).done();
  pb.in(data(t.client, "cdefGET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert.deepEqual(pb.events(), [
    'RequestData(1, "cdef")',
    "RequestEndOfMessage(1)",
    "RequestHeaders(3, GET /next HTTP/1.1, end)",
    "RequestEndOfMessage(3)",
  ]);
});

Deno.test("http1 server: an early response while a large or chunked body still comes closes the connection", () => {
  const { t, pb } = codec();
  pb.in(data(t.client, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"));
  pb.http();
  respond(pb, 1, Response.make(413, "too big"));
  pb.out(send(t.client, /^HTTP\/1.1 413 /)).out(close(t.client)).done();
});

Deno.test("http1 server: http_header_timeout: the first head must come in time; a partial head gets a 408", () => {
  const t = tctx({ http_header_timeout: 1 });
  const pb = new Playbook(new Http1Server(t.ctx), { logs: true });
  pb.in(new Start()).out(wakeup(1000));
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHo"));
  // the timer fires late enough (it compares with the head's start): 408 and close
  const realNow = Date.now;
  try {
    Date.now = () => realNow() + 1500;
    pb.fire();
  } finally {
    Date.now = realNow;
  }
  pb.out({ describe: "Log", match: (c) => (String(c).includes("http_header_timeout") ? null : String(c)) })
    .out({ describe: "Log", match: (c) => (String(c).includes("bad request") ? null : String(c)) })
    .out(send(t.client, /^HTTP\/1.1 408 Request Timeout\r\n(.|\r\n)*http_header_timeout/))
    .out(close(t.client))
    .done();
});

Deno.test("http1 server: http_header_timeout with nothing received just closes; a timer that fires early re-arms", () => {
  const t = tctx({ http_header_timeout: 2 });
  const pb = new Playbook(new Http1Server(t.ctx));
  pb.in(new Start()).out(wakeup(2000));
  pb.fire().out(wakeup()); // fired before the limit (Date.now unchanged): waits for the rest
  const realNow = Date.now;
  try {
    Date.now = () => realNow() + 3000;
    pb.fire();
  } finally {
    Date.now = realNow;
  }
  pb.out(close(t.client)).done();
});

Deno.test("http1 server: a request over TLS gets the https scheme; OPTIONS * keeps its asterisk", () => {
  const { t, pb } = codec();
  t.client.tls = true;
  pb.in(data(t.client, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"));
  const [ev] = pb.http();
  const req = (ev as unknown as { request: import("../../../../../lib/http/message.ts").Request }).request;
  assert.equal(req.scheme, "https");
  assert.equal(req.path, "*");
});
