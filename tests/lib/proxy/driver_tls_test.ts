/**
 * The driver's TLS: StartTls on the client side (we are the TLS server, with a leaf of a test CA) and on the
 * server side (we are the TLS client of a node:tls origin), failures as typed errors, reading paused across
 * the upgrade, and idle TLS connections handed from one client connection to the next.
 */
import assert from "node:assert/strict";
import type net from "node:net";
import type tls from "node:tls";
import { Server } from "../../../lib/flow/connection.ts";
import {
  CloseConnection,
  OpenConnection,
  SendData,
  SetReading,
  StartTls,
  type TlsInfo,
} from "../../../lib/proxy/commands.ts";
import { ConnectionClosed, DataReceived, Start } from "../../../lib/proxy/events.ts";
import { ProtocolError } from "../../../lib/proxy/errors.ts";
import { parseClientHello } from "../../../lib/tls/clienthello.ts";
import type { Master } from "../../../lib/master.ts";
import {
  bytes,
  type DriverRun,
  Reader,
  Resources,
  runDriver,
  type ScriptLayer,
  sleep,
  testMaster,
  testPki,
  text,
  tlsClient,
  until,
  within,
} from "./io_utils.ts";

/** Decrypted data the layer received on `conn`. */
function received(l: ScriptLayer, conn: unknown): string {
  return l.seen(DataReceived).filter((e) => e.conn === conn).map((e) => text(e.data)).join("");
}

/**
 * A driver whose layer collects the client's ClientHello, then starts TLS on the client with the test leaf
 * (`alpn` accepted); the reply lands in `tls`.
 */
async function tlsFront(res: Resources, master: Master, opts: { alpn?: string[]; timeoutMs?: number } = {}) {
  const { leaf } = await testPki();
  const state: { reply: TlsInfo | ProtocolError | null } = { reply: null };
  let buf = new Uint8Array(0);
  let started = false;
  const r = await runDriver(res, master, (e, l) => {
    if (started || !(e instanceof DataReceived) || e.conn !== l.context.client) return;
    buf = new Uint8Array([...buf, ...e.data]);
    if (parseClientHello(buf) === "need-more") return;
    started = true;
    l.ask(
      new StartTls(l.context.client, {
        secureContext: leaf.secureContext,
        alpn: opts.alpn ?? ["http/1.1"],
        initialData: buf,
        timeoutMs: opts.timeoutMs ?? 5000,
      }),
    ).then((reply) => (state.reply = reply));
  });
  return { r, state };
}

