/**
 * The flow logic (HttpStream) alone: HTTP events of one stream in, its exact commands out (SendHttp to the
 * client or the server, GetHttpConnection, ReleaseHttpConnection, hooks), replies to its blocking ones.
 */
import assert from "node:assert/strict";
import { HttpStream, type StreamOptions } from "../../../../../lib/proxy/layers/http/stream.ts";
import {
  GetHttpConnection,
  HoldStream,
  ReleaseHttpConnection,
  RequestData,
  RequestEndOfMessage,
  RequestHeaders,
  RequestProtocolError,
  RequestTrailers,
  ResponseData,
  ResponseEndOfMessage,
  ResponseHeaders,
  ResponseProtocolError,
  ResponseTrailers,
  SendHttp,
} from "../../../../../lib/proxy/layers/http/events.ts";
import { ProtocolError } from "../../../../../lib/proxy/errors.ts";
import { Request, Response } from "../../../../../lib/http/message.ts";
import { Headers } from "../../../../../lib/http/headers.ts";
import type { Client } from "../../../../../lib/flow/connection.ts";
import { Server } from "../../../../../lib/flow/connection.ts";
import { HTTPFlow } from "../../../../../lib/flow/flow.ts";
import type { StartHook } from "../../../../../lib/proxy/commands.ts";
import { latin1 } from "../../../../../lib/http/bytes.ts";
import { cmd, hook, Playbook, sendHttp, tctx } from "../../tutils.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

function stream(
  sets: Record<string, unknown> = {},
  opts: StreamOptions = { mode: "regular", rewriteHost: false },
) {
  const t = tctx(sets);
  const connects: HTTPFlow[] = [];
  const upgrades: [HTTPFlow, Server][] = [];
  const done: HttpStream[] = [];
  const watched: boolean[] = [];
  const st = new HttpStream(
    t.ctx,
    1,
    opts,
    (f) => connects.push(f),
    (f, s) => upgrades.push([f, s]),
    (s) => done.push(s),
    (_s, w) => watched.push(w),
  );
  const pb = new Playbook(st);
  return { t, pb, st, connects, upgrades, done, watched };
}

/** An open server connection (opened now: not a reused one). */
function server(address: [string, number] = ["example.com", 80]): Server {
  const s = new Server(address);
  s.timestampStart = Date.now() / 1000 + 1;
  return s;
}

const getConn = (address = "example.com:80", fresh = false) =>
  cmd(GetHttpConnection, (c) => c.address.join(":") === address && c.fresh === fresh);
const release = (s: Server, reusable: boolean) =>
  cmd(ReleaseHttpConnection, (c) => c.conn === s && c.reusable === reusable);
const GET = () => Request.make("GET", "http://example.com/p");
/** A response head as a codec reads it (no body yet). */
const response = (_body = "", headers: Record<string, string> = {}) =>
  new Response({ statusCode: 200, headers: new Headers(Object.entries(headers)), rawContent: null });

/** Request, hooks, connection; returns the server. */
function sendGet(pb: Playbook, t: ReturnType<typeof tctx>): Server {
  const s = server();
  pb.in(new RequestHeaders(1, GET(), true)).in(new RequestEndOfMessage(1))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(getConn()).reply(s)
    .out(sendHttp(s, "RequestHeaders(1, GET http://example.com/p HTTP/1.1, end)"));
  void t;
  return s;
}

Deno.test("stream: a buffered GET: hooks in mitmproxy's order, the connection only after `request`", () => {
  const { t, pb, done, watched } = stream();
  const s = sendGet(pb, t);
  pb.done();
  assert.deepEqual(watched, [true], "waits for the response head");
  pb.in(new ResponseHeaders(1, response(), false))
    .out(hook("responseheaders")).reply()
    .in(new ResponseData(1, bytes("hel")))
    .in(new ResponseData(1, bytes("lo")))
    .in(new ResponseTrailers(1, new Headers([["X-T", "1"]])))
    .done()
    .in(new ResponseEndOfMessage(1))
    .out(release(s, true));
  const h = pb.take() as StartHook;
  assert.equal(h.name, "response");
  const flow = h.flow as HTTPFlow;
  assert.equal(flow.response!.text, "hello");
  assert.deepEqual(flow.response!.trailers!.fields, [["X-T", "1"]]);
  assert.equal(flow.serverConn, s);
  assert.deepEqual(watched, [true, false]);
  pb.reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 200 OK)"))
    .out(sendHttp(t.client, 'ResponseData(1, "hello")'))
    .out(sendHttp(t.client, "ResponseTrailers(1, X-T: 1)"))
    .out(sendHttp(t.client, "ResponseEndOfMessage(1)"))
    .done();
  assert.deepEqual(done, [pb.layer]);
});

