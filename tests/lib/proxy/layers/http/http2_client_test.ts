import assert from "node:assert/strict";
import { Start } from "../../../../../lib/proxy/events.ts";
import { Http2Client } from "../../../../../lib/proxy/layers/http/http2_client.ts";
import {
  HttpSend,
  RequestData,
  RequestEndOfMessage,
  RequestHeaders,
  RequestProtocolError,
  RequestTrailers,
  ResponseData,
  ResponseEndOfMessage,
  type ResponseHeaders,
  ResponseProtocolError,
  type ResponseTrailers,
} from "../../../../../lib/proxy/layers/http/events.ts";
import { Request } from "../../../../../lib/http/message.ts";
import { Headers } from "../../../../../lib/http/headers.ts";
import { Server } from "../../../../../lib/flow/connection.ts";
import { ProtocolError } from "../../../../../lib/proxy/errors.ts";
import { ErrorCode, Setting, settingsFrame } from "../../../../../lib/http2/frames.ts";
import { DataReceived } from "../../../../../lib/proxy/events.ts";
import { cmd, Playbook, tctx, wakeup } from "../../tutils.ts";
import { SendData } from "../../../../../lib/proxy/commands.ts";
import { H2Peer, httpEvents } from "./h2_tutils.ts";

function setup() {
  const t = tctx();
  const server = new Server(["example.com", 443]);
  server.tls = true;
  server.alpn = "h2";
  const pb = new Playbook(new Http2Client(t.ctx, server));
  const peer = new H2Peer("server");
  pb.in(new Start());
  peer.readFrom(pb, server); // preface + SETTINGS
  pb.out(wakeup(58_000)); // http2_ping_keepalive
  peer.flushTo(pb, server);
  peer.readFrom(pb, server);
  pb.done();
  return { t, pb, peer, server };
}

const h1Get = () =>
  Request.make("GET", "https://example.com/x", "", { "User-Agent": "t", "Connection": "keep-alive" });

Deno.test("http2 client: an HTTP/1 request becomes h2 frames (Host -> :authority), the response events carry the outer id", () => {
  const { pb, peer, server } = setup();
  const req = h1Get();
  pb.in(new HttpSend(new RequestHeaders(7, req, true, 0)));
  peer.readFrom(pb, server);
  const [h] = peer.take("headers");
  assert.equal(h.id, 1); // our own id, whatever the outer one
  assert.deepEqual(h.fields, [[":method", "GET"], [":scheme", "https"], [":authority", "example.com"], [
    ":path",
    "/x",
  ], ["user-agent", "t"]]);
  assert.ok(h.end);
  peer.h2.sendHeaders(1, [[":status", "103"], ["link", "</a>"]], false); // informational: swallowed
  peer.h2.sendHeaders(1, [[":status", "200"], ["content-type", "text/plain"]], false);
  peer.h2.sendData(1, new TextEncoder().encode("hi"));
  peer.h2.sendTrailers(1, [["grpc-status", "0"]]);
  peer.flushTo(pb, server);
  const evs = httpEvents(pb);
  assert.deepEqual(evs.map((e) => `${e.constructor.name}(${e.streamId})`), [
    "ResponseHeaders(7)",
    "ResponseData(7)",
    "ResponseTrailers(7)",
    "ResponseEndOfMessage(7)",
  ]);
  const resp = (evs[0] as ResponseHeaders).response;
  assert.equal(resp.httpVersion, "HTTP/2.0");
  assert.equal(resp.statusCode, 200);
  assert.equal(resp.reason, "");
  assert.deepEqual((evs[2] as ResponseTrailers).trailers.fields, [["grpc-status", "0"]]);
  assert.ok((pb.layer as Http2Client).idle);
});

