import assert from "node:assert/strict";
import { Start } from "../../../../../lib/proxy/events.ts";
import { HttpLayer } from "../../../../../lib/proxy/layers/http/layer.ts";
import { ProtocolError } from "../../../../../lib/proxy/errors.ts";
import type { HTTPFlow } from "../../../../../lib/flow/flow.ts";
import type { Server } from "../../../../../lib/flow/connection.ts";
import { OpenConnection, type StartHook } from "../../../../../lib/proxy/commands.ts";
import { Response } from "../../../../../lib/http/message.ts";
import { close, closed, data, hook, open, Playbook, send, tctx, wakeup } from "../../tutils.ts";

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
