/**
 * The TLS layer: a ClientHello in (in pieces), the tls_* hooks in mitmproxy's order, the server handshake
 * first or not, the forged certificate's names, passthrough, failures. The handshakes themselves are the
 * driver's (StartTls): here they are replied to.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  certRequestFor,
  type ClientHelloData,
  TlsLayer,
  type TlsLayerConfig,
} from "../../../../lib/proxy/layers/tls.ts";
import { DataReceived, Start } from "../../../../lib/proxy/events.ts";
import {
  OpenConnection,
  Relay,
  type RequestWakeup,
  type StartHook,
  StartTls,
  type TlsInfo,
} from "../../../../lib/proxy/commands.ts";
import { ProtocolError } from "../../../../lib/proxy/errors.ts";
import { Server } from "../../../../lib/flow/connection.ts";
import type { HTTPFlow } from "../../../../lib/flow/flow.ts";
import { type CertAuthority, loadOrCreateCA } from "../../../../lib/tls/ca.ts";
import { type CertRequest, CertStore } from "../../../../lib/tls/certs.ts";
import type { TlsLayerOptions } from "../../../../lib/proxy/core.ts";
import {
  clientHello,
  close,
  closed,
  data,
  hook,
  log,
  open,
  Playbook,
  send,
  startTls,
  tctx,
  wakeup,
} from "../tutils.ts";

let caPromise: Promise<CertAuthority> | undefined;
const getCA = () =>
  caPromise ??=
    (async () => loadOrCreateCA(await Deno.makeTempDir({ prefix: "mitmdeno-tls-layer-test-" })))();

/** A TLS layer for a tunnel to host:port, with a real CA; `requests`: what each leaf was asked for. */
async function tls(
  sets: Record<string, unknown> = {},
  opts: TlsLayerOptions = { serverTls: true },
  address: [string, number] = ["example.com", 443],
) {
  const t = tctx({ http_header_timeout: 0, ...sets });
  t.ctx.server = new Server(address);
  const store = new CertStore(await getCA());
  const requests: CertRequest[] = [];
  const cfg: TlsLayerConfig = {
    certs: { getCert: (r: CertRequest) => (requests.push(r), store.getCert(r)) } as unknown as CertStore,
    untrustedWarned: new Set(),
    onboardingUrl: "http://mitm.it",
  };
  const layer = new TlsLayer(t.ctx, cfg, opts);
  return { t, cfg, layer, requests, pb: new Playbook(layer) };
}

const info = (names?: TlsInfo["peerNames"]): TlsInfo => ({
  alpn: "http/1.1",
  tlsVersion: "TLSv1.3",
  cipher: "TLS_AES_256_GCM_SHA384",
  certificateList: [],
  peerNames: names,
});

const HELLO = clientHello({ sni: "example.com", alpn: ["h2", "http/1.1"] });

