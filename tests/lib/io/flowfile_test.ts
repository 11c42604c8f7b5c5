import assert from "node:assert/strict";
import { FlowReadError, FlowWriter, readFlows, readFlowsToArray } from "../../../lib/io/flowfile.ts";
import { dumps } from "../../../lib/io/tnetstring.ts";
import { flowToState } from "../../../lib/io/state.ts";
import { parseFilter } from "../../../lib/flow/filter.ts";
import type { HTTPFlow } from "../../../lib/flow/flow.ts";
import { tflow } from "./_tflow.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function streamOf(data: Uint8Array, chunk = 7): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i >= data.length) return c.close();
      c.enqueue(data.slice(i, i + chunk));
      i += chunk;
    },
  });
}

async function collect(src: Parameters<typeof readFlows>[0]): Promise<{ flows: HTTPFlow[]; error: unknown }> {
  const flows: HTTPFlow[] = [];
  try {
    for await (const f of readFlows(src)) flows.push(f);
    return { flows, error: null };
  } catch (e) {
    return { flows, error: e };
  }
}

Deno.test("flowfile: write and read back through a file, append with +path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.mitm`;
    const w = await FlowWriter.open(path);
    const flows = [tflow({ resp: true }), tflow({ err: true }), tflow({ resp: true, ws: true })];
    for (const f of flows) await w.add(f);
    await w.close();
    const back = await readFlowsToArray(path);
    assert.deepEqual(back.map((f) => f.id), flows.map((f) => f.id));
    const w2 = await FlowWriter.open(`+${path}`);
    await w2.add(tflow());
    await w2.close();
    assert.equal((await readFlowsToArray(path)).length, 4);
    // filtered writer
    const w3 = await FlowWriter.open(path, { filter: parseFilter("~s") });
    for (const f of flows) await w3.add(f);
    await w3.close();
    assert.equal((await readFlowsToArray(path)).length, 2);
    // open FsFile source
    const file = await Deno.open(path);
    assert.equal((await collect(file)).flows.length, 2);
    file.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flowfile: a batching writer writes a turn's flows at its end, in order; close writes what is left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/b.mitm`;
    const w = await FlowWriter.open(path, { batch: true });
    const flows = [tflow({ resp: true }), tflow({ err: true }), tflow({ resp: true })];
    const done = flows.map((f) => w.add(f));
    assert.equal(Deno.statSync(path).size, 0, "nothing written within the turn");
    assert.equal(w.count, 0);
    await Promise.all(done);
    assert.equal(w.count, 3);
    const size = (await Deno.stat(path)).size;
    assert.equal(
      size,
      flows.reduce((n, f) => n + dumps(flowToState(f)).length, 0),
      "all three, nothing else",
    );
    assert.deepEqual((await readFlowsToArray(path)).map((f) => f.id), flows.map((f) => f.id));
    // a flow added right before close is written by it
    const last = tflow({ resp: true });
    const p = w.add(last);
    await w.close();
    await p;
    assert.deepEqual((await readFlowsToArray(path)).map((f) => f.id), [...flows, last].map((f) => f.id));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "flowfile: a batch that cannot be written rejects every add of it; the file keeps the flows before",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // /dev/full takes the open and fails every write with ENOSPC, like a full disk
    const w = await FlowWriter.open("/dev/full", { batch: true });
    const adds = [w.add(tflow({ resp: true })), w.add(tflow({ resp: true }))];
    const results = await Promise.allSettled(adds);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /space|ENOSPC|full/i);
    assert.equal(w.count, 0);
    await w.close();
  },
});

Deno.test("flowfile: UTF-8 BOM is skipped; empty input is zero flows; '{' is read as HAR", async () => {
  const one = dumps(flowToState(tflow({ resp: true })));
  const r = await collect(streamOf(concat([new Uint8Array([0xef, 0xbb, 0xbf]), one])));
  assert.equal(r.error, null);
  assert.equal(r.flows.length, 1);
  assert.deepEqual(await collect(streamOf(new Uint8Array(0))), { flows: [], error: null });
  const har = await collect(streamOf(new TextEncoder().encode('{"log": {"entries": []}}')));
  assert.deepEqual(har, { flows: [], error: null });
  const bad = await collect(streamOf(new TextEncoder().encode('{"log": {"entries": [')));
  assert.ok(bad.error instanceof FlowReadError);
  assert.match((bad.error as Error).message, /Invalid HAR file/);
  const notHar = await collect(streamOf(new TextEncoder().encode('{"foo": 1}')));
  assert.match((notHar.error as Error).message, /Invalid HAR file: not a HAR file/);
});

Deno.test("flowfile: truncated file yields complete flows then one error with the offset", async () => {
  const a = dumps(flowToState(tflow({ resp: true })));
  const b = dumps(flowToState(tflow({ err: true })));
  const data = concat([a, b, a]);
  for (const cut of [1, 10, a.length - 1]) {
    const truncated = data.subarray(0, a.length + b.length + cut);
    const r = await collect(streamOf(truncated, 1000));
    assert.equal(r.flows.length, 2, `cut ${cut}`);
    assert.ok(r.error instanceof FlowReadError, `cut ${cut}`);
    assert.equal((r.error as FlowReadError).offset, a.length + b.length);
    assert.match((r.error as Error).message, new RegExp(`byte offset ${a.length + b.length}`));
  }
  // corrupt data in the middle
  const corrupt = concat([a, new TextEncoder().encode("garbage"), a]);
  const r = await collect(streamOf(corrupt));
  assert.equal(r.flows.length, 1);
  assert.equal((r.error as FlowReadError).offset, a.length);
  assert.match((r.error as Error).message, /invalid length prefix/);
  // a non-dict item
  const r2 = await collect(streamOf(concat([a, dumps([1, 2])])));
  assert.equal(r2.flows.length, 1);
  assert.match((r2.error as Error).message, /expected a flow dict at byte offset/);
  // a flow from the future
  const future = flowToState(tflow());
  future.version = 99;
  const r3 = await collect(streamOf(concat([a, dumps(future)])));
  assert.equal(r3.flows.length, 1);
  assert.match((r3.error as Error).message, /flow format version 99, please update/);
  // a missing file
  const r4 = await collect("/nonexistent/file.mitm");
  assert.ok(r4.error instanceof FlowReadError);
});

Deno.test("flowfile: unsupported flow types are skipped (or refused)", async () => {
  const http = dumps(flowToState(tflow()));
  const tcp = flowToState(tflow());
  tcp.type = "tcp";
  delete tcp.request;
  delete tcp.response;
  delete tcp.websocket;
  tcp.messages = [];
  const data = concat([http, dumps(tcp), http]);
  const skipped: string[] = [];
  const got = await readFlowsToArray(streamOf(data), { onSkip: (t) => skipped.push(t) });
  assert.equal(got.length, 2);
  assert.deepEqual(skipped, ["tcp"]);
  await assert.rejects(
    () => readFlowsToArray(streamOf(data), { unsupported: "error" }),
    /unsupported flow type tcp/,
  );
});
