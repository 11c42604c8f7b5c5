import assert from "node:assert/strict";
import {
  ConnRefs,
  type ConnSync,
  ConnTable,
  type FlowChanges,
  flowMessageText,
  type PackedFlow,
} from "../../../../lib/addons/script/wire.ts";
import {
  applyTcpChanges,
  packTcpFlow,
  tcpFlowDiff,
  unpackTcpFlow,
} from "../../../../lib/addons/script/tcpwire.ts";
import { RingReader, RingWriter } from "../../../../lib/addons/script/ring.ts";
import { TCPMessage, ttcpflow } from "../../../../testing.ts";
import type { TCPFlow } from "../../../../lib/flow/tcp.ts";

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

/** Pack `f` for `event`, cross a MessageChannel, unpack in the "worker". */
async function cross(f: TCPFlow, event: string, refs = new ConnRefs(), table = new ConnTable()) {
  const sync: ConnSync = {};
  const transfer: Transferable[] = [];
  const packed = packTcpFlow(f, event, refs, sync, transfer);
  refs.flushDrops(sync);
  const msg = await roundTrip({ ...packed.packed, ...sync }, transfer);
  table.sync(msg);
  return { ...unpackTcpFlow(msg as PackedFlow, table), packed, refs, table };
}

/** Changes as the proxy receives them: through a MessageChannel. */
async function changesBack(c: FlowChanges | null, transfer: ArrayBuffer[]): Promise<FlowChanges | null> {
  return c ? await roundTrip(c, transfer) : null;
}

/** A live flow whose injections are recorded, with three messages. */
function liveFlow() {
  const f = ttcpflow();
  f.messages.push(new TCPMessage(true, "third"));
  const injected: TCPMessage[] = [];
  f.setInjector((m) => void injected.push(m));
  return { f, injected };
}

Deno.test("tcp wire: tcp_message sends only the newest message, tcp_end and tcp_error all of them", async () => {
  const { f } = liveFlow();
  f.metadata.k = 1;
  const m = await cross(f, "tcp_message");
  assert.equal(m.flow.type, "tcp");
  assert.equal(m.flow.id, f.id);
  assert.deepEqual(m.flow.messages.map((x) => [x.fromClient, x.text]), [[true, "third"]]);
  assert.deepEqual(m.flow.metadata, { k: 1 });
  assert.equal(m.flow.clientConn.peername?.[0], f.clientConn.peername?.[0]);
  assert.equal(m.packed.first, 2);
  for (const event of ["tcp_end", "tcp_error"]) {
    const e = await cross(f, event);
    assert.deepEqual(e.flow.messages.map((x) => x.text), ["hello", "it's me", "third"], event);
    assert.deepEqual(e.flow.messages.map((x) => x.timestamp), f.messages.map((x) => x.timestamp));
    assert.equal(e.packed.first, 0);
  }
  const empty = ttcpflow({ messages: false });
  const s = await cross(empty, "tcp_start");
  assert.deepEqual(s.flow.messages, []);
  // the proxy's buffers are copied, never detached
  assert.equal(f.messages[0].text, "hello");
});

Deno.test("tcp wire: a changed, emptied or in-place edited content and injections come back and apply", async () => {
  const { f, injected } = liveFlow();
  const refs = new ConnRefs();
  const m = await cross(f, "tcp_end", refs);
  m.flow.messages[0].text = "HELLO";
  m.flow.messages[1].content = new Uint8Array(0);
  m.flow.messages[2].content[0] = "T".charCodeAt(0);
  assert.equal(m.flow.inject(true, "to the client"), true);
  m.flow.inject(false, new Uint8Array([1, 2]));
  m.flow.marked = ":default:";
  const transfer: ArrayBuffer[] = [];
  const c = await changesBack(tcpFlowDiff(m.flow, m.snapshot, transfer), transfer);
  assert.ok(c);
  assert.equal(m.flow.inject(true, "after the hook"), false, "no injections once the diff is taken");
  applyTcpChanges(f, c, m.packed.metadata, refs, m.packed.first);
  assert.deepEqual(f.messages.map((x) => x.text), ["HELLO", "", "Third"]);
  assert.deepEqual(injected.map((x) => [x.fromClient, x.text, x.injected]), [
    [false, "to the client", true],
    [true, "\x01\x02", true],
  ]);
  assert.equal(f.marked, ":default:");
});

