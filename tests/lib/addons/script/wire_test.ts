import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  applyFlowChanges,
  attachBodies,
  ConnRefs,
  type ConnSync,
  ConnTable,
  discardFlowChanges,
  flowDiff,
  flowMessageText,
  type PackedFlow,
  packFlow,
  TRANSFER_MIN,
  unpackFlow,
} from "../../../../lib/addons/script/wire.ts";
import { Outbox, unpackEnvelope } from "../../../../lib/addons/script/outbox.ts";
import { RingReader, RingWriter } from "../../../../lib/addons/script/ring.ts";
import type { Envelope } from "../../../../lib/addons/script/protocol.ts";
import { Response, tflow } from "../../../../testing.ts";
import type { HTTPFlow } from "../../../../lib/flow/flow.ts";

/** Send through a real MessageChannel, as to a worker. */
function roundTrip<T>(value: T, transfer: Transferable[]): Promise<T> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port2.onmessage = (e) => {
      port1.close();
      port2.close();
      resolve(e.data);
    };
    port1.postMessage(value, transfer);
  });
}

/** The two ends of the wire: the proxy's records of what the worker has, and the worker's table. */
function ends() {
  return { refs: new ConnRefs(), table: new ConnTable() };
}

/** Pack `f` for `event`, cross a MessageChannel, unpack in the "worker". */
async function cross(f: HTTPFlow, event: string, e = ends()) {
  const sync: ConnSync = {};
  const transfer: Transferable[] = [];
  const { packed, metadata } = packFlow(f, event, e.refs, sync, transfer);
  e.refs.flushDrops(sync);
  const msg = await roundTrip({ ...packed, ...sync }, transfer);
  e.table.sync(msg);
  return { ...unpackFlow(msg as PackedFlow, e.table), metadata, sync, transfer, e };
}

/** Pack `f` for `event` as the proxy does for the ring: the message's JSON text, or null and a buffer. */
function packForRing(f: HTTPFlow, event: string, e: ReturnType<typeof ends>) {
  const sync: ConnSync = {};
  const p = packFlow(f, event, e.refs, sync, [], false);
  e.refs.flushDrops(sync);
  return { p, sync, text: flowMessageText(1, event, p.packed, sync) };
}

Deno.test("wire: headers hooks carry no bodies; body hooks do, copied (never detaching the proxy's)", async () => {
  const f = tflow({ resp: true });
  // a node Buffer view into a pool, as node:net delivers: slice() would share the pool
  const pool = Buffer.alloc(64, 7);
  f.response!.rawContent = pool.subarray(8, 16);
  const hdr = await cross(f, "responseheaders");
  assert.equal(hdr.transfer.length, 0);
  assert.equal(hdr.flow.request.rawContent, null, "no request body in responseheaders");
  assert.equal(hdr.flow.response!.rawContent, null, "no response body in responseheaders");
  const w = await cross(f, "response");
  assert.equal(w.transfer.length, 0, "small bodies are cloned, not transferred");
  assert.equal(f.response!.rawContent!.length, 8, "the proxy's body is intact");
  assert.equal(pool.buffer.byteLength, 64, "the pool is not detached");
  assert.deepEqual([...w.flow.response!.rawContent!], [7, 7, 7, 7, 7, 7, 7, 7]);
  assert.equal(
    new TextDecoder().decode(w.flow.request.rawContent!),
    new TextDecoder().decode(f.request.rawContent!),
  );
  // large bodies: both in one transferred buffer, a copy
  const big = Buffer.alloc(3 * TRANSFER_MIN, 9);
  f.response!.rawContent = big.subarray(TRANSFER_MIN, 2 * TRANSFER_MIN);
  const large = await cross(f, "response");
  assert.equal(large.transfer.length, 1);
  assert.equal(big.buffer.byteLength, 3 * TRANSFER_MIN, "the proxy's buffer is not detached");
  assert.equal(large.flow.response!.rawContent!.length, TRANSFER_MIN);
  assert.equal(large.flow.response!.rawContent![0], 9);
  // a large body coming back is transferred; a small one cloned
  large.flow.response!.rawContent = new Uint8Array(2 * TRANSFER_MIN);
  large.flow.request.rawContent = new Uint8Array(3);
  const back: ArrayBuffer[] = [];
  const ch = flowDiff(large.flow, large.snapshot, back)!;
  assert.deepEqual(back, [ch.response!.body]);
  assert.equal(ch.request!.body!.byteLength, 3);
  // one buffer assigned to both: the proxy gets two
  large.flow.response!.rawContent = large.flow.request.rawContent;
  const both = flowDiff(large.flow, large.snapshot, [])!;
  assert.notEqual(both.request!.body, both.response!.body);
  // empty bodies cost no buffer, and stay empty (not null)
  f.request.rawContent = new Uint8Array(0);
  f.response!.rawContent = new Uint8Array(0);
  const empty = await cross(f, "response");
  assert.equal(empty.transfer.length, 0);
  assert.equal(empty.flow.request.rawContent!.length, 0);
  assert.equal(empty.flow.response!.rawContent!.length, 0);
  // a streamed (null) body stays null
  f.response!.rawContent = null;
  assert.equal((await cross(f, "response")).flow.response!.rawContent, null);
});