Deno.test("stream: a request body is buffered for `request`, then sent with its length and trailers", () => {
  const { t, pb } = stream();
  const req = Request.make("POST", "http://example.com/up", "", { "Content-Length": "11" });
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .in(new RequestData(1, bytes("hello ")))
    .in(new RequestData(1, bytes("world")))
    .in(new RequestTrailers(1, new Headers([["X-Sum", "9"]])))
    .done()
    .in(new RequestEndOfMessage(1))
    .out(hook("request", (f) => (f as HTTPFlow).request.text === "hello world")).reply();
  const s = server();
  pb.out(getConn()).reply(s)
    .out(sendHttp(s, "RequestHeaders(1, POST http://example.com/up HTTP/1.1)"))
    .out(sendHttp(s, 'RequestData(1, "hello world")'))
    .out(sendHttp(s, "RequestTrailers(1, X-Sum: 9)"))
    .out(sendHttp(s, "RequestEndOfMessage(1)"))
    .done();
  void t;
});

Deno.test("stream: an answer set in `request`: responseheaders, response, no server connection at all", () => {
  const { t, pb } = stream();
  pb.in(new RequestHeaders(1, GET(), true)).in(new RequestEndOfMessage(1))
    .out(hook("requestheaders")).reply();
  const h = pb.take() as StartHook;
  assert.equal(h.name, "request");
  (h.flow as HTTPFlow).response = Response.make(404, "nope");
  pb.reply()
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 404 Not Found)"))
    .out(sendHttp(t.client, 'ResponseData(1, "nope")'))
    .out(sendHttp(t.client, "ResponseEndOfMessage(1)"))
    .done();
});

Deno.test("stream: an answer set in `requestheaders` reads a small body first (the flow keeps it)", () => {
  const { t, pb } = stream();
  const req = Request.make("POST", "http://example.com/", "", { "Content-Length": "3" });
  pb.in(new RequestHeaders(1, req, false));
  const h = pb.take() as StartHook;
  const flow = h.flow as HTTPFlow;
  flow.response = Response.make(201, "");
  pb.reply().done().in(new RequestData(1, bytes("abc"))).done().in(new RequestEndOfMessage(1))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 201 Created, end)"))
    .done();
  assert.equal(flow.request.text, "abc");
});

Deno.test("stream: interception: an intercepted `request` holds the flow until resume; events wait meanwhile", async () => {
  const { t, pb } = stream();
  await t.master.addons.add({ request: (f: HTTPFlow) => f.intercept() });
  pb.in(new RequestHeaders(1, GET(), true))
    .out(hook("requestheaders")).reply()
    .in(new RequestEndOfMessage(1));
  const h = pb.take() as StartHook;
  const flow = h.flow as HTTPFlow;
  const running = pb.runHook();
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(flow.intercepted);
  assert.ok(!h.done);
  pb.done();
  flow.request.path = "/edited";
  flow.resume();
  await running;
  const s = server();
  pb.out(getConn()).reply(s)
    .out(sendHttp(s, "RequestHeaders(1, GET http://example.com/edited HTTP/1.1, end)"))
    .done();
});

Deno.test("stream: interception then kill: no connection, `error` with Connection killed., the client is dropped", async () => {
  const { t, pb } = stream();
  await t.master.addons.add({ request: (f: HTTPFlow) => f.intercept() });
  pb.in(new RequestHeaders(1, GET(), true)).in(new RequestEndOfMessage(1))
    .out(hook("requestheaders")).reply();
  const h = pb.take() as StartHook;
  const flow = h.flow as HTTPFlow;
  const running = pb.runHook();
  await new Promise((r) => setTimeout(r, 5));
  flow.kill();
  await running;
  pb.out(hook("error", (f) => (f as HTTPFlow).error!.msg === "Connection killed.")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, refused, null, killed)"))
    .done();
});

Deno.test("stream: killed in `response`: the server connection was given back, the client gets nothing", () => {
  const { t, pb } = stream();
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response("x"), false))
    .out(hook("responseheaders")).reply()
    .in(new ResponseData(1, bytes("x")))
    .in(new ResponseEndOfMessage(1))
    .out(release(s, true));
  (pb.take() as StartHook).flow!.kill();
  pb.reply()
    .out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, refused, null, killed)"))
    .done();
});

Deno.test("stream: killed in `responseheaders`: the server side is aborted and not reused", () => {
  const { t, pb } = stream();
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response(), false));
  (pb.take() as StartHook).flow!.kill();
  pb.reply()
    .out(sendHttp(s, "RequestProtocolError(1, refused, null, killed)"))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, refused, null, killed)"))
    .done();
});

