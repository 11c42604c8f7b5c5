import assert from "node:assert/strict";
import { Start } from "../../../../lib/proxy/events.ts";
import { replyCodeFor, type Socks5AuthData, Socks5Mode } from "../../../../lib/proxy/layers/socks5.ts";
import { OpenConnection, SendData, type StartHook } from "../../../../lib/proxy/commands.ts";
import { ProtocolError } from "../../../../lib/proxy/errors.ts";
import { DataReceived } from "../../../../lib/proxy/events.ts";
import { ProxyAuth } from "../../../../addons/proxyauth.ts";
import { close, closed, cmd, hook, Playbook, tctx, wakeup } from "../tutils.ts";

function socks(sets: Record<string, unknown> = {}) {
  const t = tctx(sets);
  return { t, pb: new Playbook(new Socks5Mode(t.ctx)) };
}

/** With the proxyauth addon and `proxyauth=user:pass`. */
async function socksAuth() {
  const t = tctx();
  await t.master.addAddons(new ProxyAuth());
  await t.master.options.update({ proxyauth: "user:pass" });
  return { t, pb: new Playbook(new Socks5Mode(t.ctx)) };
}

const bytes = (...b: number[]) => new Uint8Array(b);
const sent = (...b: number[]) => cmd(SendData, (c) => c.data.join(",") === b.join(","));
const OK = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0];

Deno.test("socks5: no auth, CONNECT to a domain name (in pieces), eager connect, then a NextLayer", () => {
  const { t, pb } = socks();
  pb.in(new Start())
    .in(new DataReceived(t.client, bytes(5)))
    .done()
    .in(new DataReceived(t.client, bytes(2, 0, 2)))
    .out(sent(5, 0))
    .in(
      new DataReceived(
        t.client,
        bytes(5, 1, 0, 3, 11, ..."example.com".split("").map((c) => c.charCodeAt(0))),
      ),
    )
    .done()
    .in(new DataReceived(t.client, bytes(0x01, 0xbb)));
  const o = pb.take() as OpenConnection;
  assert.ok(o instanceof OpenConnection);
  assert.deepEqual(o.conn.address, ["example.com", 443]);
  pb.reply(null)
    .out(sent(...OK))
    .out(wakeup(3000)) // NextLayer waits for the client's first bytes
    .out(wakeup(600_000))
    .in(new DataReceived(t.client, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")))
    .out(
      hook("next_layer", (d) => (d as { destination: { host: string } }).destination.host === "example.com"),
    );
});

Deno.test("socks5: IPv4 and IPv6 destinations; bytes after the request go to the tunnel", () => {
  {
    const { t, pb } = socks({ connection_strategy: "lazy" });
    pb.in(new Start()).in(new DataReceived(t.client, bytes(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80, 0x47)))
      .out(sent(5, 0))
      .out(sent(...OK));
    assert.deepEqual(t.ctx.server.address, ["127.0.0.1", 80]);
  }
  {
    const { t, pb } = socks({ connection_strategy: "lazy" });
    pb.in(new Start())
      .in(
        new DataReceived(
          t.client,
          bytes(5, 1, 0, 5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90),
        ),
      )
      .out(sent(5, 0))
      .out(sent(...OK));
    assert.deepEqual(t.ctx.server.address, ["2001:db8::1", 8080]);
  }
});

Deno.test("socks5: username/password when proxyauth is set: socks5_auth decides", async () => {
  for (const valid of [true, false]) {
    const { t, pb } = await socksAuth();
    pb.in(new Start())
      .in(new DataReceived(t.client, bytes(5, 2, 0, 2)))
      .out(sent(5, 2))
      .in(
        new DataReceived(
          t.client,
          bytes(
            1,
            4,
            ...[..."user"].map((c) => c.charCodeAt(0)),
            4,
            ...[..."pass"].map((c) => c.charCodeAt(0)),
          ),
        ),
      )
      .out(
        hook(
          "socks5_auth",
          (d) => (d as Socks5AuthData).username === "user" && (d as Socks5AuthData).password === "pass",
        ),
      );
    ((pb.history.at(-1) as StartHook).data as Socks5AuthData).valid = valid;
    pb.reply();
    if (valid) pb.out(sent(1, 0)).done();
    else pb.out(sent(1, 1)).out(close(t.client)).done();
  }
  // a client that offers no username/password method
  const { t, pb } = await socksAuth();
  pb.in(new Start()).in(new DataReceived(t.client, bytes(5, 1, 0))).out(sent(5, 0xff)).out(close(t.client))
    .done();
  // and one that offers only username/password to a proxy without auth
  const b = socks();
  b.pb.in(new Start()).in(new DataReceived(b.t.client, bytes(5, 1, 2))).out(sent(5, 0xff)).out(
    close(b.t.client),
  ).done();
});

Deno.test("socks5: BIND, UDP ASSOCIATE, unknown address types, bad versions: the right replies", () => {
  const cases: [number[], number[] | null][] = [
    [[5, 2, 0, 1, 127, 0, 0, 1, 0, 80], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]], // BIND
    [[5, 3, 0, 1, 127, 0, 0, 1, 0, 80], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]], // UDP ASSOCIATE
    [[5, 1, 0, 9, 127, 0, 0, 1, 0, 80], [5, 8, 0, 1, 0, 0, 0, 0, 0, 0]], // address type 9
    [[4, 1, 0, 1, 127, 0, 0, 1, 0, 80], [5, 1, 0, 1, 0, 0, 0, 0, 0, 0]], // request version 4
  ];
  for (const [req, want] of cases) {
    const { t, pb } = socks();
    pb.in(new Start()).in(new DataReceived(t.client, bytes(5, 1, 0))).out(sent(5, 0))
      .in(new DataReceived(t.client, bytes(...req)))
      .out(sent(...want!))
      .out(close(t.client))
      .done();
  }
  // a SOCKS4 client gets a SOCKS4 rejection, an HTTP client a 400, anything else is closed
  {
    const { t, pb } = socks();
    pb.in(new Start()).in(new DataReceived(t.client, bytes(4, 1, 0, 80, 127, 0, 0, 1, 0))).out(
      sent(0, 91, 0, 0, 0, 0, 0, 0),
    )
      .out(close(t.client)).done();
  }
  {
    const { t, pb } = socks();
    pb.in(new Start()).in(new DataReceived(t.client, new TextEncoder().encode("GET / HTTP/1.1\r\n")))
      .out(
        cmd(
          SendData,
          (c) => /^HTTP\/1.1 400 Bad Request\r\n(.|\r\n)*SOCKS5 proxy/.test(new TextDecoder().decode(c.data)),
        ),
      )
      .out(close(t.client)).done();
  }
  {
    const { t, pb } = socks();
    pb.in(new Start()).in(new DataReceived(t.client, bytes(1, 2, 3))).out(close(t.client)).done();
  }
});

