/**
 * Upstream TLS connections outlive the client connection that opened them (lib/proxy/server_conn.ts
 * idle pool): a second client connection to the same HTTPS origin reuses the upstream connection and
 * the names learned from its certificate (no upstream handshake first), hooks stay truthful, how the
 * server was verified is part of the reuse key, idle connections the server closed are never handed
 * out, a stale one is retried on a fresh connection, and shutdown closes the idle ones.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import type net from "node:net";
import { curl, startInProcess } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import { loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";
import type { ClientHelloData } from "../../lib/proxy/layers/tls.ts";
import type { ServerConnectionHookData } from "../../lib/proxy/conns/manager.ts";

function waitUntil(cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error("timed out waiting"));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

/** A recorder of server_* and tls_* hooks. */
function recorder(events: string[]) {
  return {
    name: "recorder",
    server_connect: () => void events.push("server_connect"),
    server_connected: () => void events.push("server_connected"),
    server_disconnected: (d: ServerConnectionHookData) =>
      void events.push(`server_disconnected ${d.server.sni}`),
    tls_clienthello: (d: ClientHelloData) => void events.push(`tls_clienthello ${d.clientHello.sni}`),
    tls_start_server: () => void events.push("tls_start_server"),
    tls_established_server: () => void events.push("tls_established_server"),
    tls_start_client: () => void events.push("tls_start_client"),
    tls_established_client: () => void events.push("tls_established_client"),
  };
}

