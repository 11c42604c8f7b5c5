import assert from "node:assert/strict";
import { Start } from "../../../../lib/proxy/events.ts";
import { ReverseMode } from "../../../../lib/proxy/layers/reverse.ts";
import { parseMode } from "../../../../lib/proxy/mode.ts";
import type { OpenConnection } from "../../../../lib/proxy/commands.ts";
import { ProtocolError } from "../../../../lib/proxy/errors.ts";
import { close, closed, data, hook, open, Playbook, relay, send, startTls, tctx, wakeup } from "../tutils.ts";

function reverse(spec: string, sets: Record<string, unknown> = {}) {
  const t = tctx(sets);
  const mode = parseMode(spec);
  t.client.proxyMode = mode.full;
  return { t, pb: new Playbook(new ReverseMode(t.ctx, mode)) };
}

Deno.test("reverse http: requests go to the target with Host rewritten", () => {
  const { t, pb } = reverse("reverse:http://origin.local:3000");
  pb.in(new Start())
    .in(data(t.client, "GET /a HTTP/1.1\r\nHost: proxy:8080\r\n\r\n"))
    .out(wakeup(60_000))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply();
  const o = pb.take() as OpenConnection;
  assert.deepEqual(o.conn.address, ["origin.local", 3000]);
  pb.reply(null).out(send(() => o.conn, "GET /a HTTP/1.1\r\nHost: origin.local:3000\r\n\r\n"));
});

Deno.test("reverse tcp: connects at once; a server that speaks first makes it a plain relay", () => {
  const { t, pb } = reverse("reverse:tcp://db.local:5432");
  pb.in(new Start()).out(wakeup(3000)).out(open("db.local:5432")).reply(null)
    .in(data(t.server(), "220 hello\r\n"))
    .out(relay())
    .done();
  assert.equal(t.server().tls, false);
});

Deno.test("reverse tcp: a plain client's bytes are relayed; one that never speaks is relayed after the wait", () => {
  {
    const { t, pb } = reverse("reverse:tcp://db.local:5432");
    pb.in(new Start()).out(wakeup(3000)).out(open("db.local:5432")).reply(null)
      .in(data(t.client, "PING\r\n"))
      .out(relay())
      .done();
  }
  {
    const { pb } = reverse("reverse:tcp://db.local:5432", { connection_strategy: "lazy" });
    pb.in(new Start()).out(wakeup(3000)).done().fire().out(open("db.local:5432")).reply(null).out(relay())
      .done();
  }
});

Deno.test("reverse tcp: the target refuses: the client is closed", () => {
  const { t, pb } = reverse("reverse:tcp://db.local:5432");
  pb.in(new Start()).out(wakeup(3000)).out(open("db.local:5432"))
    .reply(new ProtocolError("connect", "Cannot connect to db.local:5432: connection refused", 502))
    .out(close(t.client))
    .done();
});

Deno.test("reverse tls: a plain client: TLS to the target first, then the relay", () => {
  const { t, pb } = reverse("reverse:tls://secure.local:8443");
  pb.in(new Start()).out(wakeup(3000))
    .in(data(t.client, "PING\r\n"))
    .out(open("secure.local:8443")).reply(null)
    .out(hook("tls_start_server")).reply()
    .out(startTls(() => t.server()));
  assert.equal(t.server().sni, "secure.local");
  pb.reply({ alpn: null, tlsVersion: "TLSv1.3", cipher: "x", certificateList: [] })
    .out(hook("tls_established_server")).reply()
    .out(relay())
    .done();
});

Deno.test("reverse tls: a client that closes before sending anything: both closed", () => {
  const { t, pb } = reverse("reverse:tls://secure.local:8443");
  pb.in(new Start()).out(wakeup(3000)).in(closed(t.client)).out(close(t.client)).done();
});
