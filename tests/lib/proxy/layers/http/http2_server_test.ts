import assert from "node:assert/strict";
import { Start } from "../../../../../lib/proxy/events.ts";
import { Http2Server } from "../../../../../lib/proxy/layers/http/http2_server.ts";
import {
  HttpSend,
  RequestData,
  RequestEndOfMessage,
  RequestHeaders,
  RequestProtocolError,
  type RequestTrailers,
  ResponseData,
  ResponseEndOfMessage,
  ResponseHeaders,
  ResponseProtocolError,
  ResponseTrailers,
} from "../../../../../lib/proxy/layers/http/events.ts";
import { Response } from "../../../../../lib/http/message.ts";
import { Headers } from "../../../../../lib/http/headers.ts";
import { ProtocolError } from "../../../../../lib/proxy/errors.ts";
import { ErrorCode } from "../../../../../lib/http2/frames.ts";
import { close, cmd, data, Playbook, tctx } from "../../tutils.ts";
import { SendData } from "../../../../../lib/proxy/commands.ts";
import { H2Peer, httpEvents } from "./h2_tutils.ts";

const GET: [string, string][] = [[":method", "GET"], [":scheme", "https"], [":authority", "example.com"], [
  ":path",
  "/a?b=1",
]];

function setup(sets: Record<string, unknown> = {}) {
  const t = tctx(sets);
  t.client.tls = true;
  t.client.alpn = "h2";
  const pb = new Playbook(new Http2Server(t.ctx));
  const peer = new H2Peer("client");
  pb.in(new Start());
  peer.readFrom(pb, t.client); // our SETTINGS
  peer.flushTo(pb, t.client); // preface, SETTINGS, WINDOW_UPDATE; our ACK goes back
  peer.readFrom(pb, t.client);
  pb.done();
  return { t, pb, peer };
}

Deno.test("http2 server: a GET becomes request events with the stream id, the response becomes frames", () => {
  const { t, pb, peer } = setup();
  peer.h2.sendHeaders(1, [...GET, ["accept", "*/*"], ["cookie", "a=1"], ["cookie", "b=2"]], true);
  peer.flushTo(pb, t.client);
  const [h, end] = httpEvents(pb);
  assert.ok(h instanceof RequestHeaders && end instanceof RequestEndOfMessage);
  assert.equal(h.streamId, 1);
  assert.ok(h.endStream);
  const req = h.request;
  assert.equal(req.httpVersion, "HTTP/2.0");
  assert.equal(req.method, "GET");
  assert.equal(req.scheme, "https");
  assert.equal(req.host, "example.com");
  assert.equal(req.port, 443);
  assert.equal(req.authority, "example.com");
  assert.equal(req.path, "/a?b=1");
  // cookie crumbs joined (RFC 9113 §8.2.3), no Host field made up
  assert.deepEqual(req.headers.fields, [["accept", "*/*"], ["cookie", "a=1; b=2"]]);
  pb.done();
  const resp = Response.make(200, "hello", { "Content-Type": "text/plain", "Connection": "keep-alive" });
  pb.in(new HttpSend(new ResponseHeaders(1, resp, false, 5)))
    .in(new HttpSend(new ResponseData(1, new TextEncoder().encode("hello"))))
    .in(new HttpSend(new ResponseEndOfMessage(1)));
  peer.readFrom(pb, t.client);
  pb.done();
  const [rh] = peer.take("headers");
  // names lower-cased, connection-specific fields dropped, content-length as sent
  assert.deepEqual(rh.fields, [[":status", "200"], ["content-type", "text/plain"], ["content-length", "5"]]);
  assert.deepEqual(peer.take("data").map((d) => [d.data, d.end]), [["hello", false], ["", true]]);
});

Deno.test("http2 server: concurrent streams, a request body and trailers both ways", () => {
  const { t, pb, peer } = setup();
  const POST: [string, string][] = [[":method", "POST"], [":scheme", "https"], [":authority", "x:8443"], [
    ":path",
    "/up",
  ]];
  peer.h2.sendHeaders(1, POST, false);
  peer.h2.sendHeaders(3, GET, true);
  peer.h2.sendData(1, new TextEncoder().encode("part1"));
  peer.h2.sendTrailers(1, [["grpc-timeout", "1S"]]);
  peer.flushTo(pb, t.client);
  const evs = httpEvents(pb);
  assert.deepEqual(evs.map((e) => `${e.constructor.name}(${e.streamId})`), [
    "RequestHeaders(1)",
    "RequestHeaders(3)",
    "RequestEndOfMessage(3)",
    "RequestData(1)",
    "RequestTrailers(1)",
    "RequestEndOfMessage(1)",
  ]);
  assert.equal((evs[0] as RequestHeaders).request.port, 8443);
  assert.deepEqual((evs[4] as RequestTrailers).trailers.fields, [["grpc-timeout", "1S"]]);
  peer.readFrom(pb, t.client);
  pb.done();
  // stream 3 answered first, then 1 with trailers
  pb.in(new HttpSend(new ResponseHeaders(3, Response.make(204, ""), true, 0)));
  pb.in(
    new HttpSend(
      new ResponseHeaders(1, Response.make(200, "", { "content-type": "application/grpc" }), false, null),
    ),
  )
    .in(new HttpSend(new ResponseData(1, new TextEncoder().encode("ok"))))
    .in(new HttpSend(new ResponseTrailers(1, new Headers([["Grpc-Status", "0"]]))))
    .in(new HttpSend(new ResponseEndOfMessage(1)));
  peer.readFrom(pb, t.client);
  pb.done();
  const hs = peer.take("headers");
  assert.deepEqual(hs.map((h) => [h.id, h.fields, h.end]), [
    [3, [[":status", "204"]], true],
    [1, [[":status", "200"], ["content-type", "application/grpc"]], false],
    [1, [["grpc-status", "0"]], true],
  ]);
});

