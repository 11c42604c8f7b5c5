/** Client replay without a client socket: the saved request goes through an HTTP layer, every hook fires. */
import assert from "node:assert/strict";
import { ReplayLayer } from "../../../../lib/proxy/layers/replay.ts";
import { Start } from "../../../../lib/proxy/events.ts";
import type { OpenConnection } from "../../../../lib/proxy/commands.ts";
import { HTTPFlow } from "../../../../lib/flow/flow.ts";
import { Server } from "../../../../lib/flow/connection.ts";
import { Request } from "../../../../lib/http/message.ts";
import { Headers } from "../../../../lib/http/headers.ts";
import { ProtocolError } from "../../../../lib/proxy/errors.ts";
import { parseMode } from "../../../../lib/proxy/mode.ts";
import { close, data, hook, open, Playbook, send, tctx, wakeup } from "../tutils.ts";

function replay(req: Request) {
  const t = tctx({ http_header_timeout: 0 });
  const flow = new HTTPFlow(t.client, new Server(null), req);
  flow.isReplay = "request";
  return { t, flow, pb: new Playbook(new ReplayLayer(t.ctx, flow)) };
}

Deno.test("replay: the saved request is sent, the response lands on the flow, then the virtual client closes", () => {
  const { t, flow, pb } = replay(Request.make("POST", "http://example.com/api", "payload"));
  pb.in(new Start())
    .out(hook("requestheaders", (f) => f === flow)).reply()
    .out(hook("request", (f) => (f as HTTPFlow).request.text === "payload")).reply()
    .out(open("example.com:80"));
  const server = (pb.history.at(-1) as OpenConnection).conn;
  pb.reply(null)
    .out(send(() => server, "POST /api HTTP/1.1\r\nHost: example.com\r\ncontent-length: 7\r\n\r\npayload"))
    .out(wakeup(1000))
    .in(data(server, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(close(t.client))
    .done();
  assert.equal(flow.response!.statusCode, 201);
  assert.equal(flow.response!.text, "ok");
  assert.equal(flow.serverConn, server);
});

Deno.test("replay: a GET without body, and one with trailers (sent chunked)", () => {
  const a = replay(Request.make("GET", "http://example.com/"));
  a.pb.in(new Start()).out(hook("requestheaders")).reply().out(hook("request")).reply().out(open()).reply(
    null,
  )
    .out(
      send(() => (a.pb.history.at(-2) as OpenConnection).conn, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    );
  const req = Request.make("PUT", "http://example.com/t", "ab");
  req.headers.delete("content-length");
  req.trailers = new Headers([["X-Sum", "1"]]);
  const b = replay(req);
  b.pb.in(new Start()).out(hook("requestheaders")).reply().out(hook("request")).reply().out(open()).reply(
    null,
  );
  const server = (b.pb.history.at(-2) as OpenConnection).conn;
  b.pb.out(
    send(
      () => server,
      "PUT /t HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
    ),
  )
    .out(send(() => server, "0\r\nX-Sum: 1\r\n\r\n"))
    .out(wakeup(1000))
    .done();
});

Deno.test("replay: a server that cannot be reached: the error lands on the flow, the replay ends", () => {
  const { t, flow, pb } = replay(Request.make("GET", "http://example.com/"));
  pb.in(new Start()).out(hook("requestheaders")).reply().out(hook("request")).reply()
    .out(open()).reply(
      new ProtocolError("connect", "Cannot connect to example.com:80: connection refused", 502),
    )
    .out(hook("error")).reply()
    .out(close(t.client))
    .done();
  assert.equal(flow.error!.msg, "Cannot connect to example.com:80: connection refused");
});

Deno.test("replay: in upstream mode the request goes to the upstream proxy, in absolute form", () => {
  const t = tctx({ http_header_timeout: 0 });
  const flow = new HTTPFlow(t.client, new Server(null), Request.make("GET", "http://example.com/x"));
  flow.isReplay = "request";
  const pb = new Playbook(new ReplayLayer(t.ctx, flow, parseMode("upstream:http://proxy.test:3128")));
  pb.in(new Start()).out(hook("requestheaders")).reply().out(hook("request")).reply();
  const o = pb.take() as OpenConnection;
  assert.deepEqual(o.conn.address, ["example.com", 80]);
  assert.deepEqual(o.conn.via, ["http", ["proxy.test", 3128]]);
  pb.reply(null)
    .out(send(() => o.conn, "GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(wakeup(1000))
    .in(data(o.conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(close(t.client))
    .done();
  assert.equal(flow.response!.text, "ok");
});