Deno.test("stream: stream_large_bodies: a large declared request body streams to the server before `request`", () => {
  const { t, pb } = stream({ stream_large_bodies: "10" });
  const req = Request.make("PUT", "http://example.com/big", "", { "Content-Length": "20" });
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply();
  const s = server();
  pb.out(getConn()).reply(s)
    .out(sendHttp(s, "RequestHeaders(1, PUT http://example.com/big HTTP/1.1)"))
    .in(new RequestData(1, bytes("0123456789")))
    .out(sendHttp(s, 'RequestData(1, "0123456789")'))
    .in(new RequestData(1, bytes("abcdefghij")))
    .out(sendHttp(s, 'RequestData(1, "abcdefghij")'))
    .in(new RequestEndOfMessage(1))
    .out(sendHttp(s, "RequestEndOfMessage(1)"))
    .out(hook("request", (f) => (f as HTTPFlow).request.rawContent === null)).reply()
    .done();
  void t;
});

Deno.test("stream: a request body that grows past stream_large_bodies switches to streaming with what it had", () => {
  const { t, pb } = stream({ stream_large_bodies: "4", store_streamed_bodies: true });
  const req = Request.make("POST", "http://example.com/", "", { "Transfer-Encoding": "chunked" });
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .in(new RequestData(1, bytes("abc")))
    .done()
    .in(new RequestData(1, bytes("def")));
  const s = server();
  pb.out(getConn()).reply(s)
    .out(sendHttp(s, "RequestHeaders(1, POST http://example.com/ HTTP/1.1)"))
    .out(sendHttp(s, 'RequestData(1, "abc")'))
    .out(sendHttp(s, 'RequestData(1, "def")'))
    .in(new RequestEndOfMessage(1))
    .out(sendHttp(s, "RequestEndOfMessage(1)"))
    .out(hook("request", (f) => (f as HTTPFlow).request.text === "abcdef")).reply()
    .done();
  void t;
});

Deno.test("stream: request body chunks that come while the connection is being made are sent after its head", () => {
  const { pb } = stream({ stream_large_bodies: "2" });
  const req = Request.make("POST", "http://example.com/", "", { "Content-Length": "6" });
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .out(getConn())
    .in(new RequestData(1, bytes("abc")))
    .in(new RequestData(1, bytes("def")))
    .in(new RequestEndOfMessage(1))
    .done();
  const s = server();
  pb.reply(s)
    .out(sendHttp(s, "RequestHeaders(1, POST http://example.com/ HTTP/1.1)"))
    .out(sendHttp(s, 'RequestData(1, "abc")'))
    .out(sendHttp(s, 'RequestData(1, "def")'))
    .out(sendHttp(s, "RequestEndOfMessage(1)"))
    .out(hook("request")).reply()
    .done();
});

/** SendHttp of a body chunk of `size` bytes on `conn`. */
const bodyTo = (conn: Server | Client, kind: typeof RequestData | typeof ResponseData, size: number) =>
  cmd(SendHttp, (c) => c.conn === conn && c.event instanceof kind && c.event.data.length === size);

Deno.test("stream: body data piling up behind a slow connection holds the stream's sources, then lets go", () => {
  const { pb } = stream({ stream_large_bodies: "1m" });
  const req = Request.make("POST", "http://example.com/", "", { "Content-Length": String(3 << 19) });
  const part = () => new RequestData(1, new Uint8Array(1 << 19));
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .out(getConn())
    .in(part()).in(part()) // 1 MiB waits: not yet more than the limit
    .done()
    .in(part()) // 1.5 MiB: the stream asks to stop reading what feeds it
    .out(cmd(HoldStream, (c) => c.streamId === 1 && c.held))
    .done();
  const s = server();
  pb.reply(s)
    .out(sendHttp(s, "RequestHeaders(1, POST http://example.com/ HTTP/1.1)"))
    .out(bodyTo(s, RequestData, 1 << 19))
    .out(bodyTo(s, RequestData, 1 << 19))
    .out(bodyTo(s, RequestData, 1 << 19))
    .out(cmd(HoldStream, (c) => c.streamId === 1 && !c.held)) // the queue is empty again
    .in(new RequestEndOfMessage(1))
    .out(sendHttp(s, "RequestEndOfMessage(1)"))
    .out(hook("request")).reply()
    .done();
});

Deno.test("stream: response data piling up behind a slow `responseheaders` hook holds the stream too", () => {
  const { t, pb } = stream();
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response("", { "Content-Length": String(3 << 19) }), false))
    .out(hook("responseheaders"));
  for (let i = 0; i < 3; i++) pb.in(new ResponseData(1, new Uint8Array(1 << 19)));
  pb.out(cmd(HoldStream, (c) => c.held)).done()
    .reply()
    .out(cmd(HoldStream, (c) => !c.held))
    .in(new ResponseEndOfMessage(1))
    .out(release(s, true))
    .out(hook("response", (f) => (f as HTTPFlow).response!.rawContent!.length === 3 << 19)).reply()
    .out(sendHttp(t.client, /^ResponseHeaders\(1, 200/))
    .out(bodyTo(t.client, ResponseData, 3 << 19))
    .out(sendHttp(t.client, "ResponseEndOfMessage(1)"))
    .done();
});

