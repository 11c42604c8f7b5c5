/** The per-master connection manager: TLS settings, reuse keys, learned names, the idle pool behind them. */
import assert from "node:assert/strict";
import { Client, Server } from "../../../../lib/flow/connection.ts";
import { Transport } from "../../../../lib/proxy/conns/transport.ts";
import { Reader, Resources, testMaster, until } from "../io_utils.ts";

function tlsServer(port: number, sni: string | null = "example.com", alpn = ["http/1.1"]): Server {
  const s = new Server(["127.0.0.1", port]);
  s.tls = true;
  s.sni = sni;
  s.alpnOffers = alpn;
  s.timestampTlsSetup = Date.now() / 1000;
  return s;
}

Deno.test("ConnectionManager: default settings follow ssl_insecure; new settings change every key and drop what was learned", async () => {
  const { master } = testMaster();
  const m = master.proxy.conns;
  assert.deepEqual(m.tlsConfig, { insecure: false, alpn: ["http/1.1"] });
  await master.options.update({ ssl_insecure: true });
  assert.equal(m.tlsConfig.insecure, true);
  const s = tlsServer(443, "a.example", ["h2", "http/1.1"]);
  const before = m.reuseKey(s);
  assert.match(before, /\|a\.example\|127\.0\.0\.1:443\|h2,http\/1\.1$/);
  m.setTlsConfig({ insecure: true, alpn: ["http/1.1"], reuse: true });
  assert.notEqual(m.reuseKey(s), before, "a new generation");
  const other = tlsServer(443, "b.example", ["h2", "http/1.1"]);
  assert.notEqual(m.reuseKey(other), m.reuseKey(s), "the SNI is part of the key");
  // names are learned only with reuse, per SNI
  m.learn(s, { cn: "a.example", sans: ["a.example"] });
  assert.deepEqual(m.certInfo("127.0.0.1", 443, "a.example"), { cn: "a.example", sans: ["a.example"] });
  assert.equal(m.certInfo("127.0.0.1", 443, "b.example"), undefined);
  m.setTlsConfig({ insecure: false, alpn: ["http/1.1"], reuse: true });
  assert.equal(m.certInfo("127.0.0.1", 443, "a.example"), undefined, "forgotten with the old settings");
  m.setTlsConfig({ insecure: false, alpn: ["http/1.1"], reuse: false });
  m.learn(s, { sans: [] });
  assert.equal(m.certs.size, 0, "nothing learned without reuse");
  assert.equal(m.certInfo("127.0.0.1", 443, "a.example"), undefined);
  assert.equal(m.sniFor("example.com", undefined), "example.com");
  assert.equal(m.sniFor("10.0.0.1", undefined), null);
  assert.equal(m.sniFor("example.com", "other.example"), "other.example");
});

Deno.test("ConnectionManager: only healthy TLS connections are parked, and only with reuse; takeIdle matches SNI and ALPN", async () => {
  const res = new Resources();
  const { master } = testMaster();
  const m = master.proxy.conns;
  try {
    const { ours } = await res.pair();
    const port = ours.remotePort!;
    const client = new Client();
    const t = new Transport(ours);
    m.setTlsConfig({ insecure: false, alpn: ["http/1.1"], reuse: false });
    assert.equal(m.park(tlsServer(port), t, client), false, "no reuse");
    m.setTlsConfig({ insecure: false, alpn: ["http/1.1"], reuse: true });
    const plain = tlsServer(port);
    plain.tls = false;
    assert.equal(m.park(plain, t, client), false, "not TLS");
    const noHandshake = tlsServer(port);
    noHandshake.timestampTlsSetup = null;
    assert.equal(m.park(noHandshake, t, client), false, "no handshake done");
    const parked = tlsServer(port);
    assert.equal(m.park(parked, t, client), true);
    assert.ok(m.hasIdleTls("127.0.0.1", port));
    assert.equal(m.takeIdle(tlsServer(port, "other.example"), client), null, "another SNI");
    assert.equal(m.takeIdle(tlsServer(port, "example.com", ["h2"]), client), null, "other ALPN offers");
    const notTls = tlsServer(port);
    notTls.tls = false;
    assert.equal(m.takeIdle(notTls, client), null);
    const got = m.takeIdle(tlsServer(port), client);
    assert.ok(got);
    assert.equal(got.server, parked);
    assert.equal(got.transport, t);
    assert.ok(!m.hasIdleTls("127.0.0.1", port));
  } finally {
    m.closeIdle(true);
    await res.close();
  }
});

Deno.test("ConnectionManager: connections the pool closes fire server_disconnected for the client they last served; closeIdle(final) keeps no more", async () => {
  const res = new Resources();
  const { master } = testMaster();
  const m = master.proxy.conns;
  const seen: { server: Server; client: Client }[] = [];
  await master.addAddons({
    name: "rec",
    server_disconnected: (d: { server: Server; client: Client }) => void seen.push(d),
  });
  try {
    m.setTlsConfig({ insecure: false, alpn: ["http/1.1"], reuse: true });
    const { ours, peer } = await res.pair();
    const client = new Client({ peername: ["127.0.0.1", 1234] });
    const server = tlsServer(ours.remotePort!);
    assert.ok(m.park(server, new Transport(ours), client));
    const peerReader = new Reader(peer);
    m.closeIdle(true);
    await peerReader.waitClosed();
    await until(() => seen.length === 1, "server_disconnected");
    assert.equal(seen[0].server, server);
    assert.equal(seen[0].client, client);
    assert.ok(server.timestampEnd !== null);
    const second = await res.pair();
    const t2 = new Transport(second.ours);
    assert.equal(m.park(tlsServer(second.ours.remotePort!), t2, client), false);
    // new settings reopen the pool
    m.setTlsConfig({ insecure: false, alpn: ["http/1.1"], reuse: true });
    assert.equal(m.park(tlsServer(second.ours.remotePort!), t2, client), true);
  } finally {
    m.closeIdle(true);
    await res.close();
  }
});