Deno.test("wire: a flow crosses the ring as JSON text and bodies when it needs no structured clone", () => {
  const e = ends();
  const ring = new RingWriter(4096);
  const reader = new RingReader(ring.buffer);
  const f = tflow({ resp: true });
  f.request.rawContent = new TextEncoder().encode("request body");
  f.response!.rawContent = Buffer.alloc(1000, 5).subarray(100, 600);
  // the first flow of a connection carries its records: structured clone, bodies in a buffer
  const first = packForRing(f, "response", e);
  assert.equal(first.text, null, "new connection records need a clone");
  attachBodies(first.p, []);
  assert.equal(first.p.packed.buf!.byteLength, 512);
  e.table.sync(first.sync);
  // later ones: text + bodies through the ring
  const { p, text } = packForRing(f, "response", e);
  assert.ok(text);
  assert.equal(p.packed.buf, undefined, "no buffer made");
  assert.ok(ring.post(1, text, p.reqBody, p.respBody));
  assert.equal(reader.nextSeq(), 1);
  const { text: got, body } = reader.read();
  assert.equal(ring.used, 0, "copied out and released on arrival");
  const m = JSON.parse(got);
  assert.deepEqual([m.t, m.id, m.event, m.json], ["flow", 1, "response", undefined]);
  m.bytes = body;
  const w = unpackFlow(m, e.table);
  assert.equal(w.flow.id, f.id);
  assert.deepEqual(w.flow.request.headers.fields, f.request.headers.fields);
  assert.equal(new TextDecoder().decode(w.flow.request.rawContent!), "request body");
  assert.equal(w.flow.response!.rawContent!.length, 500);
  assert.ok(w.flow.response!.rawContent!.every((b) => b === 5));
  // the worker's copy is its own: the ring's bytes change, the script's do not
  new Uint8Array(ring.buffer).fill(0, 16); // the data, after the 16-byte header
  assert.equal(w.flow.response!.rawContent![0], 5);
  // an unchanged body does not come back; a changed one does
  assert.equal(flowDiff(w.flow, w.snapshot, []), null);
  w.flow.response!.rawContent = w.flow.response!.rawContent!.slice();
  w.flow.response!.rawContent[0] = 6;
  assert.equal(new Uint8Array(flowDiff(w.flow, w.snapshot, [])!.response!.body!)[0], 6);
  // headers hooks carry no bodies
  const hdr = packForRing(f, "responseheaders", e);
  assert.deepEqual([hdr.p.reqBody, hdr.p.respBody], [null, null]);
  // metadata needs a clone too
  f.metadata.k = new Map([[1, 2]]);
  assert.equal(packForRing(f, "response", e).text, null);
});