Deno.test("stream: a streamed response goes out as it comes; `response` fires after the end", () => {
  const { t, pb } = stream({ stream_large_bodies: "5" });
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response("", { "Content-Length": "12" }), false))
    .out(hook("responseheaders")).reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 200 OK)"))
    .in(new ResponseData(1, bytes("hello ")))
    .out(sendHttp(t.client, 'ResponseData(1, "hello ")'))
    .in(new ResponseData(1, bytes("world!")))
    .out(sendHttp(t.client, 'ResponseData(1, "world!")'))
    .in(new ResponseTrailers(1, new Headers([["X-T", "2"]])))
    .in(new ResponseEndOfMessage(1))
    .out(sendHttp(t.client, "ResponseTrailers(1, X-T: 2)"))
    .out(sendHttp(t.client, "ResponseEndOfMessage(1)"))
    .out(release(s, true))
    .out(hook("response", (f) => (f as HTTPFlow).response!.rawContent === null)).reply()
    .done();
});

Deno.test("stream: flow.response.stream as a function transforms each chunk, the length becomes unknown", () => {
  const { t, pb } = stream({ store_streamed_bodies: true });
  sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response("", { "Content-Length": "4" }), false));
  const h = pb.take() as StartHook;
  let calls = 0;
  (h.flow as HTTPFlow).response!.stream = (c: Uint8Array) => {
    calls++;
    return c.length ? bytes(latin1(c).toUpperCase()) : bytes("<end>");
  };
  pb.reply();
  const head = pb.take() as import("../../../../../lib/proxy/layers/http/events.ts").SendHttp;
  assert.equal((head.event as ResponseHeaders).length, null);
  pb.in(new ResponseData(1, bytes("abcd")))
    .out(sendHttp(t.client, 'ResponseData(1, "ABCD")'))
    .in(new ResponseEndOfMessage(1))
    .out(sendHttp(t.client, 'ResponseData(1, "<end>")'))
    .out(sendHttp(t.client, "ResponseEndOfMessage(1)"))
    .take();
  pb.out(hook("response", (f) => (f as HTTPFlow).response!.text === "ABCD")).reply().done();
  assert.equal(calls, 2);
});

Deno.test("stream: a response body that grows past stream_large_bodies streams from then on", () => {
  const { t, pb } = stream({ stream_large_bodies: "4" });
  sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response(""), false))
    .out(hook("responseheaders")).reply()
    .in(new ResponseData(1, bytes("abc")))
    .done()
    .in(new ResponseData(1, bytes("def")))
    .out(sendHttp(t.client, "ResponseHeaders(1, 200 OK)"))
    .out(sendHttp(t.client, 'ResponseData(1, "abc")'))
    .out(sendHttp(t.client, 'ResponseData(1, "def")'))
    .in(new ResponseData(1, bytes("g")))
    .out(sendHttp(t.client, 'ResponseData(1, "g")'));
});

Deno.test("stream: body_size_limit: a declared request body over it is a 413 page, nothing reaches a server", () => {
  const { t, pb } = stream({ body_size_limit: "10" });
  const req = Request.make("POST", "http://example.com/", "", { "Content-Length": "11" });
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .out(
      hook("error", (f) => (f as HTTPFlow).error!.msg === "Request body exceeds mitmdeno's body_size_limit."),
    ).reply()
    .out(
      sendHttp(
        t.client,
        "ResponseProtocolError(1, client-protocol, 413, Request body exceeds mitmdeno's body_size_limit.)",
      ),
    )
    .done();
});

Deno.test("stream: body_size_limit: a response body over it aborts the server side and is a 502", () => {
  const { t, pb } = stream({ body_size_limit: "4" });
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response(""), false))
    .out(hook("responseheaders")).reply()
    .in(new ResponseData(1, bytes("abcde")))
    .out(sendHttp(s, "RequestProtocolError(1, limit, null, limit)"))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(
      sendHttp(
        t.client,
        "ResponseProtocolError(1, limit, 502, Response body exceeds mitmdeno's body_size_limit.)",
      ),
    )
    .done();
});