Deno.test("tls: ClientHello in two pieces; server handshake first; the leaf copies the upstream names", async () => {
  const { t, pb, requests } = await tls();
  pb.in(new Start()).out(wakeup(600_000))
    .in(new DataReceived(t.client, HELLO.subarray(0, 20)))
    .done()
    .in(new DataReceived(t.client, HELLO.subarray(20)));
  const h = pb.take() as StartHook;
  assert.equal(h.name, "tls_clienthello");
  const d = h.data as ClientHelloData;
  assert.equal(d.clientHello.sni, "example.com");
  assert.deepEqual(d.clientHello.alpnProtocols, ["h2", "http/1.1"]);
  assert.equal(d.establishServerTlsFirst, true, "upstream_cert is on");
  assert.equal(d.ignoreConnection, false);
  assert.deepEqual([t.client.sni, t.client.alpnOffers], ["example.com", ["h2", "http/1.1"]]);
  const server = t.ctx.server;
  assert.equal(server.sni, "example.com");
  pb.reply()
    .out(open("example.com:443")).reply(null)
    .out(hook("tls_start_server")).reply();
  const st = pb.take() as StartTls;
  assert.equal(st.conn, server);
  assert.deepEqual([st.settings.sni, st.settings.alpn], ["example.com", ["http/1.1"]]);
  pb.reply(info({ cn: "upstream.example", sans: ["upstream.example", "alt.example"], o: "Upstream Inc" }))
    .out(hook("tls_established_server")).reply()
    .out(hook("tls_start_client", (x) => (x as { conn: unknown }).conn === t.client)).reply();
  const ct = pb.take() as StartTls;
  assert.equal(ct.conn, t.client);
  assert.deepEqual(ct.settings.initialData, HELLO, "the ClientHello goes back to the handshake");
  assert.deepEqual(ct.settings.alpn, ["http/1.1"]);
  assert.ok(ct.settings.secureContext);
  assert.deepEqual(requests, [{
    commonName: "upstream.example",
    sans: ["upstream.example", "alt.example", "example.com"],
    organization: "Upstream Inc",
  }]);
  pb.reply(info())
    .out(hook("tls_established_client")).reply()
    .done();
  assert.equal(t.client.tls, true);
  const leaf = new X509Certificate(t.client.mitmcert!);
  assert.equal(leaf.subjectAltName, "DNS:upstream.example, DNS:alt.example, DNS:example.com");
  // the child: HTTP over the decrypted stream, on the server connection made for the handshake
  pb.in(data(t.client, "GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders", (f) => (f as HTTPFlow).request.url === "https://example.com/s")).reply()
    .out(hook("request")).reply()
    .out(send(server, "GET /s HTTP/1.1\r\nHost: example.com\r\n\r\n"));
});

Deno.test("tls: tls_clienthello sets ignoreConnection: a passthrough with the ClientHello relayed first", async () => {
  const { t, pb } = await tls();
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO));
  ((pb.take() as StartHook).data as ClientHelloData).ignoreConnection = true;
  pb.reply().out(open("example.com:443")).reply(null);
  const r = pb.take() as Relay;
  assert.ok(r instanceof Relay);
  assert.deepEqual(r.aPending, HELLO);
  assert.equal(t.client.tls, false);
});