Deno.test("wire: only changes come back, and apply to the live flow", async () => {
  const f = tflow({ resp: true });
  f.metadata.keep = 1;
  f.metadata.fn = () => 1; // not cloneable: stays on the proxy side
  const e = ends();
  const untouched = await cross(f, "response", e);
  assert.equal(untouched.flow.metadata.fn, undefined);
  assert.equal(flowDiff(untouched.flow, untouched.snapshot, []), null, "no change, nothing to send");

  const { flow, snapshot, metadata } = await cross(f, "response", e);
  flow.response!.headers.set("newheader", "foo");
  flow.response!.text = "changed";
  flow.metadata.added = { a: [1, 2] };
  flow.marked = ":default:";
  const back: ArrayBuffer[] = [];
  const c = flowDiff(flow, snapshot, back)!;
  assert.equal(c.request, undefined, "request unchanged");
  assert.ok(c.response?.headers && c.response.body);
  assert.equal(c.response.statusCode, undefined);
  assert.equal(c.client, undefined, "connections unchanged");
  assert.equal(back.length, 0, "a small body is cloned");
  applyFlowChanges(f, await roundTrip(c, back), metadata, e.refs);
  assert.equal(f.response!.headers.get("newheader"), "foo");
  assert.equal(f.response!.text, "changed");
  assert.equal(f.response!.headers.get("content-length"), "7");
  assert.deepEqual(f.metadata.added, { a: [1, 2] });
  assert.equal(typeof f.metadata.fn, "function");
  assert.equal(f.metadata.keep, 1);
  assert.equal(f.marked, ":default:");
});

Deno.test("wire: Response.make in request, kill, request edits", async () => {
  const f = tflow();
  const e = ends();
  const a = await cross(f, "request", e);
  a.flow.response = Response.make(403, "no", { "x-why": "demo" });
  a.flow.request.path = "/changed";
  a.flow.request.headers.set("x-req", "1");
  const back: ArrayBuffer[] = [];
  applyFlowChanges(f, await roundTrip(flowDiff(a.flow, a.snapshot, back)!, back), a.metadata, e.refs);
  assert.equal(f.response!.statusCode, 403);
  assert.equal(f.response!.text, "no");
  assert.equal(f.response!.headers.get("x-why"), "demo");
  assert.equal(f.request.path, "/changed");
  assert.equal(f.request.headers.get("x-req"), "1");

  const g = tflow();
  const b = await cross(g, "request", e);
  b.flow.kill();
  applyFlowChanges(g, flowDiff(b.flow, b.snapshot, [])!, b.metadata, e.refs);
  assert.ok(g.killed);
});

Deno.test("wire: connection records cross once, again only when they change, and are shared", async () => {
  const e = ends();
  const f = tflow({ resp: true });
  const g = tflow({ resp: true });
  g.clientConn = f.clientConn;
  g.serverConn = f.serverConn;
  const first = await cross(f, "response", e);
  assert.equal(first.sync.conns?.length, 2, "both records sent the first time");
  const second = await cross(g, "response", e);
  assert.equal(second.sync.conns, undefined, "known records are not sent again");
  assert.equal(second.flow.clientConn, first.flow.clientConn, "flows of one connection share the record");
  assert.deepEqual(second.flow.clientConn.peername, f.clientConn.peername);

  // a change on the proxy side (also in place) is sent again
  f.serverConn.peername = ["10.0.0.1", 8080];
  f.clientConn.alpnOffers.push("h2");
  const third = await cross(f, "response", e);
  assert.equal(third.sync.conns?.length, 2);
  assert.deepEqual(third.flow.serverConn.peername, ["10.0.0.1", 8080]);
  assert.deepEqual(third.flow.clientConn.alpnOffers, f.clientConn.alpnOffers);

  // a change by the script comes back once and is applied; the worker keeps it
  third.flow.clientConn.sni = "changed.example";
  third.flow.serverConn.alpnOffers.push("http/1.1"); // in place
  const c = flowDiff(third.flow, third.snapshot, [])!;
  assert.deepEqual(c.client, { sni: "changed.example" });
  assert.deepEqual(c.server, { alpnOffers: ["http/1.1"] });
  applyFlowChanges(f, await roundTrip(c, []), third.metadata, e.refs);
  assert.equal(f.clientConn.sni, "changed.example");
  assert.deepEqual(f.serverConn.alpnOffers, ["http/1.1"]);
  const fourth = await cross(f, "response", e);
  assert.equal(fourth.sync.conns, undefined, "applied changes are not echoed back");
  assert.equal(fourth.flow.clientConn.sni, "changed.example");

  // a hook that fails: its changes are undone in the worker too
  fourth.flow.clientConn.sni = "discarded";
  discardFlowChanges(fourth.snapshot);
  assert.equal(fourth.flow.clientConn.sni, "changed.example");
  assert.equal(flowDiff(fourth.flow, fourth.snapshot, []), null);
});

