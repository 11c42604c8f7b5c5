import assert from "node:assert/strict";
import { Start } from "../../../../lib/proxy/events.ts";
import { TransparentMode } from "../../../../lib/proxy/layers/transparent.ts";
import { ProtocolError } from "../../../../lib/proxy/errors.ts";
import { DataReceived } from "../../../../lib/proxy/events.ts";
import { captureClientHello } from "../../../e2e/tls_helpers.ts";
import { close, data, hook, log, open, Playbook, tctx, wakeup } from "../tutils.ts";

const NOT_REDIRECTED = { address: null, reason: "getsockopt(SO_ORIGINAL_DST): ENOENT" } as const;

Deno.test("transparent: the original destination: eager connect, then a NextLayer to it", () => {
  const t = tctx();
  const pb = new Playbook(new TransparentMode(t.ctx, { address: ["10.0.0.5", 80] }));
  pb.in(new Start()).out(open("10.0.0.5:80")).reply(null)
    .out(wakeup(3000))
    .out(wakeup(600_000))
    .in(data(t.client, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("next_layer", (d) => (d as { destination: { host: string } }).destination.host === "10.0.0.5"));
});

Deno.test("transparent: the original destination refuses: the client is closed", () => {
  const t = tctx();
  const pb = new Playbook(new TransparentMode(t.ctx, { address: ["10.0.0.5", 80] }));
  pb.in(new Start()).out(open("10.0.0.5:80"))
    .reply(new ProtocolError("connect", "Cannot connect to 10.0.0.5:80: connection refused", 502))
    .out(close(t.client))
    .done();
});

Deno.test("transparent: without the original destination, HTTP goes by the Host header, said once at warn", () => {
  const t = tctx();
  const notice = { warned: false };
  const pb = new Playbook(new TransparentMode(t.ctx, NOT_REDIRECTED, notice), { logs: true });
  pb.in(new Start()).done()
    .in(data(t.client, "GET /a HTTP/1.1\r\nHost: example.com:8000\r\n\r\n"))
    .out(
      log(
        /transparent mode without the original destination \(getsockopt\(SO_ORIGINAL_DST\): ENOENT\): using the Host header/,
        "warn",
      ),
    )
    .out(wakeup(60_000))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:8000"));
  assert.equal(notice.warned, true);
  const t2 = tctx();
  new Playbook(new TransparentMode(t2.ctx, NOT_REDIRECTED, notice), { logs: true })
    .in(new Start())
    .in(data(t2.client, "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(log(/using the Host header/, "debug"));
});

Deno.test("transparent: without the original destination, TLS goes to the SNI on 443 (ClientHello in pieces)", async () => {
  const hello = await captureClientHello("sni.example");
  const t = tctx();
  const pb = new Playbook(new TransparentMode(t.ctx, NOT_REDIRECTED), { logs: true });
  pb.in(new Start())
    .in(new DataReceived(t.client, hello.subarray(0, 20)))
    .done()
    .in(new DataReceived(t.client, hello.subarray(20)))
    .out(log(/using the TLS SNI \(sni.example:443\)/, "warn"));
  assert.deepEqual(t.ctx.server.address, ["sni.example", 443]);
  // a ClientHello without SNI: nowhere to go
  const bare = await captureClientHello("");
  const t2 = tctx();
  new Playbook(new TransparentMode(t2.ctx, NOT_REDIRECTED), { logs: true })
    .in(new Start())
    .in(new DataReceived(t2.client, bare))
    .out(log(/and a TLS ClientHello without SNI: closing/, "warn"))
    .out(close(t2.client))
    .done();
});