Deno.test("tls reuse: a second client connection reuses the upstream TLS connection and the learned certificate names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsreuse-" });
  const origin = await startHttpsOrigin(dir);
  const events: string[] = [];
  const proxy = await startInProcess([new TlsConfig(), recorder(events)], [
    `confdir=${dir}/conf`,
    "ssl_insecure=true",
  ]);
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  const url = `https://localhost:${origin.port}`;
  try {
    const a = await curl(["-v", "--cacert", cacert, "-x", proxy.url, `${url}/a`]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.body, `hello /a host=localhost:${origin.port}\n`);
    assert.match(a.stderr, /subject: CN=localhost; O=Origin Org/);
    assert.deepEqual(events, [
      "server_connect",
      "server_connected",
      "tls_clienthello localhost",
      "tls_start_server",
      "tls_established_server",
      "tls_start_client",
      "tls_established_client",
    ]);
    assert.equal(origin.connections, 1);

    // a new client connection: no upstream connect, no upstream handshake, same forged names
    events.length = 0;
    const b = await curl(["-v", "--cacert", cacert, "-x", proxy.url, `${url}/b`]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.body, `hello /b host=localhost:${origin.port}\n`);
    assert.match(b.stderr, /subject: CN=localhost; O=Origin Org/);
    assert.deepEqual(events, ["tls_clienthello localhost", "tls_start_client", "tls_established_client"]);
    assert.equal(origin.connections, 1, "the origin saw a second TLS connection");
    assert.equal(origin.requests, 2);

    // two clients at once: the second needs its own upstream connection (nothing idle for it)
    const both = await Promise.all([
      curl(["--cacert", cacert, "-x", proxy.url, `${url}/c1`]),
      curl(["--cacert", cacert, "-x", proxy.url, `${url}/c2`]),
    ]);
    for (const r of both) assert.equal(r.status, 200, r.stderr);
    assert.ok(origin.connections <= 2, `${origin.connections} connections`);

    // shutdown closes the idle connections, and says so
    const before = events.filter((e) => e.startsWith("server_disconnected")).length;
    await proxy.stop();
    assert.ok(
      events.filter((e) => e.startsWith("server_disconnected")).length > before,
      events.join("\n"),
    );
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls reuse: a connection verified differently (ssl_insecure) is never reused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsreuse-" });
  const origin = await startHttpsOrigin(dir);
  const proxy = await startInProcess([new TlsConfig()], [`confdir=${dir}/conf`, "ssl_insecure=true"]);
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  const url = `https://localhost:${origin.port}`;
  try {
    const a = await curl(["--cacert", cacert, "-x", proxy.url, `${url}/a`]);
    assert.equal(a.status, 200, a.stderr);
    assert.equal(origin.connections, 1);
    // now verify: the origin's self-signed CA is not trusted, so the next request must fail
    await proxy.master.options.update({ ssl_insecure: false });
    const b = await curl(["--cacert", cacert, "-x", proxy.url, `${url}/b`]);
    assert.equal(b.status, 502, b.body);
    assert.match(b.body, /certificate verify failed/);
    assert.equal(origin.requests, 1);
    // and back: a fresh (insecure) connection, no reuse of anything verified differently
    await proxy.master.options.update({ ssl_insecure: true });
    const c = await curl(["--cacert", cacert, "-x", proxy.url, `${url}/c`]);
    assert.equal(c.status, 200, c.stderr);
    assert.equal(origin.requests, 2);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A raw HTTPS origin (HTTP/1.1 keep-alive, bodiless requests) whose behaviour per connection is
 * scripted: `onRequest(n, socket)` for the n-th request (0-based) on a connection returns "respond",
 * "respond-then-close" or "drop" (close without a response).
 */
async function scriptedOrigin(
  dir: string,
  onRequest: (n: number, s: net.Socket) => "respond" | "respond-then-close" | "drop",
) {
  const ca = await loadOrCreateCA(`${dir}/origin-ca`, { basename: "scripted" });
  const leaf = new CertStore(ca, { secureContext: false }).getCert({
    commonName: "localhost",
    sans: ["localhost"],
  });
  const state = { connections: 0, requests: 0 };
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: leaf.keyPem, cert: leaf.chainPem }, (s) => {
    state.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = "";
    let n = 0;
    s.on("data", (d: Uint8Array) => {
      buf += new TextDecoder("latin1").decode(d);
      let i: number;
      while ((i = buf.indexOf("\r\n\r\n")) !== -1) {
        buf = buf.slice(i + 4);
        const what = onRequest(n++, s);
        if (what === "drop") {
          s.destroy();
          return;
        }
        state.requests++;
        const body = `reply ${state.connections}.${n}`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        if (what === "respond-then-close") setTimeout(() => s.end(), 100);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    state,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

Deno.test("tls reuse: an idle connection the server closed is not handed out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsreuse-" });
  const origin = await scriptedOrigin(dir, () => "respond-then-close");
  const events: string[] = [];
  const proxy = await startInProcess([new TlsConfig(), recorder(events)], [
    `confdir=${dir}/conf`,
    "ssl_insecure=true",
  ]);
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  try {
    const a = await curl(["--cacert", cacert, "-x", proxy.url, `https://localhost:${origin.port}/a`]);
    assert.equal(a.body, "reply 1.1", a.stderr);
    // the server closes the idle connection: noticed and reported at once
    await waitUntil(() => events.includes("server_disconnected localhost"));
    const b = await curl(["--cacert", cacert, "-x", proxy.url, `https://localhost:${origin.port}/b`]);
    assert.equal(b.body, "reply 2.1", b.stderr);
    assert.equal(origin.state.connections, 2);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls reuse: a reused connection that ends without a response is retried once on a fresh one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsreuse-" });
  // the second request on any connection is dropped (a server that closed it while we thought it idle)
  const origin = await scriptedOrigin(dir, (n) => (n === 0 ? "respond" : "drop"));
  const proxy = await startInProcess([new TlsConfig()], [`confdir=${dir}/conf`, "ssl_insecure=true"]);
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  try {
    const a = await curl(["--cacert", cacert, "-x", proxy.url, `https://localhost:${origin.port}/a`]);
    assert.equal(a.body, "reply 1.1", a.stderr);
    const b = await curl(["--cacert", cacert, "-x", proxy.url, `https://localhost:${origin.port}/b`]);
    assert.equal(b.status, 200, b.body);
    assert.equal(b.body, "reply 2.1");
    assert.equal(origin.state.connections, 2);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls reuse: the SNI is part of the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsreuse-" });
  const origin = await startHttpsOrigin(dir);
  const proxy = await startInProcess([new TlsConfig()], [`confdir=${dir}/conf`, "ssl_insecure=true"]);
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  try {
    const target = `localhost:${origin.port}`;
    const a = await curl(["--cacert", cacert, "-x", proxy.url, `https://${target}/a`]);
    assert.equal(a.status, 200, a.stderr);
    // same host and port, another SNI (curl --connect-to keeps the CONNECT target, changes the name)
    const b = await curl([
      "-k",
      "--connect-to",
      `other.test:${origin.port}:localhost:${origin.port}`,
      "-x",
      proxy.url,
      `https://other.test:${origin.port}/b`,
    ]);
    assert.equal(b.status, 200, b.stderr);
    assert.equal(origin.connections, 2);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