Deno.test("socks5: a failed connection gets the reply code for its reason", () => {
  const { t, pb } = socks();
  pb.in(new Start()).in(new DataReceived(t.client, bytes(5, 1, 0))).out(sent(5, 0))
    .in(new DataReceived(t.client, bytes(5, 1, 0, 1, 127, 0, 0, 1, 0, 80)))
    .take();
  pb.reply(new ProtocolError("connect", "Cannot connect to 127.0.0.1:80: connection refused", 502))
    .out(sent(5, 5, 0, 1, 0, 0, 0, 0, 0, 0))
    .out(close(t.client))
    .done();
  assert.equal(replyCodeFor(new ProtocolError("connect", "Cannot resolve x:1: host not found")), 4);
  assert.equal(replyCodeFor(new ProtocolError("connect", "Timed out connecting to x:1")), 4);
  assert.equal(replyCodeFor(new ProtocolError("connect", "Cannot connect to x:1: no route to host")), 3);
  assert.equal(replyCodeFor(new ProtocolError("refused", "Connection to x:1 refused by an addon: no")), 2);
  assert.equal(replyCodeFor(new ProtocolError("connect", "Connection to x:1 reset")), 1);
});

Deno.test("socks5: a client that leaves mid-handshake is closed", () => {
  const { t, pb } = socks();
  pb.in(new Start()).in(new DataReceived(t.client, bytes(5))).in(closed(t.client)).out(close(t.client))
    .done();
});
