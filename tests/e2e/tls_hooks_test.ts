/**
 * HTTPS interception with addons in-process: a response hook's change is visible to curl inside the
 * tunnel, the tls_* hooks fire in mitmproxy's order with the connection records filled in, and
 * `tls_clienthello` can pass a connection through.
 */
import assert from "node:assert/strict";
import { curl, startInProcess } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import type { HTTPFlow } from "../../lib/flow/flow.ts";
import type { ClientHelloData } from "../../lib/proxy/layers/tls.ts";
import type { TlsData } from "../../lib/proxy/layers/server_tls.ts";
import type { Client, Server } from "../../lib/flow/connection.ts";

Deno.test("tls hooks: request/response changes visible, tls_* order and connection records, passthrough by tls_clienthello", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlshooks-" });
  const origin = await startHttpsOrigin(dir);
  const events: string[] = [];
  const clients: Client[] = [];
  const servers: Server[] = [];
  const flows: HTTPFlow[] = [];
  const addon = {
    name: "recorder",
    tls_clienthello(d: ClientHelloData) {
      events.push(`tls_clienthello ${d.clientHello.sni}`);
      if (d.clientHello.sni === undefined) d.ignoreConnection = true; // curl sends no SNI for IPs
    },
    tls_start_server: (d: TlsData) => events.push(`tls_start_server`) && void servers.push(d.conn as Server),
    tls_established_server: () => events.push("tls_established_server"),
    tls_start_client: () => events.push("tls_start_client"),
    tls_established_client: (d: TlsData) =>
      events.push("tls_established_client") && void clients.push(d.conn as Client),
    tls_failed_client: () => events.push("tls_failed_client"),
    request(f: HTTPFlow) {
      f.request.headers.set("x-added", "1");
    },
    response(f: HTTPFlow) {
      flows.push(f);
      f.response!.headers.set("x-hooked", "yes");
      f.response!.text = (f.response!.text ?? "").replace("hello", "HOOKED");
    },
  };
  const proxy = await startInProcess([new TlsConfig(), addon], [
    `confdir=${dir}/conf`,
    `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
  ]);
  try {
    const r = await curl([
      "--cacert",
      `${dir}/conf/mitmdeno-ca-cert.pem`,
      "-x",
      proxy.url,
      `https://localhost:${origin.port}/x`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.body, `HOOKED /x host=localhost:${origin.port}\n`);
    assert.match(r.headers, /x-hooked: yes/);
    assert.deepEqual(events, [
      "tls_clienthello localhost",
      "tls_start_server",
      "tls_established_server",
      "tls_start_client",
      "tls_established_client",
    ]);
    const c = clients[0];
    assert.equal(c.tls, true);
    assert.equal(c.sni, "localhost");
    assert.equal(c.alpn, "http/1.1");
    assert.match(c.tlsVersion ?? "", /^TLSv1\.[23]$/);
    assert.ok(c.cipher);
    assert.match(c.mitmcert ?? "", /BEGIN CERTIFICATE/);
    assert.ok(c.timestampTlsSetup);
    const s = servers[0];
    assert.equal(s.tls, true);
    assert.equal(s.sni, "localhost");
    assert.equal(s.certificateList.length >= 1, true);
    assert.ok(s.timestampTlsSetup);
    const f = flows[0];
    assert.equal(f.request.scheme, "https");
    assert.equal(f.request.headers.get("x-added"), "1");
    assert.equal(f.serverConn.tls, true);
    assert.equal(f.clientConn.tls, true);

    // tls_clienthello decides to pass through: the client sees the origin's certificate
    events.length = 0;
    const p = await curl([
      "-v",
      "--cacert",
      origin.caFile,
      "-x",
      proxy.url,
      `https://127.0.0.1:${origin.port}/p`,
    ]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.body, `hello /p host=127.0.0.1:${origin.port}\n`);
    assert.deepEqual(events, ["tls_clienthello undefined"]);
    assert.match(p.stderr, /issuer: CN=testorigin/);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
