/** The mode layers (the first layer of a client connection) and the mode registry they are in. */
import assert from "node:assert/strict";
import { RegularMode, ReverseMode } from "../../../../lib/proxy/layers/modes.ts";
import { HttpLayer } from "../../../../lib/proxy/layers/http/layer.ts";
import { Layer } from "../../../../lib/proxy/layer.ts";
import { DataReceived, type Event, Start } from "../../../../lib/proxy/events.ts";
import type { Context } from "../../../../lib/proxy/context.ts";
import type { TlsLayerOptions } from "../../../../lib/proxy/core.ts";
import { parseMode } from "../../../../lib/proxy/mode.ts";
import type { HTTPFlow } from "../../../../lib/flow/flow.ts";
import { clientHello, close, closed, data, hook, open, Playbook, send, tctx, wakeup } from "../tutils.ts";

Deno.test("modes: the master registers its modes; each makes its layer", () => {
  const t = tctx();
  const modes = t.master.proxy.modes;
  assert.deepEqual([...modes.keys()], ["regular", "upstream", "socks5", "transparent", "reverse"]);
  assert.ok(modes.get("regular")!.layer(t.ctx, parseMode("regular")) instanceof RegularMode);
  assert.ok(modes.get("reverse")!.layer(t.ctx, parseMode("reverse:http://b:81")) instanceof ReverseMode);
  assert.equal(modes.get("reverse")!.syntax, "reverse:URL");
});

Deno.test("regular mode: an explicit proxy, absolute-form requests to their own servers", () => {
  const t = tctx({ http_header_timeout: 0 });
  const pb = new Playbook(new RegularMode(t.ctx));
  pb.in(new Start())
    .in(data(t.client, "GET http://a.example:8000/x HTTP/1.1\r\nHost: a.example:8000\r\n\r\n"))
    .out(hook("requestheaders", (f) => (f as HTTPFlow).request.url === "http://a.example:8000/x")).reply()
    .out(hook("request")).reply()
    .out(open("a.example:8000"))
    .done();
});

Deno.test("regular mode: an origin-form request is refused with a 400 naming what a proxy expects", () => {
  const t = tctx({ http_header_timeout: 0 });
  const pb = new Playbook(new RegularMode(t.ctx));
  pb.in(new Start()).in(data(t.client, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"))
    .out(hook("error")).reply()
    .out(send(t.client, /^HTTP\/1.1 400 Bad Request\r\n(.|\r\n)*expected an absolute URL/))
    .out(close(t.client))
    .done();
});

/** Stands in for the TLS layer: records what it is given. */
class Recorder extends Layer {
  events: Event[] = [];
  protected onEvent(e: Event): void {
    this.events.push(e);
  }
}

function reverse(target: string, sets: Record<string, unknown> = {}) {
  const t = tctx({ http_header_timeout: 0, ...sets });
  t.client.proxyMode = `reverse:${target}`;
  const pb = new Playbook(new ReverseMode(t.ctx, parseMode(`reverse:${target}`)));
  return { t, pb };
}

Deno.test("reverse mode: plain HTTP to the target, Host rewritten, bytes read in pieces before deciding", () => {
  const { t, pb } = reverse("http://backend:8000");
  pb.in(new Start()).in(data(t.client, "GE")).done()
    .in(data(t.client, "T /p HTTP/1.1\r\nHost: front.example\r\n\r\n"));
  assert.deepEqual(t.ctx.server.address, ["backend", 8000]);
  assert.equal(t.ctx.server.tls, false);
  pb.out(hook("requestheaders", (f) => {
    const r = (f as HTTPFlow).request;
    return r.url === "http://backend:8000/p" && r.headers.get("host") === "backend:8000";
  })).reply()
    .out(hook("request")).reply()
    .out(open("backend:8000")).reply(null)
    .out(send(() => t.ctx.server, "GET /p HTTP/1.1\r\nHost: backend:8000\r\n\r\n"));
});

Deno.test("reverse mode: keep_host_header keeps the client's Host", () => {
  const { t, pb } = reverse("http://backend:8000", { keep_host_header: true });
  pb.in(new Start()).in(data(t.client, "GET /p HTTP/1.1\r\nHost: front.example\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("backend:8000")).reply(null)
    .out(send(() => t.ctx.server, "GET /p HTTP/1.1\r\nHost: front.example\r\n\r\n"));
});

Deno.test("reverse mode: a TLS client goes to the core's TLS layer (server TLS for https://), HTTP under it", () => {
  const { t, pb } = reverse("https://backend");
  const made: [TlsLayerOptions, Recorder][] = [];
  t.master.proxy.layers.tls = (_ctx: Context, opts: TlsLayerOptions) => {
    const r = new Recorder(t.ctx);
    made.push([opts, r]);
    return r;
  };
  const hello = clientHello({ sni: "front.example" });
  pb.in(new Start()).in(new DataReceived(t.client, hello.subarray(0, 2))).done()
    .in(new DataReceived(t.client, hello.subarray(2)))
    .done();
  assert.equal(made.length, 1);
  const [opts, layer] = made[0];
  assert.equal(opts.serverTls, true);
  assert.deepEqual(layer.events.map(String), ["Start", `DataReceived(client, ${hello.length}b)`]);
  assert.deepEqual((layer.events[1] as DataReceived).data, hello, "the layer chosen got every byte");
  assert.ok(opts.child!(t.ctx.fork()) instanceof HttpLayer);
  assert.equal(t.ctx.server.tls, true);
});

Deno.test("reverse mode: an http:// target behind TLS: the TLS layer has no server side", () => {
  const { t, pb } = reverse("http://backend:80");
  const made: TlsLayerOptions[] = [];
  t.master.proxy.layers.tls = (
    _ctx: Context,
    opts: TlsLayerOptions,
  ) => (made.push(opts), new Recorder(t.ctx));
  pb.in(new Start()).in(new DataReceived(t.client, clientHello({})));
  assert.equal(made[0].serverTls, false);
});

Deno.test("reverse mode: TLS bytes and no TLS layer: HTTP reads them as an unfinished head (408 at the head timeout)", () => {
  const t = tctx({ http_header_timeout: 1 });
  const pb = new Playbook(new ReverseMode(t.ctx, parseMode("reverse:http://backend:80")));
  pb.in(new Start()).in(new DataReceived(t.client, clientHello({ sni: "x" }))).out(wakeup(1000)).done();
  const realNow = Date.now;
  try {
    Date.now = () => realNow() + 1500;
    pb.fire();
  } finally {
    Date.now = realNow;
  }
  pb.out(send(t.client, /^HTTP\/1.1 408 Request Timeout\r\n/)).out(close(t.client)).done();
});

Deno.test("reverse mode: a client that closes after 1 byte: decided with it (an unfinished head), closed", () => {
  const { t, pb } = reverse("http://backend:80");
  pb.in(new Start()).in(data(t.client, "G")).done().in(closed(t.client)).out(close(t.client)).done();
});

Deno.test("reverse mode: once decided, every event goes to the child", () => {
  const { t, pb } = reverse("http://backend:80");
  pb.in(new Start()).in(data(t.client, "GET / HTTP/1.1\r\nHost: x\r\n"))
    .done()
    .in(data(t.client, "\r\n"))
    .out(hook("requestheaders", (f) => (f as HTTPFlow).request.path === "/"));
});