Deno.test("wire: the proxy forgets old records and tells the worker", async () => {
  const e = { refs: new ConnRefs(4), table: new ConnTable() };
  const f1 = tflow();
  const f2 = tflow();
  const f3 = tflow();
  assert.equal((await cross(f1, "request", e)).sync.drop, undefined);
  assert.equal((await cross(f2, "request", e)).sync.drop, undefined);
  const third = await cross(f3, "request", e);
  assert.deepEqual(third.sync.drop, [1, 2], "the oldest records, dropped with the message that evicts them");
  assert.equal(e.refs.size, 4);
  assert.equal(e.table.size, 4);
  assert.equal((await cross(f3, "request", e)).sync.conns, undefined, "recent records are still known");
  assert.equal((await cross(f1, "request", e)).sync.conns?.length, 2, "forgotten ones are sent again");
});

Deno.test("outbox: messages of one turn cross in one batch, in order; unsafe ones go alone", async () => {
  const sent: Envelope<{ n: number }>[] = [];
  const box = new Outbox<{ n: number }>((m) => sent.push(m), () => {});
  box.send({ n: 1 });
  box.send({ n: 2 });
  assert.equal(sent.length, 0, "nothing before the end of the turn");
  await Promise.resolve();
  assert.deepEqual(sent, [{ t: "batch", ms: [{ n: 1 }, { n: 2 }] }]);
  box.send({ n: 3 });
  box.send({ n: 4 }, [], false);
  assert.deepEqual(
    sent.slice(1),
    [{ n: 3 }, { n: 4 }],
    "queued ones first, then the unbatchable one, at once",
  );
  await Promise.resolve();
  assert.equal(sent.length, 3);

  // JSON texts of one turn cross as one string (a JSON array), runs of each form in order
  const mixed: Envelope<{ n: number }>[] = [];
  const box2 = new Outbox<{ n: number }>((m) => mixed.push(m), () => {});
  box2.sendText('{"n":1}');
  box2.sendText('{"n":2}');
  box2.send({ n: 3 });
  box2.sendText('{"n":4}');
  await Promise.resolve();
  assert.deepEqual(mixed, ['[{"n":1},{"n":2}]', { n: 3 }, '[{"n":4}]']);
  assert.deepEqual(mixed.flatMap((e) => unpackEnvelope(e as Envelope<{ t: string; n: number }>)), [
    { n: 1 },
    { n: 2 },
    { n: 3 },
    { n: 4 },
  ]);

  const failed: number[] = [];
  const bad = new Outbox<{ n: number }>(() => {
    throw new Error("DataCloneError");
  }, (m) => failed.push(m.n));
  bad.send({ n: 1 });
  bad.send({ n: 2 });
  await Promise.resolve();
  assert.deepEqual(failed, [1, 2]);
});
