/** The readfile addon (-r): event replay order, filter, stdin, HAR, corrupt files, offline transform. */
import assert from "node:assert/strict";
import { eventSequence, ReadFile } from "../../addons/readfile.ts";
import { KeepServing } from "../../addons/keepserving.ts";
import { Save } from "../../addons/save.ts";
import { FlowWriter, readFlowsToArray } from "../../lib/io/flowfile.ts";
import { dumps } from "../../lib/io/tnetstring.ts";
import { flowToState } from "../../lib/io/state.ts";
import { makeHar } from "../../lib/io/har.ts";
import type { HTTPFlow } from "../../lib/flow/flow.ts";
import { tflow } from "../lib/io/_tflow.ts";
import { Recorder, testMaster, withTempDir } from "../lib/io/_master.ts";

async function writeFlows(path: string, flows: HTTPFlow[]): Promise<void> {
  const w = await FlowWriter.open(path);
  for (const f of flows) await w.add(f);
  await w.close();
}

Deno.test("readfile: eventSequence follows mitmproxy's eventsequence", () => {
  const names = (f: HTTPFlow) => [...eventSequence(f)].map(([e]) => e);
  assert.deepEqual(names(tflow()), ["requestheaders", "request"]);
  assert.deepEqual(names(tflow({ resp: true })), [
    "requestheaders",
    "request",
    "responseheaders",
    "response",
  ]);
  assert.deepEqual(names(tflow({ err: true })), ["requestheaders", "request", "error"]);
  assert.deepEqual(names(tflow({ resp: true, err: true, ws: true })), [
    "requestheaders",
    "request",
    "responseheaders",
    "response",
    "websocket_start",
    "websocket_message",
    "websocket_message",
    "websocket_message",
    "websocket_end",
  ]);
  // messages are re-appended one at a time
  const f = tflow({ resp: true, ws: true });
  const seen: number[] = [];
  for (const [e] of eventSequence(f)) {
    if (e === "websocket_message") seen.push((f.websocket as { messages: unknown[] }).messages.length);
  }
  assert.deepEqual(seen, [1, 2, 3]);
});

Deno.test("readfile: -r replays every flow's events through all addons in order, with update", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/in.mitm`;
    const flows = [tflow({ resp: true }), tflow({ err: true }), tflow()];
    await writeFlows(path, flows);
    const rec = new Recorder();
    let updates = 0;
    const rf = new ReadFile();
    const { master } = await testMaster([rf, rec, { name: "upd", update: () => void updates++ }], [
      `rfile=${path}`,
    ]);
    await master.addons.trigger("running");
    assert.equal(rf.reading(), true);
    assert.equal(await master.commands.call("readfile.reading"), true);
    await rf.finished();
    assert.equal(rf.reading(), false);
    assert.deepEqual(rec.names, [
      "requestheaders",
      "request",
      "responseheaders",
      "response",
      "requestheaders",
      "request",
      "error",
      "requestheaders",
      "request",
    ]);
    assert.equal(updates, 9);
    assert.deepEqual(
      rec.events.map(([, f]) => f.id).filter((x, i, a) => a.indexOf(x) === i),
      flows.map((f) => f.id),
    );
    assert.ok(rec.events.every(([, f]) => !f.live));
  });
});

Deno.test("readfile: readfile_filter, stdin (-), HAR input and reverse-mode rewrite", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/in.mitm`;
    await writeFlows(path, [tflow({ resp: true }), tflow({ err: true })]);
    {
      const rec = new Recorder();
      const rf = new ReadFile();
      const { master } = await testMaster([rf, rec], [`rfile=${path}`, "readfile_filter=~e"]);
      await master.addons.trigger("running");
      await rf.finished();
      assert.deepEqual(rec.names, ["requestheaders", "request", "error"]);
      await assert.rejects(master.options.set(["readfile_filter=~x"]), /Option "readfile_filter"/);
    }
    {
      const rec = new Recorder();
      const rf = new ReadFile();
      const bytes = await Deno.readFile(path);
      rf.stdin = () => ReadableStream.from([bytes.subarray(0, 100), bytes.subarray(100)]);
      const { master } = await testMaster([rf, rec], ["rfile=-"]);
      await master.addons.trigger("running");
      await rf.finished();
      assert.equal(rec.names.length, 7);
    }
    {
      const harPath = `${dir}/in.har`;
      await Deno.writeTextFile(harPath, JSON.stringify(makeHar([tflow({ resp: true })])));
      const rec = new Recorder();
      const rf = new ReadFile();
      const { master } = await testMaster([rf, rec], [
        `rfile=${harPath}`,
        "mode=reverse:https://example.org:8443",
      ]);
      await master.addons.trigger("running");
      await rf.finished();
      assert.equal(rec.names.join(), "requestheaders,request,responseheaders,response");
      const f = rec.events[0][1] as HTTPFlow;
      assert.equal(f.request.url, "https://example.org:8443/path");
      assert.equal(f.response!.text, "message");
    }
  });
});