Deno.test("driver TLS, client side: the ClientHello the layer read is given back to TLS; ALPN, version and data after the handshake", async () => {
  const res = new Resources();
  try {
    const { ca } = await testPki();
    const { master } = testMaster();
    const { r, state } = await tlsFront(res, master);
    const sock = res.socket(
      await tlsClient(r.client, {
        ca: [ca.certPem],
        servername: "localhost",
        ALPNProtocols: ["h2", "http/1.1"],
      }),
    );
    await until(() => state.reply !== null, "the StartTls reply");
    const info = state.reply as TlsInfo;
    assert.ok(!(info instanceof ProtocolError), String(info));
    assert.equal(info.alpn, "http/1.1");
    assert.equal(info.tlsVersion, "TLSv1.3");
    assert.ok(info.cipher);
    assert.deepEqual(info.certificateList, [], "no peer chain of a client");
    assert.equal(sock.alpnProtocol, "http/1.1");
    const decrypted = new Reader(sock);
    const hello = received(r.layer, r.driver.client).length; // the ClientHello came as data, before TLS
    sock.write("ping");
    await until(() => received(r.layer, r.driver.client).slice(hello) === "ping", "the decrypted data");
    r.layer.cmd(new SendData(r.driver.client, bytes("pong")));
    await decrypted.waitFor("pong");
    assert.ok(!r.reader.text.includes("pong"), "what goes over the wire is encrypted");
    sock.end();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver TLS, client side: a client that rejects our certificate is an 'untrusted' tls error", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const { r, state } = await tlsFront(res, master);
    // no CA given: the client does not trust the leaf and says so in an alert
    await assert.rejects(tlsClient(r.client, { servername: "localhost" }));
    await until(() => state.reply !== null, "the StartTls reply");
    const err = state.reply as ProtocolError;
    assert.ok(err instanceof ProtocolError, `got ${JSON.stringify(err)}`);
    assert.equal(err.kind, "tls");
    assert.equal(err.detail, "untrusted");
    // the layer closes the client after a failed handshake: the run ends
    r.layer.cmd(new CloseConnection(r.driver.client));
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver TLS, client side: a client that never finishes the handshake is a timeout", async () => {
  const res = new Resources();
  try {
    const { leaf } = await testPki();
    const { master } = testMaster();
    let reply: TlsInfo | ProtocolError | null = null;
    const r = await runDriver(res, master, (e, l) => {
      if (!(e instanceof Start)) return;
      l.ask(new StartTls(l.context.client, { secureContext: leaf.secureContext, alpn: [], timeoutMs: 200 }))
        .then((x) => (reply = x));
    });
    r.client.write(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x80])); // the start of a record, then nothing
    await until(() => reply !== null, "the StartTls reply", 3000);
    assert.ok(reply! instanceof ProtocolError);
    assert.equal((reply as ProtocolError).kind, "timeout");
    await r.reader.waitClosed();
    r.layer.cmd(new CloseConnection(r.driver.client));
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

/** A node:tls origin with the test leaf that echoes "echo:<data>". */
async function tlsOrigin(res: Resources) {
  const { leaf } = await testPki();
  let handshakes = 0;
  const origin = await res.listen((s) => {
    handshakes++;
    s.on("data", (b: Uint8Array) => s.write(`echo:${text(b)}`));
  }, { tls: { key: leaf.keyPem, cert: leaf.chainPem, ALPNProtocols: ["http/1.1"] } });
  return {
    ...origin,
    get handshakes() {
      return handshakes;
    },
  };
}

/** A TLS server connection record as the server TLS layer prepares it. */
function tlsServer(port: number): Server {
  const s = new Server(["127.0.0.1", port]);
  s.tls = true;
  s.sni = "localhost";
  s.alpnOffers = ["http/1.1"];
  return s;
}

/** Open `server` and shake hands as the server TLS layer does; the fields it sets are set. */
async function openTls(r: DriverRun, server: Server, extra: { ca?: string[]; insecure?: boolean } = {}) {
  assert.equal(await within(r.layer.ask(new OpenConnection(server)), "the connection"), null);
  const reply = await within(
    r.layer.ask(
      new StartTls(server, { sni: server.sni, alpn: server.alpnOffers, timeoutMs: 5000, ...extra }),
    ),
    "the handshake",
  );
  if (!(reply instanceof ProtocolError)) {
    server.alpn = reply.alpn;
    server.timestampTlsSetup = Date.now() / 1000;
  }
  return reply;
}

Deno.test("driver TLS, server side: verified against the given CA; chain and names of the server's certificate; encrypted data both ways", async () => {
  const res = new Resources();
  try {
    const { ca } = await testPki();
    const { master } = testMaster();
    const origin = await tlsOrigin(res);
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = tlsServer(origin.port);
    const info = await openTls(r, server, { ca: [ca.certPem] });
    assert.ok(!(info instanceof ProtocolError), String(info));
    assert.equal(info.alpn, "http/1.1");
    assert.equal(info.tlsVersion, "TLSv1.3");
    assert.ok(info.certificateList.length >= 1);
    assert.match(
      info.certificateList[0],
      /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/,
    );
    assert.deepEqual(info.peerNames, { cn: "localhost", sans: ["localhost", "127.0.0.1"], o: "IO Test Org" });
    r.layer.cmd(new SendData(server, bytes("secret")));
    await until(() => received(r.layer, server) === "echo:secret", "the decrypted echo");
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver TLS, server side: an unverifiable certificate fails the handshake (server_disconnected), insecure accepts it", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const disconnected: Server[] = [];
    await master.addAddons({
      name: "rec",
      server_disconnected: (d: { server: Server }) => void disconnected.push(d.server),
    });
    const origin = await tlsOrigin(res);
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const bad = tlsServer(origin.port);
    const err = await openTls(r, bad);
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.kind, "tls");
    assert.match(
      err.message,
      new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${origin.port} failed: certificate verify failed: `),
    );
    await until(() => disconnected.includes(bad), "server_disconnected of the failed connection");
    // sending on it afterwards is ignored
    r.layer.cmd(new SendData(bad, bytes("x")));
    const ok = tlsServer(origin.port);
    const info = await openTls(r, ok, { insecure: true });
    assert.ok(!(info instanceof ProtocolError), String(info));
    r.layer.cmd(new SendData(ok, bytes("y")));
    await until(() => received(r.layer, ok) === "echo:y", "the echo over the unverified connection");
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver TLS, server side: a server that never answers the ClientHello is a timeout; StartTls on a closed connection fails at once", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const mute = await res.listen((s) => s.on("data", () => {}));
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = tlsServer(mute.port);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    const t0 = Date.now();
    const err = await within(
      r.layer.ask(new StartTls(server, { sni: "localhost", alpn: [], insecure: true, timeoutMs: 200 })),
      "the timeout",
    );
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.kind, "timeout");
    assert.ok(Date.now() - t0 < 2000);
    const never = await r.layer.ask(new StartTls(new Server(["127.0.0.1", 1]), { alpn: [], timeoutMs: 0 }));
    assert.ok(never instanceof ProtocolError);
    assert.equal(never.message, "connection closed before the TLS handshake");
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver TLS, server side: reading paused before the handshake stays paused after it until resumed", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const { leaf } = await testPki();
    const greeted: tls.TLSSocket[] = [];
    const origin = await res.listen((s) => {
      greeted.push(s as tls.TLSSocket);
      s.write("hello first");
    }, { tls: { key: leaf.keyPem, cert: leaf.chainPem } });
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = tlsServer(origin.port);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    r.layer.cmd(new SetReading(server, false));
    const info = await r.layer.ask(
      new StartTls(server, { sni: "localhost", alpn: [], insecure: true, timeoutMs: 5000 }),
    );
    assert.ok(!(info instanceof ProtocolError), String(info));
    await until(() => greeted.length === 1, "the origin's handshake");
    await sleep(200);
    assert.equal(received(r.layer, server), "", "no data while paused");
    r.layer.cmd(new SetReading(server, true));
    await until(() => received(r.layer, server) === "hello first", "the data once resumed");
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver TLS: an idle TLS connection parked by one client connection is taken by the next (no new TCP or TLS)", async () => {
  const res = new Resources();
  try {
    const { ca } = await testPki();
    const { master } = testMaster();
    const calls: string[] = [];
    await master.addAddons({
      name: "rec",
      server_connect: () => void calls.push("server_connect"),
      server_disconnected: () => void calls.push("server_disconnected"),
    });
    master.proxy.conns.setTlsConfig({ insecure: false, ca: [ca.certPem], alpn: ["http/1.1"], reuse: true });
    const origin = await tlsOrigin(res);
    const a = await runDriver(res, master);
    await a.layer.next(Start);
    const first = tlsServer(origin.port);
    assert.ok(!((await openTls(a, first, { ca: [ca.certPem] })) instanceof ProtocolError));
    a.layer.cmd(new SendData(first, bytes("one")));
    await until(() => received(a.layer, first) === "echo:one", "the first echo");
    a.layer.cmd(new CloseConnection(first, { reuse: true }));
    assert.equal(master.proxy.conns.idle.size, 1, "parked");
    assert.ok(master.proxy.conns.hasIdleTls("127.0.0.1", origin.port));
    a.client.destroy();
    await within(a.done, "the first run to end");
    assert.deepEqual(calls, ["server_connect"], "parked, not disconnected");

    const b = await runDriver(res, master);
    await b.layer.next(Start);
    const second = tlsServer(origin.port);
    const open = new OpenConnection(second);
    b.layer.cmd(open);
    assert.ok(open.done, "an idle connection is handed out at once");
    assert.equal(open.reply, null);
    assert.equal(second.id, first.id, "the connection record is adopted");
    assert.equal(second.alpn, "http/1.1");
    assert.equal(second.timestampTlsSetup, first.timestampTlsSetup);
    assert.ok(second.connected);
    assert.equal(master.proxy.conns.idle.size, 0);
    b.layer.cmd(new SendData(second, bytes("two")));
    await until(() => received(b.layer, second) === "echo:two", "the echo over the reused connection");
    assert.equal(origin.accepted.length, 1, "one TCP connection in all");
    assert.equal(origin.handshakes, 1, "one handshake in all");
    assert.deepEqual(calls, ["server_connect"], "no server_connect for a reused connection");
    b.client.destroy();
    await within(b.done, "the second run to end");
    await until(() => calls.includes("server_disconnected"), "server_disconnected once it is really closed");
  } finally {
    await res.close();
  }
});

Deno.test("driver TLS: a parked connection the server closes leaves the pool and fires server_disconnected", async () => {
  const res = new Resources();
  try {
    const { ca } = await testPki();
    const { master } = testMaster();
    const disconnected: string[] = [];
    await master.addAddons({
      name: "rec",
      server_disconnected: (d: { client: { toString(): string } }) =>
        void disconnected.push(String(d.client)),
    });
    master.proxy.conns.setTlsConfig({ insecure: false, ca: [ca.certPem], alpn: ["http/1.1"], reuse: true });
    const origin = await tlsOrigin(res);
    const a = await runDriver(res, master);
    await a.layer.next(Start);
    const server = tlsServer(origin.port);
    assert.ok(!((await openTls(a, server, { ca: [ca.certPem] })) instanceof ProtocolError));
    await until(() => origin.accepted.length === 1, "the origin's TLS socket");
    a.layer.cmd(new CloseConnection(server, { reuse: true }));
    assert.equal(master.proxy.conns.idle.size, 1);
    (origin.accepted[0] as net.Socket).end();
    await until(() => master.proxy.conns.idle.size === 0, "the pool to drop it");
    await until(() => disconnected.length === 1, "server_disconnected");
    assert.equal(disconnected[0], String(a.driver.client), "for the client it last served");
    assert.ok(server.timestampEnd !== null);
    a.client.destroy();
    await within(a.done, "the run to end");
    assert.equal(a.layer.seen(ConnectionClosed).filter((e) => e.conn === server).length, 0);
  } finally {
    await res.close();
  }
});