Deno.test("tcp wire: nothing changed, no changes; a kill comes back as a kill", async () => {
  const { f } = liveFlow();
  const m = await cross(f, "tcp_message");
  assert.equal(tcpFlowDiff(m.flow, m.snapshot, []), null);
  const k = await cross(f, "tcp_message");
  k.flow.kill();
  const c = tcpFlowDiff(k.flow, k.snapshot, [])!;
  applyTcpChanges(f, c, k.packed.metadata, new ConnRefs(), k.packed.first);
  assert.equal(f.killed, true);
});

Deno.test("tcp wire: a flow that is not live or whose connection closed takes no injections in the worker", async () => {
  const closed = ttcpflow();
  assert.equal((await cross(closed, "tcp_message")).flow.inject(true, "x"), false);
  const { f } = liveFlow();
  f.live = false;
  assert.equal((await cross(f, "tcp_message")).flow.inject(true, "x"), false);
});

Deno.test("tcp wire: the proxy refuses what the API could not have produced, changing nothing", () => {
  const bad: [string, unknown][] = [
    ["an index before the messages sent", { tcp: { messages: [[1, new ArrayBuffer(1)]] } }],
    ["an index past the end", { tcp: { messages: [[3, new ArrayBuffer(1)]] } }],
    ["a fractional index", { tcp: { messages: [[2.5, new ArrayBuffer(1)]] } }],
    ["a content that is not a buffer", { tcp: { messages: [[2, "x"]] } }],
    ["an injection without a buffer", { tcp: { inject: [[true, "x"]] } }],
    ["an injection with a direction that is not a boolean", {
      tcp: { inject: [["yes", new ArrayBuffer(1)]] },
    }],
    ["messages that are not a list", { tcp: { messages: { 0: 1 } } }],
    ["a marker that is not a string", { marked: 7, tcp: { inject: [[true, new ArrayBuffer(1)]] } }],
    ["an error without a message", { error: { timestamp: 1 } }],
  ];
  for (const [what, c] of bad) {
    const { f, injected } = liveFlow();
    const before = f.messages.map((m) => m.text);
    assert.throws(
      () => applyTcpChanges(f, c as FlowChanges, {}, new ConnRefs(), 2),
      TypeError,
      what,
    );
    assert.deepEqual(f.messages.map((m) => m.text), before, what);
    assert.deepEqual(injected, [], what);
    assert.equal(f.marked, "", what);
    assert.equal(f.error, null, what);
  }
});

Deno.test("tcp wire: through the ring as JSON text, contents in the body slot", async () => {
  const { f } = liveFlow();
  const refs = new ConnRefs();
  const table = new ConnTable();
  // the first message syncs the connection records (by postMessage); the next can take the ring
  const first = await cross(f, "tcp_message", refs, table);
  assert.ok(first);
  const sync: ConnSync = {};
  const p = packTcpFlow(f, "tcp_end", refs, sync, [], false);
  refs.flushDrops(sync);
  const text = flowMessageText(7, "tcp_end", p.packed, sync);
  assert.ok(text !== null);
  const w = new RingWriter();
  assert.ok(w.post(1, text, p.reqBody, p.respBody));
  const r = new RingReader(w.buffer);
  const got = r.read();
  const msg = JSON.parse(got.text);
  msg.bytes = got.body;
  const { flow } = unpackTcpFlow(msg, table);
  assert.deepEqual(flow.messages.map((m) => m.text), ["hello", "it's me", "third"]);
});
