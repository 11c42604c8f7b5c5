/**
 * The HTTP/1 codec towards a server (Http1Client) alone: request events in, exact bytes out; server bytes
 * in, response events out (as ReceiveHttp commands).
 */
import assert from "node:assert/strict";
import { Http1Client } from "../../../../../lib/proxy/layers/http/http1_client.ts";
import {
  HttpSend,
  RequestData,
  RequestEndOfMessage,
  RequestHeaders,
  RequestProtocolError,
  RequestTrailers,
} from "../../../../../lib/proxy/layers/http/events.ts";
import { ProtocolError } from "../../../../../lib/proxy/errors.ts";
import { Request } from "../../../../../lib/http/message.ts";
import { Headers } from "../../../../../lib/http/headers.ts";
import { Server } from "../../../../../lib/flow/connection.ts";
import type { SendData } from "../../../../../lib/proxy/commands.ts";
import { latin1 } from "../../../../../lib/http/bytes.ts";
import { close, closed, data, Playbook, send, tctx } from "../../tutils.ts";

function codec(sets: Record<string, unknown> = {}) {
  const t = tctx(sets);
  const server = new Server(["example.com", 80]);
  const layer = new Http1Client(t.ctx, server);
  return { t, server, layer, pb: new Playbook(layer) };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const get = (path = "/", headers: Record<string, string> = {}) =>
  Request.make("GET", `http://example.com${path}`, "", headers);

Deno.test("http1 client: a GET goes out as origin form with its Host, the response comes back as events", () => {
  const { server, pb, layer } = codec();
  assert.ok(layer.idle);
  pb.in(new RequestHeaders(1, get("/a?b=1", { Accept: "*/*" }), true, 0))
    .out(send(server, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"))
    .done();
  assert.ok(!layer.idle);
  pb.in(data(server, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")).in(data(server, "lo"));
  assert.deepEqual(pb.events(), [
    "ResponseHeaders(1, 200 OK)",
    'ResponseData(1, "hel")',
    'ResponseData(1, "lo")',
    "ResponseEndOfMessage(1)",
  ]);
  pb.done();
  assert.ok(layer.idle, "free for the next request");
  assert.ok(layer.reusable);
});

Deno.test("http1 client: a body of known length goes with the head in one write; POST without body says 0", () => {
  const { server, pb } = codec();
  const req = Request.make("POST", "http://example.com/up", "", { "Content-Type": "text/plain" });
  pb.in(new HttpSend(new RequestHeaders(1, req, false, 5)))
    .done()
    .in(new HttpSend(new RequestData(1, bytes("hello"))))
    .out(
      send(
        server,
        "POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
      ),
    )
    .in(new RequestEndOfMessage(1))
    .done();
  pb.in(data(server, "HTTP/1.1 204 No Content\r\n\r\n"));
  assert.deepEqual(pb.events(), ["ResponseHeaders(1, 204 No Content, end)", "ResponseEndOfMessage(1)"]);
  const empty = Request.make("POST", "http://example.com/e");
  pb.in(new RequestHeaders(3, empty, true, 0))
    .out(send(server, "POST /e HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"));
});

Deno.test("http1 client: a body of unknown length is chunked, trailers in the last chunk", () => {
  const { server, pb } = codec();
  const req = Request.make("PUT", "http://example.com/f");
  pb.in(new RequestHeaders(1, req, false, null))
    .in(new RequestData(1, bytes("abc")))
    .out(
      send(server, "PUT /f HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
    )
    .in(new RequestData(1, bytes("de")))
    .out(send(server, "2\r\nde\r\n"))
    .in(new RequestTrailers(1, new Headers([["X-Sum", "5"]])))
    .out(send(server, "0\r\nX-Sum: 5\r\n\r\n"))
    .in(new RequestEndOfMessage(1))
    .done();
});

Deno.test("http1 client: hop-by-hop request fields are dropped, a missing Host is added with a non-default port", () => {
  const { server, pb } = codec();
  const req = new Request({
    method: "GET",
    scheme: "http",
    host: "example.com",
    port: 8080,
    path: "/",
    httpVersion: "HTTP/1.1",
    headers: new Headers([["Proxy-Connection", "keep-alive"], ["Connection", "x-drop"], ["X-Drop", "1"], [
      "X-Keep",
      "2",
    ]]),
  });
  pb.in(new RequestHeaders(1, req, true, 0))
    .out(send(server, "GET / HTTP/1.1\r\nHost: example.com:8080\r\nX-Keep: 2\r\n\r\n"));
});

Deno.test("http1 client: through an upstream proxy the target is absolute; CONNECT uses the authority; OPTIONS *", () => {
  const a = codec();
  a.server.via = ["http", ["proxy", 3128]];
  a.server.viaAbsoluteForm = true;
  a.pb.in(new RequestHeaders(1, get("/x"), true, 0))
    .out(send(a.server, "GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n"));
  const b = codec();
  const c = new Request({
    method: "CONNECT",
    host: "example.com",
    port: 443,
    authority: "example.com:443",
    path: "",
    headers: new Headers([["Host", "example.com:443"]]),
  });
  b.pb.in(new RequestHeaders(1, c, true, 0))
    .out(send(b.server, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"));
  const o = codec();
  const opt = new Request({
    method: "OPTIONS",
    host: "example.com",
    port: 80,
    path: "*",
    headers: new Headers(),
  });
  o.pb.in(new RequestHeaders(1, opt, true, 0))
    .out(send(o.server, "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n"));
});

Deno.test("http1 client: informational responses are skipped; chunked response with trailers", () => {
  const { server, pb, layer } = codec();
  pb.in(new RequestHeaders(1, get(), true, 0)).take();
  pb.in(
    data(
      server,
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\nX-T: 1\r\n\r\n",
    ),
  );
  assert.deepEqual(pb.events(), [
    "ResponseHeaders(1, 200 OK)",
    'ResponseData(1, "wiki")',
    "ResponseTrailers(1, X-T: 1)",
    "ResponseEndOfMessage(1)",
  ]);
  assert.ok(layer.idle);
});

Deno.test("http1 client: a close-delimited response ends with the connection; it is not reusable", () => {
  const { server, pb, layer } = codec();
  pb.in(new RequestHeaders(1, get(), true, 0)).take();
  pb.in(data(server, "HTTP/1.1 200 OK\r\n\r\nstream of"));
  assert.deepEqual(pb.events(), ["ResponseHeaders(1, 200 OK)", 'ResponseData(1, "stream of")']);
  assert.ok(!layer.reusable);
  pb.in(closed(server));
  assert.deepEqual(pb.events(), ["ResponseEndOfMessage(1)"]);
  pb.out(close(server)).done();
  assert.ok(layer.closed);
});

Deno.test("http1 client: Connection: close or HTTP/1.0 without keep-alive: the connection closes after the response", () => {
  for (const head of ["HTTP/1.1 200 OK\r\nConnection: close\r\n", "HTTP/1.0 200 OK\r\n"]) {
    const { server, pb, layer } = codec();
    pb.in(new RequestHeaders(1, get(), true, 0)).take();
    pb.in(data(server, head + "Content-Length: 2\r\n\r\nok"));
    assert.deepEqual(pb.events(), [
      "ResponseHeaders(1, 200 OK)",
      'ResponseData(1, "ok")',
      "ResponseEndOfMessage(1)",
    ]);
    pb.out(close(server)).done();
    assert.ok(!layer.idle && layer.closed, head);
  }
});

Deno.test("http1 client: HEAD and 304 responses have no body whatever their Content-Length", () => {
  const { server, pb } = codec();
  pb.in(new RequestHeaders(1, Request.make("HEAD", "http://example.com/"), true, 0)).take();
  pb.in(data(server, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"));
  assert.deepEqual(pb.events(), ["ResponseHeaders(1, 200 OK, end)", "ResponseEndOfMessage(1)"]);
  pb.in(new RequestHeaders(3, get(), true, 0)).take();
  pb.in(data(server, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"));
  assert.deepEqual(pb.events(), ["ResponseHeaders(3, 304 Not Modified, end)", "ResponseEndOfMessage(3)"]);
  pb.done();
});

Deno.test("http1 client: a malformed response head is a ResponseProtocolError 502 and the connection closes", () => {
  const { server, pb } = codec();
  pb.in(new RequestHeaders(1, get(), true, 0)).take();
  pb.in(data(server, "HTTP/1.1 abc\r\n\r\n"))
    .out(close(server));
  assert.deepEqual(pb.events(), [
    'ResponseProtocolError(1, server-protocol, 502, Invalid response from server: malformed status line: "HTTP/1.1 abc")',
  ]);
  pb.done();
});

Deno.test("http1 client: a response head over max_header_size is a 502", () => {
  const { server, pb } = codec({ max_header_size: 64 });
  pb.in(new RequestHeaders(1, get(), true, 0)).take();
  pb.in(data(server, "HTTP/1.1 200 OK\r\nX: " + "y".repeat(80))).out(close(server));
  assert.deepEqual(pb.events(), [
    "ResponseProtocolError(1, server-protocol, 502, Invalid response from server: header section too large (over 64 bytes))",
  ]);
});

Deno.test("http1 client: a broken chunked response body is a 502; the connection closes first", () => {
  const { server, pb } = codec();
  pb.in(new RequestHeaders(1, get(), true, 0)).take();
  pb.in(data(server, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nxx\r\n"));
  assert.deepEqual(pb.events(), ["ResponseHeaders(1, 200 OK)"]);
  pb.out(close(server));
  const evs = pb.events();
  assert.equal(evs.length, 1);
  assert.match(
    evs[0],
    /^ResponseProtocolError\(1, server-protocol, 502, Invalid response from server: chunked body: /,
  );
  pb.done();
});

Deno.test("http1 client: the server closing before any response byte is server-closed-idle (retryable)", () => {
  const { server, pb } = codec();
  pb.in(new RequestHeaders(1, get(), true, 0)).take();
  pb.in(closed(server)).out(close(server));
  assert.deepEqual(pb.events(), [
    "ResponseProtocolError(1, server-closed-idle, 502, Server closed the connection without sending a response)",
  ]);
});

Deno.test("http1 client: the server closing in the middle of a body is server-closed, naming the progress", () => {
  const { server, pb } = codec();
  pb.in(new RequestHeaders(1, get(), true, 0)).take();
  pb.in(data(server, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n1234")).in(closed(server));
  assert.deepEqual(pb.events(), ["ResponseHeaders(1, 200 OK)", 'ResponseData(1, "1234")']);
  pb.out(close(server));
  assert.deepEqual(pb.events(), [
    "ResponseProtocolError(1, server-closed, 502, Response body incomplete: connection closed after 4 of 10 bytes)",
  ]);
  // a closed codec ignores later bytes
  pb.in(data(server, "late")).done();
});

Deno.test("http1 client: an idle connection the server closes is just closed", () => {
  const { server, pb, layer } = codec();
  pb.in(closed(server)).out(close(server)).done();
  assert.ok(layer.closed && !layer.idle);
});

Deno.test("http1 client: a server that talks while idle, or sends bytes after a response, is not reused", () => {
  const a = codec();
  a.pb.in(data(a.server, "HTTP/1.1 200 OK\r\n\r\n"));
  assert.ok(!a.layer.idle && !a.layer.reusable);
  const b = codec();
  b.pb.in(new RequestHeaders(1, get(), true, 0)).take();
  b.pb.in(data(b.server, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA"));
  assert.deepEqual(b.pb.events(), [
    "ResponseHeaders(1, 200 OK)",
    'ResponseData(1, "x")',
    "ResponseEndOfMessage(1)",
  ]);
  b.pb.out(close(b.server)).done();
});

Deno.test("http1 client: a response before the request body is complete makes the connection unusable after", () => {
  const { server, pb, layer } = codec();
  pb.in(new RequestHeaders(1, Request.make("POST", "http://example.com/"), false, 100))
    .in(new RequestData(1, bytes("part")))
    .out(send(server, /^POST \/ HTTP\/1.1\r\n(.|\r\n)*Content-Length: 100\r\n\r\npart$/));
  pb.in(data(server, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"));
  assert.deepEqual(pb.events(), [
    "ResponseHeaders(1, 413 Payload Too Large, end)",
    "ResponseEndOfMessage(1)",
  ]);
  assert.ok(!layer.reusable);
  // the stream gives up on the request: the connection goes
  pb.in(new RequestProtocolError(1, new ProtocolError("refused", "killed", null))).out(close(server)).done();
});

Deno.test("http1 client: 101 Switching Protocols: the rest of the bytes are the next protocol's", () => {
  const { server, pb, layer } = codec();
  const req = get("/ws", { Connection: "Upgrade", Upgrade: "websocket" });
  pb.in(new RequestHeaders(1, req, true, 0))
    .out(
      send(
        server,
        "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      ),
    );
  pb.in(
    data(
      server,
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
    ),
  );
  assert.deepEqual(pb.events(), ["ResponseHeaders(1, 101 Switching Protocols, end)"]);
  layer.upgrade();
  assert.equal(latin1(layer.takeBuffered()), "\x81\x02hi");
  assert.ok(!layer.reusable);
  pb.done();
});

Deno.test("http1 client: a request made unserializable by an addon fails the stream with a 502, nothing is sent", () => {
  const { server, pb } = codec();
  const req = get("/", { "X-Bad": "ok" });
  req.headers.fields.push(["X-Evil", "a\r\nInjected: 1"]);
  pb.in(new RequestHeaders(1, req, true, 0)).out(close(server));
  const evs = pb.events();
  assert.equal(evs.length, 1);
  assert.match(evs[0], /^ResponseProtocolError\(1, internal, 502, Cannot send the request: /);
  pb.done();
});

Deno.test("http1 client: a large body goes in its own write after the head", () => {
  const { server, pb } = codec();
  const big = new Uint8Array(70_000).fill(0x62);
  pb.in(new RequestHeaders(1, Request.make("POST", "http://example.com/"), false, big.length))
    .in(new RequestData(1, big))
    .out(send(server, "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 70000\r\n\r\n"));
  assert.equal((pb.take() as SendData).data.length, 70_000);
  pb.in(new RequestData(1, bytes("!"))).out(send(server, "!")).done();
});