Deno.test("tls: upstream_cert off: the client first, the leaf for the SNI; the server handshake with the first request", async () => {
  const { t, pb, requests } = await tls({ upstream_cert: false });
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello", (d) => (d as ClientHelloData).establishServerTlsFirst === false)).reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client)).reply(info())
    .out(hook("tls_established_client")).reply()
    .done();
  assert.deepEqual(requests, [{ commonName: "example.com", sans: ["example.com"], organization: undefined }]);
  const server = t.ctx.server;
  pb.in(data(t.client, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply();
  const o = pb.take() as OpenConnection;
  assert.equal(o.conn, server, "the tunnel's server record (it carries the client's SNI)");
  pb.reply(null)
    .out(hook("tls_start_server")).reply()
    .out(startTls(server)).reply(info())
    .out(hook("tls_established_server")).reply()
    .out(send(server, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
});

Deno.test("tls: names learned by an earlier handshake with the server: no server handshake first", async () => {
  const { t, pb, requests } = await tls();
  const conns = t.master.proxy.conns;
  conns.setTlsConfig({ insecure: false, alpn: ["http/1.1"], reuse: true });
  const earlier = new Server(["example.com", 443]);
  earlier.sni = "example.com";
  conns.learn(earlier, { cn: "cached.example", sans: ["cached.example"] });
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello", (d) => (d as ClientHelloData).establishServerTlsFirst === false)).reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client));
  assert.deepEqual(requests[0].sans, ["cached.example", "example.com"]);
});

Deno.test("tls: a server connection open already (eager CONNECT): the handshake on it, no OpenConnection", async () => {
  const { t, pb } = await tls({ upstream_cert: false });
  t.ctx.server.timestampStart = Date.now() / 1000;
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    // connected: the server handshake comes first even without upstream_cert (mitmproxy's default)
    .out(hook("tls_clienthello", (d) => (d as ClientHelloData).establishServerTlsFirst === true)).reply()
    .out(hook("tls_start_server")).reply()
    .out(startTls(() => t.ctx.server)).reply(info())
    .out(hook("tls_established_server")).reply()
    .out(hook("tls_start_client"));
});

Deno.test("tls: an idle TLS connection from the pool: no handshake with the server at all", async () => {
  const { t, pb } = await tls();
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello")).reply()
    .out(open("example.com:443"));
  t.ctx.server.timestampTlsSetup = Date.now() / 1000; // what the driver does for a pooled connection
  pb.reply(null).out(hook("tls_start_client"));
});

Deno.test("tls: the server handshake fails: the client still gets TLS, its first request a 502 naming why", async () => {
  const { t, pb } = await tls();
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello")).reply()
    .out(open()).reply(null)
    .out(hook("tls_start_server")).reply()
    .out(startTls(() => t.ctx.server)).reply(
      new ProtocolError("tls", "certificate verify failed: self-signed certificate"),
    )
    .out(hook("tls_failed_server")).reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client)).reply(info())
    .out(hook("tls_established_client")).reply()
    .in(data(t.client, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(hook("error")).reply()
    .out(
      send(
        t.client,
        /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*certificate verify failed: self-signed certificate/,
      ),
    )
    .out(close(t.client));
});

Deno.test("tls: the server cannot be reached for the handshake first: the same, with the connect error", async () => {
  const { t, pb } = await tls();
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello")).reply()
    .out(open()).reply(
      new ProtocolError("connect", "Cannot connect to example.com:443: connection refused", 502),
    )
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client)).reply(info())
    .out(hook("tls_established_client")).reply()
    .in(data(t.client, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(hook("error")).reply()
    .out(send(t.client, /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*connection refused/));
});

Deno.test("tls: a client that does not trust our CA: warned once per host, tls_failed_client, both closed", async () => {
  const { t, pb, cfg } = await tls({ upstream_cert: false });
  t.ctx.server.timestampStart = Date.now() / 1000;
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello")).reply()
    .out(hook("tls_start_server")).reply()
    .out(startTls(() => t.ctx.server)).reply(info())
    .out(hook("tls_established_server")).reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client)).reply(new ProtocolError("tls", "unknown ca", null, "untrusted"))
    .out(hook("tls_failed_client")).reply()
    .out(close(t.client))
    .out(close(() => t.ctx.server))
    .done();
  assert.equal(
    t.client.error,
    "client does not trust the mitmdeno CA (TLS alert: unknown ca): see http://mitm.it",
  );
  assert.deepEqual([...cfg.untrustedWarned], ["example.com"]);
  // nothing more happens on that connection
  pb.in(data(t.client, "x")).done();
});

Deno.test("tls: untrusted warnings: warn the first time for a host, debug after; other failures are plain", async () => {
  const run = async (
    warned: Set<string>,
    err: ProtocolError,
  ) => {
    const { t, layer, cfg } = await tls({ upstream_cert: false });
    for (const h of warned) cfg.untrustedWarned.add(h);
    const pb = new Playbook(layer, { logs: true });
    pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
      .out(hook("tls_clienthello")).reply()
      .out(hook("tls_start_client")).reply()
      .out(startTls(t.client)).reply(err);
    return { pb, t };
  };
  const a = await run(new Set(), new ProtocolError("tls", "closed", null, "closed"));
  a.pb.out(log(/client closed the connection during the TLS handshake \(it may not trust/, "warn"));
  const b = await run(new Set(["example.com"]), new ProtocolError("tls", "unknown ca", null, "untrusted"));
  b.pb.out(log(/does not trust the mitmdeno CA/, "debug"));
  const c = await run(new Set(), new ProtocolError("tls", "no shared cipher", null));
  c.pb.out(log(/TLS handshake with the client for example.com failed: no shared cipher/, "info"));
  assert.equal(c.t.client.error, "TLS handshake with the client for example.com failed: no shared cipher");
});

Deno.test("tls: an invalid ClientHello closes the client with the reason", async () => {
  const { t, pb } = await tls();
  pb.in(new Start()).out(wakeup())
    .in(data(t.client, "\x16\x03\x01\x00\x04\x02\x00\x00\x00"))
    .out(close(t.client))
    .done();
  assert.equal(t.client.error, "invalid TLS ClientHello: not a ClientHello: handshake message type 2");
  pb.in(data(t.client, "more")).done();
});

Deno.test("tls: the client closing in the middle of its ClientHello", async () => {
  const { t, pb } = await tls();
  t.ctx.server.timestampStart = Date.now() / 1000;
  pb.in(new Start()).out(wakeup())
    .in(new DataReceived(t.client, HELLO.subarray(0, 30)))
    .in(closed(t.client))
    .out(close(t.client))
    .out(close(() => t.ctx.server))
    .done();
  assert.equal(t.client.error, "client closed the connection in the middle of the ClientHello (30 bytes)");
});

Deno.test("tls: no complete ClientHello within tcp_timeout", async () => {
  const { t, pb } = await tls({ tcp_timeout: 7 });
  pb.in(new Start()).out(wakeup(7000)).in(new DataReceived(t.client, HELLO.subarray(0, 10)));
  pb.fire(pb.history[0] as RequestWakeup).out(close(t.client)).done();
  assert.equal(t.client.error, "client sent no complete TLS ClientHello within 7s");
});

Deno.test("tls: no server TLS (reverse proxy to http://): the client handshake only; no SNI: the listening IP", async () => {
  const { t, pb, requests } = await tls({}, { serverTls: false }, ["backend", 80]);
  t.client.proxyMode = "reverse:http://backend:80";
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, clientHello({})))
    .out(hook("tls_clienthello", (d) => (d as ClientHelloData).establishServerTlsFirst === false)).reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client));
  assert.deepEqual(requests[0].sans, ["127.0.0.1", "backend"]);
  assert.equal(t.ctx.server.tls, false);
});

