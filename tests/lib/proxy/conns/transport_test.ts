import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { Transport, WRITE_BACKLOG } from "../../../../lib/proxy/conns/transport.ts";
import { clientTls } from "../../../../lib/proxy/conns/connect.ts";
import { bytes, Reader, Resources, sleep, testPki, text, until, within } from "../io_utils.ts";

/** A connected pair of node:net sockets on loopback: [ours, peer]. */
async function socketPair(
  allowHalfOpen = false,
): Promise<{ ours: net.Socket; peer: net.Socket; close(): Promise<void> }> {
  let peer!: net.Socket;
  const server = net.createServer({ allowHalfOpen });
  const accepted = new Promise<void>((resolve) => {
    server.once("connection", (s: net.Socket) => {
      peer = s;
      resolve();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const ours = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  await Promise.all([accepted, new Promise((r) => ours.once("connect", r))]);
  return {
    ours,
    peer,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

Deno.test("Transport.close: flushes, half-closes, and lets go of the socket as soon as the peer closes", async () => {
  const p = await socketPair();
  const stream = new Transport(p.ours);
  let destroyed = 0;
  const destroy = stream.destroy.bind(stream);
  stream.destroy = () => {
    destroyed++;
    destroy();
  };
  const got: Uint8Array[] = [];
  p.peer.on("data", (b: Uint8Array) => got.push(b));
  p.peer.on("end", () => p.peer.end()); // a polite peer: closes its side on our FIN
  stream.write(new TextEncoder().encode("bye"));
  stream.close(100);
  await stream.closedPromise;
  assert.equal(new TextDecoder().decode(got[0]), "bye", "pending data went out before the FIN");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(destroyed, 0, "the grace timer was dropped when the socket closed");
  await p.close();
});

Deno.test("Transport.close: a peer that never closes is cut off after the grace period", async () => {
  const p = await socketPair(true);
  const stream = new Transport(p.ours);
  p.peer.on("data", () => {});
  p.peer.on("end", () => {}); // ignores our FIN, keeps its side open
  const t0 = performance.now();
  stream.close(100);
  await stream.closedPromise;
  const waited = performance.now() - t0;
  assert.ok(waited >= 90 && waited < 2000, `destroyed after ${waited.toFixed(0)} ms`);
  p.peer.destroy();
  await p.close();
});

/** A listener recording what a transport reports. */
function recorder() {
  const r = {
    data: [] as string[],
    ends: [] as (Error | null)[],
    closed: 0,
    drains: 0,
    listener: {
      data: (b: Uint8Array) => void r.data.push(text(b)),
      end: (e: Error | null) => void r.ends.push(e),
      closed: () => void r.closed++,
      drain: () => void r.drains++,
    },
  };
  return r;
}

Deno.test("Transport: reports data, one end and one close; ended and isClosed follow", async () => {
  const res = new Resources();
  try {
    const { ours, peer } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    assert.equal(t.socket, t.tcp);
    peer.write("abc");
    await until(() => r.data.join("") === "abc", "the data");
    assert.ok(!t.ended && !t.isClosed);
    peer.end();
    await within(t.closedPromise, "the close");
    assert.deepEqual(r.ends, [null]);
    assert.equal(r.closed, 1);
    assert.ok(t.ended && t.isClosed);
    assert.equal(t.write(bytes("after close")), true, "writing to a closed socket is a no-op");
  } finally {
    await res.close();
  }
});

Deno.test("Transport: a socket error is reported as the end, with the error", async () => {
  const res = new Resources();
  try {
    const { ours } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    ours.destroy(new Error("broken pipe, say"));
    await within(t.closedPromise, "the close");
    assert.equal(r.ends.length, 1);
    assert.equal(r.ends[0]?.message, "broken pipe, say");
  } finally {
    await res.close();
  }
});

Deno.test("Transport: pauses are counted (each needs a resume); a resume without a pause does nothing", async () => {
  const res = new Resources();
  try {
    const { ours, peer } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    t.resume();
    t.pause();
    t.pause();
    peer.write("waiting");
    await sleep(100);
    t.resume();
    await sleep(100);
    assert.deepEqual(r.data, [], "still paused after one of two resumes");
    t.resume();
    await until(() => r.data.join("") === "waiting", "the data after the last resume");
  } finally {
    await res.close();
  }
});

Deno.test("Transport.write: false when the buffer is full, then one drain once it emptied", async () => {
  const res = new Resources();
  try {
    const { ours, peer } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    peer.pause();
    assert.equal(t.write(bytes("small")), true);
    const big = new Uint8Array(32 * 1024 * 1024);
    assert.equal(t.write(big), false);
    assert.ok(t.writeBuffered > 0);
    await sleep(100);
    assert.equal(r.drains, 0, "no drain while the peer does not read");
    let n = 0;
    peer.on("data", (b: Uint8Array) => (n += b.length));
    peer.resume();
    await until(() => r.drains === 1, "the drain", 20000);
    await until(() => n === big.length + 5, "everything to arrive", 20000);
    assert.equal(t.writeBuffered, 0);
  } finally {
    await res.close();
  }
});

Deno.test("Transport.write: up to WRITE_BACKLOG unsent bytes is no backpressure; past it, false and one drain", async () => {
  const res = new Resources();
  try {
    const { ours, peer } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    peer.pause();
    // 64 KiB chunks (what a socket read gives) to a peer that reads nothing: node's own 16 KiB limit would
    // say "full" at the first one; the transport says so only once WRITE_BACKLOG bytes wait unsent
    const chunk = new Uint8Array(64 * 1024);
    let written = 0;
    let ok = true;
    let pastNodeLimit = false;
    for (let i = 0; i < 1024 && ok; i++) {
      ok = t.write(chunk);
      written += chunk.length;
      if (ok) assert.ok(t.writeBuffered < WRITE_BACKLOG, `true with ${t.writeBuffered} bytes unsent`);
      if (ok && t.writeBuffered > 16 * 1024) pastNodeLimit = true;
    }
    assert.equal(ok, false, "a backlog is reported in the end");
    assert.ok(t.writeBuffered >= WRITE_BACKLOG);
    assert.ok(pastNodeLimit, "writes went on past node's 16 KiB without a wait");
    let n = 0;
    peer.on("data", (b: Uint8Array) => (n += b.length));
    peer.resume();
    await until(() => r.drains === 1, "the drain", 20000);
    await until(() => n === written, "everything to arrive", 20000);
    await sleep(50);
    assert.equal(r.drains, 1, "one drain");
  } finally {
    await res.close();
  }
});

Deno.test("Transport.end: half-close; the peer's data still comes in", async () => {
  const res = new Resources();
  try {
    const { ours, peer } = await res.pair({ allowHalfOpen: true });
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    const peerReader = new Reader(peer);
    t.end();
    await peerReader.waitEnd();
    peer.write("still talking");
    await until(() => r.data.join("") === "still talking", "data after our FIN");
    assert.ok(!t.isClosed);
    peer.end();
    await within(t.closedPromise, "the close");
  } finally {
    await res.close();
  }
});

Deno.test("Transport.upgraded: reports the TLS socket's data; a pause from before the upgrade holds, and pausing stops the TCP socket too", async () => {
  const res = new Resources();
  try {
    const { ca, leaf } = await testPki();
    const { ours, peer } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    // the peer is a TLS server; we are its TLS client over the detached TCP socket
    const raw = t.detachForTls(null);
    assert.equal(raw, ours);
    const tlsPeer = res.socket(
      new tls.TLSSocket(peer, { isServer: true, key: leaf.keyPem, cert: leaf.chainPem }),
    );
    const sock = await within(
      clientTls(raw, {
        host: "127.0.0.1",
        sni: "localhost",
        alpn: [],
        insecure: false,
        ca: [ca.certPem],
        timeoutMs: 5000,
      }),
      "the handshake",
    );
    t.pause();
    t.upgraded(sock);
    assert.equal(t.socket, sock);
    assert.notEqual(t.tcp, t.socket);
    tlsPeer.write("over tls");
    await sleep(150);
    assert.deepEqual(r.data, [], "paused before the upgrade: still paused");
    t.resume();
    await until(() => r.data.join("") === "over tls", "the decrypted data");
    // pausing a TLS transport also stops reading the TCP socket under it
    t.pause();
    tlsPeer.write(" again");
    await sleep(150);
    assert.equal(r.data.join(""), "over tls");
    t.resume();
    await until(() => r.data.join("") === "over tls again", "the data after resuming");
    t.destroy();
    await within(t.closedPromise, "the close");
    assert.ok(t.tcp.destroyed && sock.destroyed);
  } finally {
    await res.close();
  }
});

Deno.test("Transport.detachForTls: bytes given back are read before the rest", async () => {
  const res = new Resources();
  try {
    const { ours, peer } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    const raw = t.detachForTls(bytes("given back;"));
    const got: string[] = [];
    raw.on("data", (b: Uint8Array) => got.push(text(b)));
    raw.resume();
    peer.write("then this");
    await until(() => got.join("") === "given back;then this", "the bytes in order");
    assert.deepEqual(r.data, [], "the transport reports nothing after detaching");
  } finally {
    await res.close();
  }
});

Deno.test("Transport.release: no more reports, reading resumed, errors swallowed, the close still noticed", async () => {
  const res = new Resources();
  try {
    const { ours, peer } = await res.pair();
    const t = new Transport(ours);
    const r = recorder();
    t.listen(r.listener);
    t.pause();
    const s = t.release();
    assert.equal(s, ours);
    const got: string[] = [];
    s.on("data", (b: Uint8Array) => got.push(text(b)));
    peer.write("raw");
    await until(() => got.join("") === "raw", "the data on the released socket");
    assert.deepEqual(r.data, []);
    s.destroy(new Error("ignored"));
    await within(t.closedPromise, "the close");
    assert.deepEqual(r.ends, [], "nobody listens any more");
  } finally {
    await res.close();
  }
});
