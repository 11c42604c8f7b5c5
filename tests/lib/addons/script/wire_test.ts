import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { applyFlowChanges, flowDiff, flowIn, flowOut } from "../../../../lib/addons/script/wire.ts";
import { Response, tflow } from "../../../../testing.ts";

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

Deno.test("wire: headers hooks carry no bodies; body hooks do, copied (never detaching the proxy's)", async () => {
  const f = tflow({ resp: true });
  // a node Buffer view into a pool, as node:net delivers: slice() would share the pool
  const pool = Buffer.alloc(64, 7);
  f.response!.rawContent = pool.subarray(8, 16);
  const t: ArrayBuffer[] = [];
  const hdr = flowOut(f, "responseheaders", t);
  assert.equal(hdr.request.body, undefined);
  assert.equal(hdr.response!.body, undefined);
  assert.equal(t.length, 0);
  const w = flowOut(f, "response", t);
  assert.equal(t.length, 2);
  await roundTrip(w, t);
  assert.equal(f.response!.rawContent!.length, 8, "the proxy's body is intact");
  assert.equal(pool.buffer.byteLength > 0, true);
});

Deno.test("wire: only changes come back, and apply to the live flow", async () => {
  const f = tflow({ resp: true });
  f.metadata.keep = 1;
  f.metadata.fn = () => 1; // not cloneable: stays on the proxy side
  const t: ArrayBuffer[] = [];
  const w = await roundTrip(flowOut(f, "response", t), t);
  const untouched = flowIn(w);
  assert.equal(flowDiff(untouched.flow, untouched.snapshot, []), null, "no change, nothing to send");

  const { flow, snapshot } = flowIn(w);
  flow.response!.headers.set("newheader", "foo");
  flow.response!.text = "changed";
  flow.metadata.added = { a: [1, 2] };
  flow.marked = ":default:";
  const back: ArrayBuffer[] = [];
  const c = flowDiff(flow, snapshot, back)!;
  assert.equal(c.request, undefined, "request unchanged");
  assert.ok(c.response?.headers && c.response.body);
  assert.equal(c.response.statusCode, undefined);
  assert.equal(back.length, 1);
  applyFlowChanges(f, await roundTrip(c, back), w.metadata);
  assert.equal(f.response!.headers.get("newheader"), "foo");
  assert.equal(f.response!.text, "changed");
  assert.equal(f.response!.headers.get("content-length"), "7");
  assert.deepEqual(f.metadata.added, { a: [1, 2] });
  assert.equal(typeof f.metadata.fn, "function");
  assert.equal(f.marked, ":default:");
});

Deno.test("wire: Response.make in request, kill, request edits", async () => {
  const f = tflow();
  const t: ArrayBuffer[] = [];
  const w = await roundTrip(flowOut(f, "request", t), t);
  const a = flowIn(w);
  a.flow.response = Response.make(403, "no", { "x-why": "demo" });
  a.flow.request.path = "/changed";
  a.flow.request.headers.set("x-req", "1");
  const back: ArrayBuffer[] = [];
  applyFlowChanges(f, await roundTrip(flowDiff(a.flow, a.snapshot, back)!, back), w.metadata);
  assert.equal(f.response!.statusCode, 403);
  assert.equal(f.response!.text, "no");
  assert.equal(f.response!.headers.get("x-why"), "demo");
  assert.equal(f.request.path, "/changed");
  assert.equal(f.request.headers.get("x-req"), "1");

  const g = tflow();
  const w2 = flowOut(g, "request", []);
  const b = flowIn(structuredClone(w2));
  b.flow.kill();
  applyFlowChanges(g, flowDiff(b.flow, b.snapshot, [])!, w2.metadata);
  assert.ok(g.killed);
});