Deno.test("tls: a reverse proxy keeps the target's SNI; a regular one takes the client's (never an IP literal)", async () => {
  const a = await tls({ upstream_cert: false });
  a.t.client.proxyMode = "reverse:https://example.com";
  a.t.ctx.server.sni = "example.com";
  a.pb.in(new Start()).in(new DataReceived(a.t.client, clientHello({ sni: "front.example" })));
  assert.equal(a.t.ctx.server.sni, "example.com");
  const b = await tls({ upstream_cert: false });
  b.pb.in(new Start()).in(new DataReceived(b.t.client, clientHello({ sni: "10.0.0.1" })));
  assert.equal(b.t.ctx.server.sni, null);
});

Deno.test("tls: a leaf that cannot be made closes the client with the reason", async () => {
  const { t, layer, cfg } = await tls({ upstream_cert: false });
  (cfg as { certs: unknown }).certs = {
    getCert: () => {
      throw new Error("CA key unusable");
    },
  };
  const pb = new Playbook(layer);
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello")).reply()
    .out(close(t.client))
    .done();
  assert.match(t.client.error!, /^cannot create a certificate for example.com: .*CA key unusable/);
});

Deno.test("tls: the child layer of the options runs over the decrypted stream", async () => {
  let made = 0;
  const { t, pb } = await tls({ upstream_cert: false }, {
    serverTls: true,
    child: (ctx) => {
      made++;
      return new TlsLayer(ctx, {
        certs: null as unknown as CertStore,
        untrustedWarned: new Set(),
        onboardingUrl: "",
      }, {
        serverTls: false,
      });
    },
  });
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello")).reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client)).reply(info())
    .out(hook("tls_established_client")).reply()
    .out(wakeup(600_000)) // the child started
    .done();
  assert.equal(made, 1);
});

