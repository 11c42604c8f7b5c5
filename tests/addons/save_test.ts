/** The save addon (-w): per-flow writes, filter, append, format version, rotation, done, save.file. */
import assert from "node:assert/strict";
import { Save, strftime } from "../../addons/save.ts";
import { readFlowStates, readFlowsToArray } from "../../lib/io/flowfile.ts";
import { OptionsError } from "../../lib/addons/options.ts";
import { tflow } from "../lib/io/_tflow.ts";
import { testMaster, withTempDir } from "../lib/io/_master.ts";

/** Resolves after the callbacks already queued for the end of this event-loop turn (a writer's batch). */
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

Deno.test("save: HTTP flows are written at response and error, at the end of the turn the hook returns in", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/out.mitm`;
    const save = new Save();
    const { master } = await testMaster([save], [`save_stream_file=${path}`]);
    const a = tflow({ resp: true });
    await master.addons.handleLifecycle("request", a);
    assert.equal((await Deno.stat(path)).size, 0, "nothing written before the flow finished");
    await master.addons.handleLifecycle("response", a);
    // the writer gathers a turn's flows into one write (FlowWriterOptions.batch): on disk once the turn
    // ends, while the writer is still open, so a crash from here on would lose nothing
    await endOfTurn();
    assert.equal((await readFlowsToArray(path)).length, 1);
    const b = tflow({ err: true });
    await master.addons.handleLifecycle("error", b);
    await endOfTurn();
    const flows = await readFlowsToArray(path);
    assert.deepEqual(flows.map((f) => f.id), [a.id, b.id]);
    assert.equal(flows[1].error!.msg, "error");
    await master.addons.trigger("done");
  });
});

Deno.test("save: filter, flows still in progress at done, websocket flows at websocket_end", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/out.mitm`;
    const save = new Save();
    const { master } = await testMaster([save], [`save_stream_file=${path}`, "save_stream_filter=~s"]);
    const err = tflow({ err: true });
    await master.addons.handleLifecycle("error", err); // no response: filtered out
    const ws = tflow({ resp: true, ws: true });
    await master.addons.handleLifecycle("response", ws);
    assert.equal((await readFlowsToArray(path)).length, 0, "websocket flows wait for websocket_end");
    await master.addons.handleLifecycle("websocket_end", ws);
    const pending = tflow({ resp: true });
    await master.addons.handleLifecycle("request", pending);
    await master.addons.trigger("done");
    const flows = await readFlowsToArray(path);
    assert.deepEqual(flows.map((f) => f.id), [ws.id, pending.id]);
  });
});

Deno.test("save: +path appends; flow_format_version=17 writes mitmproxy 8 files; bad values name the option", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/out.mitm`;
    for (let i = 0; i < 2; i++) {
      const { master } = await testMaster([new Save()], [
        `save_stream_file=+${path}`,
        "flow_format_version=17",
      ]);
      await master.addons.handleLifecycle("response", tflow({ resp: true }));
      await master.addons.trigger("done");
    }
    const versions: unknown[] = [];
    for await (const s of readFlowStates(path)) versions.push(s.storedVersion);
    assert.deepEqual(versions.map(Number), [17, 17]);

    const { master } = await testMaster([new Save()]);
    await assert.rejects(master.options.set(["flow_format_version=16"]), (e: Error) => {
      assert.ok(e instanceof OptionsError);
      assert.match(e.message, /flow_format_version.*17 to 21/);
      return true;
    });
    await assert.rejects(master.options.set(["save_stream_filter=~q ("]), /Option "save_stream_filter"/);
    await Deno.writeTextFile(`${dir}/file.txt`, "");
    await assert.rejects(
      master.options.set([`save_stream_file=${dir}/file.txt/x.mitm`]),
      /Option "save_stream_file": cannot open/,
    );
  });
});

Deno.test("save: strftime patterns and missing directories", async () => {
  assert.equal(strftime("a-%Y%m%d-%%.mitm", new Date(2024, 0, 5, 7, 8, 9)), "a-20240105-%.mitm");
  assert.equal(strftime("%H%M%S-%j", new Date(2024, 1, 1, 7, 8, 9)), "070809-032");
  await withTempDir(async (dir) => {
    const { master } = await testMaster([new Save()], [`save_stream_file=${dir}/x/y/%Y.mitm`]);
    await master.addons.handleLifecycle("response", tflow({ resp: true }));
    await master.addons.trigger("done");
    assert.equal((await readFlowsToArray(`${dir}/x/y/${new Date().getFullYear()}.mitm`)).length, 1);
  });
});

Deno.test("save: the save.file command", async () => {
  await withTempDir(async (dir) => {
    const { master, logs } = await testMaster([new Save()]);
    const flows = [tflow({ resp: true }), tflow({ err: true })];
    assert.equal(await master.commands.call("save.file", flows, `${dir}/f.mitm`), 2);
    assert.equal(await master.commands.call("save.file", flows[0], `+${dir}/f.mitm`), 1);
    assert.equal((await readFlowsToArray(`${dir}/f.mitm`)).length, 3);
    assert.ok(logs.includes("alert: Saved 2 flows."));
  });
});