Deno.test("stream: http_response_timeout: a server silent too long is a 504 naming the option", () => {
  const { t, pb, st, watched } = stream({ http_response_timeout: 5 });
  const s = sendGet(pb, t);
  assert.ok(st.checkResponseTimeout(Date.now() + 1000), "still waiting after 1 s");
  pb.done();
  assert.equal(st.checkResponseTimeout(Date.now() + 5000), false);
  pb.out(sendHttp(s, "RequestProtocolError(1, timeout, null, timeout)"))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(
      sendHttp(
        t.client,
        "ResponseProtocolError(1, timeout, 504, Server did not respond within 5s (http_response_timeout))",
      ),
    )
    .done();
  assert.deepEqual(watched, [true], "the HTTP layer's timer drops it: checkResponseTimeout said false");
  // a late response is ignored
  pb.in(new ResponseHeaders(1, response(), true)).done();
});

Deno.test("stream: tcp_timeout shorter than http_response_timeout is the one that applies", () => {
  const { t, pb, st } = stream({ http_response_timeout: 60, tcp_timeout: 2 });
  const s = sendGet(pb, t);
  assert.equal(st.checkResponseTimeout(Date.now() + 2000), false);
  pb.out(sendHttp(s, /^RequestProtocolError/)).out(release(s, false)).out(hook("error")).reply()
    .out(
      sendHttp(
        t.client,
        "ResponseProtocolError(1, timeout, 504, Server timed out: no data for 2s (tcp_timeout))",
      ),
    );
});

Deno.test("stream: a server error before the response: `error`, then an error page (502 with the reason)", () => {
  const { t, pb } = stream();
  const s = sendGet(pb, t);
  pb.in(new ResponseProtocolError(1, new ProtocolError("server-closed", "Response body incomplete", 502)))
    .out(release(s, false))
    .out(hook("error", (f) => (f as HTTPFlow).error!.msg === "Response body incomplete")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, server-closed, 502, Response body incomplete)"))
    .done();
});

Deno.test("stream: a failure after the response started streaming: no page, the error has no status", () => {
  const { t, pb } = stream({ stream_large_bodies: "1" });
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response("", { "Content-Length": "10" }), false))
    .out(hook("responseheaders")).reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 200 OK)"))
    .in(new ResponseProtocolError(1, new ProtocolError("server-closed", "gone", 502)))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, server-closed, null, gone)"))
    .done();
});