Deno.test("certRequestFor: upstream CN and SANs first, then the SNI or the fallback IP, then the host, deduplicated", () => {
  assert.deepEqual(certRequestFor({ cn: "a", sans: ["a", "b"], o: "O" }, "c", "1.2.3.4", "b"), {
    commonName: "a",
    sans: ["a", "b", "c"],
    organization: "O",
  });
  assert.deepEqual(certRequestFor(undefined, null, "10.0.0.1", "host"), {
    commonName: "10.0.0.1",
    sans: ["10.0.0.1", "host"],
    organization: undefined,
  });
  assert.deepEqual(certRequestFor(undefined, null, null, "host").sans, ["host"]);
});

Deno.test("tls: the client first on an open tunnel connection: the first request does the server handshake on it", async () => {
  const { t, pb } = await tls();
  const server = t.ctx.server;
  server.timestampStart = Date.now() / 1000; // eager CONNECT
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO));
  ((pb.take() as StartHook).data as ClientHelloData).establishServerTlsFirst = false;
  pb.reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client)).reply(info())
    .out(hook("tls_established_client")).reply()
    .in(data(t.client, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    // no OpenConnection: the TCP connection is there, only TLS is missing
    .out(hook("tls_start_server", (d) => (d as { conn: unknown }).conn === server)).reply()
    .out(startTls(server)).reply(info())
    .out(hook("tls_established_server")).reply()
    .out(send(server, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
});

Deno.test("tls: after the server closed the tunnel's connection, the next one sends the same SNI and ALPN", async () => {
  const { t, pb } = await tls({ upstream_cert: false });
  pb.in(new Start()).out(wakeup()).in(new DataReceived(t.client, HELLO))
    .out(hook("tls_clienthello")).reply()
    .out(hook("tls_start_client")).reply()
    .out(startTls(t.client)).reply(info())
    .out(hook("tls_established_client")).reply()
    .in(data(t.client, "GET /1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(open("example.com:443")).reply(null)
    .out(hook("tls_start_server")).reply()
    .out(startTls(() => t.ctx.server)).reply(info())
    .out(hook("tls_established_server")).reply()
    .out(send(() => t.ctx.server, /^GET \/1 /))
    .out(wakeup(1000))
    .in(data(t.ctx.server, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"))
    .out(hook("responseheaders"))
    .out(close(() => t.ctx.server))
    .reply()
    .out(hook("response")).reply()
    .out(send(t.client, /^HTTP\/1.1 200 OK/))
    .in(data(t.client, "GET /2 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply();
  const o = pb.take() as OpenConnection;
  assert.ok(o instanceof OpenConnection);
  assert.notEqual(o.conn, t.ctx.server);
  assert.deepEqual([o.conn.address, o.conn.tls, o.conn.sni], [["example.com", 443], true, "example.com"]);
});

Deno.test("tls: a ClientHello that does not end within 64 KiB is refused", async () => {
  const { t, pb } = await tls();
  pb.in(new Start()).out(wakeup());
  const need = 65536 - 4; // a handshake body that fits the limit; it never completes
  const rec = (payload: number[]) => new Uint8Array([0x16, 0x03, 0x01, 0x40, 0x00, ...payload]);
  pb.in(
    new DataReceived(
      t.client,
      rec([1, need >> 16, (need >> 8) & 0xff, need & 0xff, ...new Array(16380).fill(0)]),
    ),
  );
  for (let i = 0; i < 2; i++) pb.in(new DataReceived(t.client, rec(new Array(16384).fill(0))));
  pb.done();
  pb.in(new DataReceived(t.client, rec(new Array(16364).fill(0)))).out(close(t.client)).done();
  assert.equal(t.client.error, "TLS ClientHello too large");
});