Deno.test("readfile: a truncated file processes every complete flow, then one error with the offset, exit 1", async () => {
  await withTempDir(async (dir) => {
    const a = dumps(flowToState(tflow({ resp: true })));
    const full = new Uint8Array(a.length * 3);
    for (let i = 0; i < 3; i++) full.set(a, i * a.length);
    const path = `${dir}/t.mitm`;
    await Deno.writeFile(path, full.subarray(0, a.length * 2 + 50));
    const rec = new Recorder();
    const rf = new ReadFile();
    const { master, logs } = await testMaster([rf, rec], [`rfile=${path}`]);
    await master.addons.trigger("running");
    await rf.finished();
    assert.equal(rec.names.filter((n) => n === "response").length, 2);
    const errors = logs.filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1, logs.join("\n"));
    assert.match(errors[0], new RegExp(`Error reading .*t\\.mitm: .*truncated.*byte offset ${a.length * 2}`));
    assert.ok(logs.includes("warn: Flow file corrupted - loaded 2 flows."));
    assert.equal(master.exitCode, 1);

    const missing = new ReadFile();
    const m2 = await testMaster([missing], [`rfile=${dir}/nope.mitm`]);
    await m2.master.addons.trigger("running");
    await missing.finished();
    assert.match(m2.logs.join("\n"), /error: Error reading .*nope\.mitm: cannot open flow file/);
    assert.equal(m2.master.exitCode, 1);
  });
});

Deno.test("readfile + keepserving + save: -n -r in -w out transforms offline and exits by itself", async () => {
  await withTempDir(async (dir) => {
    const input = `${dir}/in.mitm`;
    const output = `${dir}/out.mitm`;
    const flows = Array.from({ length: 50 }, (_, i) => {
      const f = tflow(i % 5 === 4 ? { err: true } : { resp: true });
      f.request.path = `/item/${i}`;
      return f;
    });
    await writeFlows(input, flows);
    // an in-process addon standing in for `-s script.ts`: it rewrites responses
    const transform = {
      name: "transform",
      response(f: HTTPFlow) {
        f.response!.headers.set("x-transformed", "1");
        f.response!.text = f.response!.text!.toUpperCase();
      },
    };
    const { master } = await testMaster(
      [transform, new Save(), new KeepServing(), new ReadFile()],
      [`rfile=${input}`, `save_stream_file=${output}`, "save_stream_filter=~s"],
    );
    const t0 = Date.now();
    await master.run(); // returns when keepserving sees the read is done
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(master.exitCode, 0);
    const out = await readFlowsToArray(output);
    assert.equal(out.length, 40);
    assert.ok(
      out.every((f) => f.response!.text === "MESSAGE" && f.response!.headers.get("x-transformed") === "1"),
    );
    assert.deepEqual(
      out.map((f) => f.request.path),
      flows.filter((f) => f.response).map((f) => f.request.path),
    );
  });
});
