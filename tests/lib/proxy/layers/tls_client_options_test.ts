/**
 * The TLS layer's client-side options without sockets (Playbook): `ciphers_client` refusing a ClientHello
 * with no allowed suite (handshake_failure alert, tls_failed_client, close), letting a TLS 1.3 one through,
 * and `add_upstream_certs_to_client_chain` (the server's chain in the context given to StartTls).
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { Server } from "../../../../lib/flow/connection.ts";
import { DataReceived, Start } from "../../../../lib/proxy/events.ts";
import { StartTls } from "../../../../lib/proxy/commands.ts";
import { TlsLayer, type TlsLayerConfig } from "../../../../lib/proxy/layers/tls.ts";
import { loadOrCreateCA } from "../../../../lib/tls/ca.ts";
import { CertStore } from "../../../../lib/tls/certs.ts";
import { cipherPolicy } from "../../../../lib/tls/ciphers.ts";
import { close, hook, Playbook, send, tctx, wakeup } from "../tutils.ts";

/** The first bytes of a real node:tls client's ClientHello. */
function clientHello(opts: tls.ConnectionOptions): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const server = net.createServer((sock) => {
      sock.once("data", (d: Uint8Array) => {
        sock.destroy();
        server.close();
        resolve(new Uint8Array(d));
      });
      sock.on("error", () => {});
    });
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      tls.connect({ host: "127.0.0.1", port, servername: "example.com", rejectUnauthorized: false, ...opts })
        .on("error", () => {});
    });
  });
}

async function setup(cfg: Partial<TlsLayerConfig>) {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlslayer-" });
  const ca = await loadOrCreateCA(dir);
  const t = tctx();
  t.ctx.server = new Server(["example.com", 443]);
  const config: TlsLayerConfig = {
    certs: new CertStore(ca),
    untrustedWarned: new Set(),
    onboardingUrl: "http://mitm.it/",
    ...cfg,
  };
  return { t, pb: new Playbook(new TlsLayer(t.ctx, config, { serverTls: false })), config, dir };
}

Deno.test("tls layer: ciphers_client refuses a ClientHello with no allowed suite as OpenSSL would", async () => {
  const hello = await clientHello({ maxVersion: "TLSv1.2" });
  const { t, pb, dir } = await setup({ clientCiphers: cipherPolicy("AES128-SHA"), clientTls13: true });
  try {
    pb.in(new Start()).out(wakeup())
      .in(new DataReceived(t.client, hello))
      .out(hook("tls_clienthello")).reply()
      .out(hook("tls_start_client")).reply()
      .out(send(t.client, "\x15\x03\x03\x00\x02\x02\x28"))
      .out(hook("tls_failed_client")).reply()
      .out(close(t.client))
      .done();
    assert.match(
      t.client.error ?? "",
      /no shared cipher: the client offers none of ciphers_client \(AES128-SHA\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls layer: a TLS 1.3 ClientHello is not governed by ciphers_client; TLS 1.2 with an allowed suite passes", async () => {
  for (const [opts, tls13] of [[{}, true], [{ maxVersion: "TLSv1.2" }, false]] as const) {
    const hello = await clientHello(opts as tls.ConnectionOptions);
    const { t, pb, dir } = await setup({
      clientCiphers: cipherPolicy(tls13 ? "AES128-SHA" : "ECDHE-ECDSA-AES128-GCM-SHA256"),
      clientTls13: true,
    });
    try {
      pb.in(new Start()).out(wakeup())
        .in(new DataReceived(t.client, hello))
        .out(hook("tls_clienthello")).reply()
        .out(hook("tls_start_client")).reply();
      const st = pb.take() as StartTls;
      assert.ok(st instanceof StartTls && st.conn === t.client, String(st));
      assert.ok(st.settings.ciphers?.names.size, "the policy goes to the driver for the negotiated check");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("tls layer: add_upstream_certs_to_client_chain: the server's chain appended, the context kept per leaf", async () => {
  const hello = await clientHello({});
  const { t, pb, config, dir } = await setup({ addUpstreamCerts: true });
  const other = await loadOrCreateCA(`${dir}/other`, { basename: "upstreamca" });
  t.ctx.server.certificateList = [other.certPem];
  try {
    pb.in(new Start()).out(wakeup())
      .in(new DataReceived(t.client, hello))
      .out(hook("tls_clienthello")).reply()
      .out(hook("tls_start_client")).reply();
    const st = pb.take() as StartTls;
    const leaf = config.certs.getCert({ commonName: "example.com", sans: ["example.com"] });
    assert.notEqual(st.settings.secureContext, leaf.secureContext, "a context with the extras");
    assert.equal(config.chainContexts?.get(leaf)?.chain, leaf.chainPem + other.certPem);
    assert.equal(config.chainContexts?.get(leaf)?.ctx, st.settings.secureContext);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