Deno.test("http2 client: requests over the server's MAX_CONCURRENT_STREAMS wait for a free stream", () => {
  const { pb, peer, server } = setup();
  // the server allows one stream at a time
  pb.in(new DataReceived(server, settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 1]])));
  peer.readFrom(pb, server);
  const body = new TextEncoder().encode("body");
  pb.in(new HttpSend(new RequestHeaders(1, h1Get(), true, 0)));
  const post = Request.make("POST", "https://example.com/up", "");
  pb.in(new HttpSend(new RequestHeaders(3, post, false, null)))
    .in(new HttpSend(new RequestData(3, body)))
    .in(new HttpSend(new RequestTrailers(3, new Headers([["x-sum", "1"]]))))
    .in(new HttpSend(new RequestEndOfMessage(3)));
  peer.readFrom(pb, server);
  assert.deepEqual(peer.take("headers").map((h) => h.id), [1]);
  assert.ok(!(pb.layer as Http2Client).hasCapacity);
  peer.h2.sendHeaders(1, [[":status", "204"]], true);
  peer.flushTo(pb, server);
  assert.deepEqual(httpEvents(pb).map((e) => `${e.constructor.name}(${e.streamId})`), [
    "ResponseHeaders(1)",
    "ResponseEndOfMessage(1)",
  ]);
  // the waiting request went out on stream 3, with its body and trailers
  peer.readFrom(pb, server);
  const hs = peer.take("headers");
  assert.deepEqual(hs.map((h) => [h.id, h.end]), [[3, false], [3, true]]);
  assert.deepEqual(hs[1].fields, [["x-sum", "1"]]);
  assert.equal(peer.take("data").map((d) => d.data).join(""), "body");
});

Deno.test("http2 client: GOAWAY fails the unprocessed streams (retryable), the others finish", () => {
  const { pb, peer, server } = setup();
  pb.in(new HttpSend(new RequestHeaders(1, h1Get(), true, 0)));
  pb.in(new HttpSend(new RequestHeaders(3, h1Get(), true, 0)));
  peer.readFrom(pb, server);
  peer.take("headers");
  peer.h2.goaway(ErrorCode.NO_ERROR, "maintenance"); // the last stream it saw: 3 -> processes both
  // pretend it processed only stream 1: a GOAWAY naming 1
  const out = peer.h2.takeOutput()!;
  out[9 + 3] = 1; // last-stream-id 3 -> 1
  pb.in(new DataReceived(server, out));
  const evs = httpEvents(pb);
  assert.equal(evs.length, 1);
  assert.ok(evs[0] instanceof ResponseProtocolError && evs[0].streamId === 3);
  assert.equal((evs[0] as ResponseProtocolError).error.kind, "server-closed-idle");
  assert.ok(!(pb.layer as Http2Client).reusable);
  // stream 1 still completes, then the connection closes
  peer.h2.sendHeaders(1, [[":status", "200"]], true);
  peer.flushTo(pb, server);
  assert.deepEqual(httpEvents(pb).map((e) => e.constructor.name), [
    "ResponseHeaders",
    "ResponseEndOfMessage",
  ]);
  assert.ok((pb.layer as Http2Client).closed);
});

Deno.test("http2 client: a reset from the server fails the stream; a stream that gives up resets ours", () => {
  const { pb, peer, server } = setup();
  pb.in(new HttpSend(new RequestHeaders(1, h1Get(), true, 0)));
  pb.in(new HttpSend(new RequestHeaders(3, h1Get(), true, 0)));
  peer.readFrom(pb, server);
  peer.take("headers");
  peer.h2.reset(1, ErrorCode.INTERNAL_ERROR);
  peer.flushTo(pb, server);
  const [e] = httpEvents(pb);
  assert.ok(e instanceof ResponseProtocolError);
  assert.equal(e.error.message, "stream reset by server (INTERNAL_ERROR)");
  pb.in(new HttpSend(new RequestProtocolError(3, new ProtocolError("client-closed", "gone", null))));
  peer.readFrom(pb, server);
  assert.deepEqual(peer.take("reset").map((r) => [r.id, r.code]), [[3, ErrorCode.CANCEL]]);
  assert.ok((pb.layer as Http2Client).idle);
  void ResponseData;
  void ResponseEndOfMessage;
});

Deno.test("http2 client: http2_ping_keepalive sends a PING on an idle connection", () => {
  const t = tctx({ http2_ping_keepalive: 1 });
  const server = new Server(["example.com", 443]);
  server.alpn = "h2";
  const pb = new Playbook(new Http2Client(t.ctx, server));
  pb.in(new Start()).out(cmd(SendData)).out(wakeup(1000)).fire();
  // a PING frame (type 6) with our 8 bytes, then the next wakeup
  pb.out(cmd(SendData, (s) => s.data[3] === 6 && new TextDecoder().decode(s.data.subarray(9)) === "mitmdeno"))
    .out(wakeup())
    .done();
});