Deno.test("stream: a reused connection closed before any response byte: one retry on a fresh connection", () => {
  const { t, pb } = stream();
  const old = new Server(["example.com", 80]);
  old.timestampStart = Date.now() / 1000 - 60; // opened before this request: a reused connection
  pb.in(new RequestHeaders(1, GET(), true)).in(new RequestEndOfMessage(1))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(getConn()).reply(old)
    .out(sendHttp(old, /^RequestHeaders\(1, GET/))
    .in(new ResponseProtocolError(1, new ProtocolError("server-closed-idle", "closed", 502)))
    .out(release(old, false))
    .out(getConn("example.com:80", true));
  const fresh = server();
  pb.reply(fresh)
    .out(sendHttp(fresh, "RequestHeaders(1, GET http://example.com/p HTTP/1.1, end)"))
    .done();
  // the fresh one failing as well is final: no second retry
  pb.in(new ResponseProtocolError(1, new ProtocolError("server-closed-idle", "closed again", 502)))
    .out(release(fresh, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, server-closed-idle, 502, closed again)"));
});

Deno.test("stream: a POST is not retried (not idempotent)", () => {
  const { t, pb } = stream();
  const old = new Server(["example.com", 80]);
  old.timestampStart = Date.now() / 1000 - 60;
  pb.in(new RequestHeaders(1, Request.make("POST", "http://example.com/"), true))
    .in(new RequestEndOfMessage(1))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(getConn()).reply(old)
    .take();
  pb.in(new ResponseProtocolError(1, new ProtocolError("server-closed-idle", "closed", 502)))
    .out(release(old, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, /^ResponseProtocolError\(1, server-closed-idle, 502/));
});

Deno.test("stream: a connection that cannot be had: `error` and the 502 of the connection manager", () => {
  const { t, pb } = stream();
  pb.in(new RequestHeaders(1, GET(), true)).in(new RequestEndOfMessage(1))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(getConn()).reply(new ProtocolError("connect", "Cannot resolve example.com:80: host not found", 502))
    .out(hook("error")).reply()
    .out(
      sendHttp(
        t.client,
        "ResponseProtocolError(1, connect, 502, Cannot resolve example.com:80: host not found)",
      ),
    )
    .done();
});

Deno.test("stream: the client failing mid-body aborts the server side", () => {
  const { t, pb } = stream({ stream_large_bodies: "1" });
  const req = Request.make("POST", "http://example.com/", "", { "Content-Length": "100" });
  const s = server();
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .out(getConn()).reply(s)
    .out(sendHttp(s, /^RequestHeaders/))
    .in(new RequestProtocolError(1, new ProtocolError("client-closed", "Request body incomplete", null)))
    .out(sendHttp(s, "RequestProtocolError(1, client-closed, null, Request body incomplete)"))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, client-closed, null, Request body incomplete)"))
    .done();
});

Deno.test("stream: Expect: 100-continue is answered by the proxy and removed from the request", () => {
  const { t, pb } = stream();
  const req = Request.make("PUT", "http://example.com/", "", {
    Expect: "100-continue",
    "Content-Length": "2",
  });
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 100 Continue)"))
    .done();
  assert.ok(!req.headers.has("expect"));
});

Deno.test("stream: regular mode refuses origin-form requests and requests to the proxy itself (400)", () => {
  const a = stream();
  a.pb.in(
    new RequestHeaders(1, new Request({ method: "GET", host: "", path: "/x", headers: new Headers() }), true),
  )
    .out(hook("error")).reply()
    .out(
      sendHttp(
        a.t.client,
        /^ResponseProtocolError\(1, client-protocol, 400, Invalid request target for a proxy: "\/x"/,
      ),
    );
  const b = stream();
  b.t.master.proxy.listeningPorts.add(8080);
  b.pb.in(new RequestHeaders(1, Request.make("GET", "http://127.0.0.1:8080/"), true))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(hook("error")).reply()
    .out(
      sendHttp(
        b.t.client,
        /^ResponseProtocolError\(1, client-protocol, 400, Request destination is this proxy itself/,
      ),
    );
});

Deno.test("stream: transparent mode: origin form goes to the tunnel's server, else to the Host header", () => {
  const a = stream({}, { mode: "transparent", rewriteHost: false });
  a.t.ctx.server = new Server(["tunnel.example", 8443]);
  a.t.ctx.server.tls = true;
  const r1 = new Request({ method: "GET", host: "", path: "/x", headers: new Headers([["Host", "other"]]) });
  a.pb.in(new RequestHeaders(1, r1, true)).out(hook("requestheaders"));
  assert.deepEqual([r1.scheme, r1.host, r1.port], ["https", "tunnel.example", 8443]);
  const b = stream({}, { mode: "transparent", rewriteHost: false });
  const r2 = new Request({
    method: "GET",
    host: "",
    path: "/",
    headers: new Headers([["Host", "h.example:81"]]),
  });
  b.pb.in(new RequestHeaders(1, r2, true)).out(hook("requestheaders"));
  assert.deepEqual([r2.scheme, r2.host, r2.port], ["http", "h.example", 81]);
  const c = stream({}, { mode: "transparent", rewriteHost: false });
  c.pb.in(
    new RequestHeaders(1, new Request({ method: "GET", host: "", path: "/", headers: new Headers() }), true),
  )
    .out(hook("error")).reply()
    .out(
      sendHttp(
        c.t.client,
        "ResponseProtocolError(1, client-protocol, 400, Request destination unknown: no Host header)",
      ),
    );
  const d = stream({}, { mode: "transparent", rewriteHost: false });
  const r4 = new Request({
    method: "CONNECT",
    host: "x",
    port: 443,
    authority: "x:443",
    path: "",
    headers: new Headers(),
  });
  d.pb.in(new RequestHeaders(1, r4, true))
    .out(hook("error")).reply()
    .out(
      sendHttp(
        d.t.client,
        "ResponseProtocolError(1, client-protocol, 400, CONNECT is only allowed in regular and upstream proxy mode)",
      ),
    );
});

Deno.test("stream: absolute form: a Host field that disagrees with the target is replaced; reverse rewrites Host", () => {
  const a = stream();
  const r = Request.make("GET", "http://example.com:8080/", "", { Host: "evil.example" });
  a.pb.in(new RequestHeaders(1, r, true)).out(hook("requestheaders"));
  assert.equal(r.headers.get("host"), "example.com:8080");
  const b = stream({}, { mode: "transparent", rewriteHost: true });
  b.t.ctx.server = new Server(["backend", 443]);
  b.t.ctx.server.tls = true;
  const r2 = new Request({ method: "GET", host: "", path: "/", headers: new Headers([["Host", "front"]]) });
  b.pb.in(new RequestHeaders(1, r2, true)).out(hook("requestheaders"));
  assert.equal(r2.headers.get("host"), "backend");
  const c = stream({ keep_host_header: true }, { mode: "transparent", rewriteHost: true });
  c.t.ctx.server = new Server(["backend", 8000]);
  const r3 = new Request({ method: "GET", host: "", path: "/", headers: new Headers([["Host", "front"]]) });
  c.pb.in(new RequestHeaders(1, r3, true)).out(hook("requestheaders"));
  assert.equal(r3.headers.get("host"), "front");
  assert.deepEqual([r3.host, r3.port], ["backend", 8000]);
  // in a tunnel (no rewrite) the client's Host stays too, also when the port comes from the scheme
  const d = stream({}, { mode: "transparent", rewriteHost: false });
  d.t.client.tls = true;
  const r4 = new Request({
    method: "GET",
    host: "",
    port: 0,
    path: "/",
    headers: new Headers([["Host", "h.example"]]),
  });
  d.pb.in(new RequestHeaders(1, r4, true)).out(hook("requestheaders"));
  assert.deepEqual([r4.scheme, r4.host, r4.port, r4.headers.get("host")], [
    "https",
    "h.example",
    443,
    "h.example",
  ]);
});

Deno.test("stream: CONNECT: http_connect, the layer connects, 200 Connection established, http_connected", () => {
  const { t, pb, st, connects } = stream();
  const req = new Request({
    method: "CONNECT",
    host: "example.com",
    port: 443,
    authority: "example.com:443",
    path: "",
    headers: new Headers(),
  });
  pb.in(new RequestHeaders(1, req, true))
    .out(hook("http_connect")).reply()
    .done();
  assert.equal(connects.length, 1);
  let continued = 0;
  st.connectEstablished(() => continued++);
  pb.out(sendHttp(t.client, "ResponseHeaders(1, 200 Connection established, end)"))
    .out(hook("http_connected")).reply()
    .done();
  assert.equal(continued, 1);
});

Deno.test("stream: CONNECT refused by an addon (403 in http_connect): http_connect_error, the 403 goes out", () => {
  const { t, pb, connects } = stream();
  const req = new Request({
    method: "CONNECT",
    host: "example.com",
    port: 443,
    authority: "example.com:443",
    path: "",
    headers: new Headers(),
  });
  pb.in(new RequestHeaders(1, req, true));
  ((pb.take() as StartHook).flow as HTTPFlow).response = Response.make(403, "no tunnels");
  pb.reply()
    .out(hook("http_connect_error")).reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 403 Forbidden)"))
    .out(sendHttp(t.client, 'ResponseData(1, "no tunnels")'))
    .out(sendHttp(t.client, "ResponseEndOfMessage(1)"))
    .done();
  assert.equal(connects.length, 0);
});

Deno.test("stream: CONNECT to a server that cannot be reached: http_connect_error, then the error page", () => {
  const { t, pb, st } = stream();
  const req = new Request({
    method: "CONNECT",
    host: "example.com",
    port: 443,
    authority: "example.com:443",
    path: "",
    headers: new Headers(),
  });
  pb.in(new RequestHeaders(1, req, true)).out(hook("http_connect")).reply();
  st.connectFailed(
    new ProtocolError("connect", "Cannot connect to example.com:443: connection refused", 502),
  );
  pb.out(hook("http_connect_error", (f) => (f as HTTPFlow).error!.msg.includes("refused"))).reply()
    .out(
      sendHttp(
        t.client,
        "ResponseProtocolError(1, connect, 502, Cannot connect to example.com:443: connection refused)",
      ),
    )
    .done();
});

Deno.test("stream: a CONNECT killed in http_connected goes no further", () => {
  const { t, pb, st } = stream();
  const req = new Request({
    method: "CONNECT",
    host: "example.com",
    port: 443,
    authority: "example.com:443",
    path: "",
    headers: new Headers(),
  });
  pb.in(new RequestHeaders(1, req, true)).out(hook("http_connect")).reply();
  let continued = 0;
  st.connectEstablished(() => continued++);
  pb.out(sendHttp(t.client, /^ResponseHeaders\(1, 200/));
  (pb.take() as StartHook).flow!.kill();
  pb.reply().out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, refused, null, killed)"))
    .done();
  assert.equal(continued, 0);
});

Deno.test("stream: 101 Switching Protocols: responseheaders, response, the 101 goes out, the layer takes over", () => {
  const { t, pb, upgrades } = stream();
  const s = sendGet(pb, t);
  const r = new Response({ statusCode: 101, headers: new Headers([["Upgrade", "websocket"]]) });
  pb.in(new ResponseHeaders(1, r, true))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(sendHttp(t.client, "ResponseHeaders(1, 101 Switching Protocols, end)"))
    .done();
  assert.equal(upgrades.length, 1);
  assert.equal(upgrades[0][1], s);
});

Deno.test("stream: a replayed flow is used as the stream's flow (RequestHeaders.flow)", () => {
  const { t, pb } = stream();
  const req = GET();
  const f = new HTTPFlow(t.client, new Server(null), Request.make("GET", "http://old.example/"));
  pb.in(new RequestHeaders(1, req, true, 0, f)).out(hook("requestheaders", (d) => d === f));
  assert.equal(f.request, req);
  assert.deepEqual(f.serverConn.address, ["example.com", 80]);
});

Deno.test("stream: flow.request.stream as a function: the request streams through it, its length unknown", () => {
  const { pb } = stream({ store_streamed_bodies: true });
  const req = Request.make("POST", "http://example.com/", "", { "Content-Length": "3" });
  pb.in(new RequestHeaders(1, req, false));
  const h = pb.take() as StartHook;
  (h.flow as HTTPFlow).request.stream = (c: Uint8Array) => (c.length ? bytes(`[${latin1(c)}]`) : bytes("!"));
  pb.reply();
  const s = server();
  pb.out(getConn()).reply(s);
  const head = pb.take() as import("../../../../../lib/proxy/layers/http/events.ts").SendHttp;
  assert.equal((head.event as RequestHeaders).length, null);
  pb.in(new RequestData(1, bytes("abc")))
    .out(sendHttp(s, 'RequestData(1, "[abc]")'))
    .in(new RequestTrailers(1, new Headers([["X-T", "1"]])))
    .in(new RequestEndOfMessage(1))
    .out(sendHttp(s, 'RequestData(1, "!")'))
    .out(sendHttp(s, "RequestTrailers(1, X-T: 1)"))
    .out(sendHttp(s, "RequestEndOfMessage(1)"))
    .out(hook("request", (f) => (f as HTTPFlow).request.text === "[abc]")).reply()
    .done();
});

Deno.test("stream: body_size_limit: a request body without declared length that grows over it is a 413", () => {
  const { t, pb } = stream({ body_size_limit: "4" });
  const req = Request.make("POST", "http://example.com/", "", { "Transfer-Encoding": "chunked" });
  pb.in(new RequestHeaders(1, req, false))
    .out(hook("requestheaders")).reply()
    .in(new RequestData(1, bytes("abc")))
    .done()
    .in(new RequestData(1, bytes("de")))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, /^ResponseProtocolError\(1, client-protocol, 413, /))
    .in(new RequestData(1, bytes("more")))
    .done();
});

Deno.test("stream: body_size_limit: a declared response body over it (not streamed) is a 502 before any body", () => {
  const { t, pb } = stream({ body_size_limit: "4" });
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response("", { "Content-Length": "100" }), false))
    .out(hook("responseheaders")).reply()
    .out(sendHttp(s, "RequestProtocolError(1, limit, null, limit)"))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, /^ResponseProtocolError\(1, limit, 502, /))
    .done();
});