Deno.test("http2 server: a client reset becomes RequestProtocolError; flow.kill resets the stream", () => {
  const { t, pb, peer } = setup();
  peer.h2.sendHeaders(1, [...GET.slice(0, 3), [":path", "/slow"]], false);
  peer.flushTo(pb, t.client);
  httpEvents(pb);
  peer.h2.reset(1, ErrorCode.CANCEL);
  peer.flushTo(pb, t.client);
  const [e] = httpEvents(pb);
  assert.ok(e instanceof RequestProtocolError);
  assert.equal(e.error.message, "stream reset by client (CANCEL)");
  assert.equal(e.error.kind, "client-closed");
  pb.done();
  // a killed stream (no status): RST_STREAM, the connection goes on
  peer.h2.sendHeaders(3, GET, true);
  peer.flushTo(pb, t.client);
  httpEvents(pb);
  pb.in(new HttpSend(new ResponseProtocolError(3, new ProtocolError("refused", "killed", null))));
  peer.readFrom(pb, t.client);
  pb.done();
  assert.deepEqual(peer.take("reset"), [{ kind: "reset", id: 3, code: ErrorCode.INTERNAL_ERROR }]);
  // an error with a status before the response head: an error page
  peer.h2.sendHeaders(5, GET, true);
  peer.flushTo(pb, t.client);
  httpEvents(pb);
  pb.in(
    new HttpSend(new ResponseProtocolError(5, new ProtocolError("connect", "Cannot connect to x:1", 502))),
  );
  peer.readFrom(pb, t.client);
  const [page] = peer.take("headers");
  assert.equal(page.fields[0][1], "502");
  assert.match(peer.take("data").map((d) => d.data).join(""), /Cannot connect to x:1/);
});

Deno.test("http2 server: a malformed request resets only its stream", () => {
  const { t, pb, peer } = setup();
  peer.h2.sendHeaders(1, [...GET, ["X-Upper", "1"]], true);
  peer.h2.sendHeaders(3, [...GET, ["connection", "close"]], true);
  peer.h2.sendHeaders(5, GET.slice(1), true); // no :method
  peer.h2.sendHeaders(7, GET, true);
  peer.flushTo(pb, t.client);
  const evs = httpEvents(pb);
  assert.deepEqual(evs.map((e) => `${e.constructor.name}(${e.streamId})`), [
    "RequestHeaders(7)",
    "RequestEndOfMessage(7)",
  ]);
  peer.readFrom(pb, t.client);
  assert.deepEqual(peer.take("reset").map((r) => [r.id, r.code]), [[1, 1], [3, 1], [5, 1]]);
  assert.ok(peer.h2.alive);
});

Deno.test("http2 server: a bad preface is answered with GOAWAY(PROTOCOL_ERROR) and the connection closed", () => {
  const t = tctx();
  t.client.alpn = "h2";
  const pb = new Playbook(new Http2Server(t.ctx), { logs: true });
  pb.in(new Start()).out(cmd(SendData));
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const c = pb.take();
  assert.match(String(c), /Log/);
  const peer = new H2Peer("client");
  pb.out(cmd(SendData, (s) => {
    // a GOAWAY frame (type 7) with PROTOCOL_ERROR
    return s.data[3] === 7 && s.data[16] === ErrorCode.PROTOCOL_ERROR;
  }))
    .out(close(t.client))
    .done();
  void peer;
});

Deno.test("http2 server: a request body is credited as it arrives, unless the stream is paused", () => {
  const { t, pb, peer } = setup();
  const server = pb.layer as Http2Server;
  peer.h2.sendHeaders(1, [[":method", "POST"], ...GET.slice(1)], false);
  peer.flushTo(pb, t.client);
  httpEvents(pb);
  server.pauseStream(1, true);
  // the client's window for the stream is our initial window (1 MiB): it can send that much, no more
  peer.h2.sendData(1, new Uint8Array(1 << 20 | 1000));
  peer.flushTo(pb, t.client);
  const got = httpEvents(pb).reduce((n, e) => n + (e instanceof RequestData ? e.data.length : 0), 0);
  assert.equal(got, 1 << 20);
  peer.readFrom(pb, t.client);
  peer.flushTo(pb, t.client);
  assert.equal(httpEvents(pb).length, 0);
  assert.equal(peer.h2.queuedOn(1), 1000);
  server.pauseStream(1, false);
  peer.readFrom(pb, t.client);
  peer.flushTo(pb, t.client);
  const rest = httpEvents(pb).reduce((n, e) => n + (e instanceof RequestData ? e.data.length : 0), 0);
  assert.equal(rest, 1000);
});

Deno.test("http2 server: with validate_inbound_headers off, fields pass as received", () => {
  const { t, pb, peer } = setup({ validate_inbound_headers: false });
  peer.h2.sendHeaders(1, [...GET, ["X-Upper", "1"]], true);
  peer.flushTo(pb, t.client);
  const [h] = httpEvents(pb);
  assert.ok(h instanceof RequestHeaders);
  assert.deepEqual(h.request.headers.fields, [["X-Upper", "1"]]);
});
