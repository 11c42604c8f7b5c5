/** The idle pool over real loopback connections: park/take, limits, servers that close or talk, expiry. */
import assert from "node:assert/strict";
import type net from "node:net";
import { Server } from "../../../../lib/flow/connection.ts";
import { Transport } from "../../../../lib/proxy/conns/transport.ts";
import {
  IDLE_PER_KEY,
  IDLE_TIMEOUT_MS,
  type IdleConnection,
  IdlePool,
} from "../../../../lib/proxy/conns/idle_pool.ts";
import { Reader, Resources, sleep, until } from "../io_utils.ts";

/** `n` open connections to one origin as idle-pool entries under `key`, with the origin's sockets. */
async function conns(res: Resources, n: number, key = "k") {
  const out: { c: IdleConnection; peer: net.Socket }[] = [];
  for (let i = 0; i < n; i++) {
    const { ours, peer } = await res.pair();
    const server = new Server(["127.0.0.1", ours.remotePort!]);
    out.push({ c: { key, server, transport: new Transport(ours), parkedAt: 0 }, peer });
  }
  return out;
}

Deno.test("IdlePool: park and take (most recent first), per-host counts, nothing under other keys", async () => {
  const res = new Resources();
  const closed: IdleConnection[] = [];
  const pool = new IdlePool((c) => closed.push(c));
  try {
    const [a, b] = await conns(res, 2);
    assert.ok(pool.park(a.c));
    assert.ok(pool.park(b.c));
    assert.equal(pool.size, 2);
    assert.ok(a.c.parkedAt > 0);
    assert.ok(pool.hasIdle("127.0.0.1", a.c.server.address![1]));
    assert.ok(!pool.hasIdle("127.0.0.1", 1));
    assert.equal(pool.take("other"), null);
    assert.equal(pool.take("k"), b.c);
    assert.equal(pool.take("k"), a.c);
    assert.equal(pool.take("k"), null);
    assert.equal(pool.size, 0);
    assert.deepEqual(closed, [], "taken connections are not closed");
    assert.ok(!a.c.transport.isClosed);
  } finally {
    pool.closeAll(true);
    await res.close();
  }
});

Deno.test("IdlePool: a server that talks on or closes an idle connection gets it closed and forgotten", async () => {
  const res = new Resources();
  const closed: IdleConnection[] = [];
  const pool = new IdlePool((c) => closed.push(c));
  try {
    const [talker, closer] = await conns(res, 2);
    pool.park(talker.c);
    pool.park(closer.c);
    const talkerReader = new Reader(talker.peer);
    talker.peer.write("unsolicited");
    closer.peer.end();
    await until(() => closed.length === 2, "both to be closed");
    assert.equal(pool.size, 0);
    assert.deepEqual(new Set(closed), new Set([talker.c, closer.c]));
    await talkerReader.waitClosed();
    assert.equal(pool.take("k"), null);
  } finally {
    pool.closeAll(true);
    await res.close();
  }
});

Deno.test("IdlePool: refuses ended or closed connections and more than IDLE_PER_KEY per key", async () => {
  const res = new Resources();
  const pool = new IdlePool(() => {});
  try {
    const many = await conns(res, IDLE_PER_KEY + 1);
    for (const { c } of many.slice(0, IDLE_PER_KEY)) assert.ok(pool.park(c));
    assert.ok(!pool.park(many[IDLE_PER_KEY].c), "one too many for the key");
    const [other] = await conns(res, 1, "k2");
    assert.ok(pool.park(other.c), "another key has room");
    const [ended, destroyed] = await conns(res, 2, "k3");
    ended.peer.end();
    await until(() => ended.c.transport.ended, "the end to arrive");
    assert.ok(!pool.park(ended.c));
    destroyed.c.transport.destroy();
    assert.ok(!pool.park(destroyed.c));
    assert.equal(pool.size, IDLE_PER_KEY + 1);
  } finally {
    pool.closeAll(true);
    await res.close();
  }
});

Deno.test("IdlePool.closeAll: closes everything; final refuses later parks until reopen", async () => {
  const res = new Resources();
  const closed: IdleConnection[] = [];
  const pool = new IdlePool((c) => closed.push(c));
  try {
    const [a, b, c] = await conns(res, 3);
    pool.park(a.c);
    pool.park(b.c);
    const readers = [new Reader(a.peer), new Reader(b.peer)];
    pool.closeAll();
    assert.equal(pool.size, 0);
    assert.equal(closed.length, 2);
    for (const r of readers) await r.waitClosed();
    assert.ok(pool.park(c.c), "not final: parking goes on");
    pool.closeAll(true);
    const [d] = await conns(res, 1);
    assert.ok(!pool.park(d.c), "refused after the final closeAll");
    pool.reopen();
    assert.ok(pool.park(d.c));
  } finally {
    pool.closeAll(true);
    await res.close();
  }
});

Deno.test("IdlePool: connections idle longer than IDLE_TIMEOUT_MS are swept (about every second)", async () => {
  const res = new Resources();
  const closed: IdleConnection[] = [];
  const pool = new IdlePool((c) => closed.push(c));
  try {
    const [old, fresh] = await conns(res, 2);
    pool.park(old.c);
    pool.park(fresh.c);
    old.c.parkedAt = Date.now() - IDLE_TIMEOUT_MS - 1; // parked long ago
    await until(() => closed.length === 1, "the sweep", 3000);
    assert.equal(closed[0], old.c);
    assert.equal(pool.size, 1);
    assert.equal(pool.take("k"), fresh.c);
    // with the pool empty the sweep timer stops by itself (the test's op sanitizer checks nothing leaks)
    await sleep(1100);
  } finally {
    pool.closeAll(true);
    await res.close();
  }
});