Deno.test("stream: an addon that removes the response in `response` kills the flow", () => {
  const { t, pb } = stream();
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, response(), true))
    .out(hook("responseheaders")).reply()
    .in(new ResponseEndOfMessage(1))
    .out(release(s, true));
  ((pb.take() as StartHook).flow as HTTPFlow).response = null;
  pb.reply()
    .out(hook("error", (f) => (f as HTTPFlow).error!.msg === "Connection killed.")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, refused, null, killed)"))
    .done();
});

Deno.test("stream: a 101 killed in `response`: no upgrade", () => {
  const { t, pb, upgrades } = stream();
  const s = sendGet(pb, t);
  pb.in(new ResponseHeaders(1, new Response({ statusCode: 101, headers: new Headers() }), true))
    .out(hook("responseheaders")).reply();
  (pb.take() as StartHook).flow!.kill();
  pb.reply()
    .out(sendHttp(s, "RequestProtocolError(1, refused, null, killed)"))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, refused, null, killed)"));
  assert.equal(upgrades.length, 0);
});

Deno.test("stream: an invalid Host header of an origin-form request is a 400", () => {
  const { t, pb } = stream({}, { mode: "transparent", rewriteHost: false });
  pb.in(
    new RequestHeaders(
      1,
      new Request({ method: "GET", host: "", path: "/", headers: new Headers([["Host", "a b"]]) }),
      true,
    ),
  )
    .out(hook("error")).reply()
    .out(sendHttp(t.client, 'ResponseProtocolError(1, client-protocol, 400, invalid Host header: "a b")'));
});

Deno.test("stream: a stream that ended meanwhile gives back a connection it gets late", () => {
  const { t, pb, st } = stream();
  pb.in(new RequestHeaders(1, GET(), true)).in(new RequestEndOfMessage(1))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(getConn());
  // the client goes away while the connection is being made
  pb.in(new RequestProtocolError(1, new ProtocolError("client-closed", "gone", null)));
  assert.ok(!st.done, "paused on GetHttpConnection: the error waits");
  const s = server();
  pb.reply(s) // the reply to GetHttpConnection
    .out(sendHttp(s, /^RequestHeaders/))
    .out(sendHttp(s, "RequestProtocolError(1, client-closed, null, gone)"))
    .out(release(s, false))
    .out(hook("error")).reply()
    .out(sendHttp(t.client, "ResponseProtocolError(1, client-closed, null, gone)"))
    .done();
  assert.ok(st.done);
  assert.equal(st.server, null);
});
