/** The keepserving addon: exit once reading/replaying is done, unless --set keepserving. */
import assert from "node:assert/strict";
import { ReadFile } from "../../addons/readfile.ts";
import { KeepServing } from "../../addons/keepserving.ts";
import { FlowWriter } from "../../lib/io/flowfile.ts";
import { tflow } from "../lib/io/_tflow.ts";
import { testMaster, withTempDir } from "../lib/io/_master.ts";

async function writeFlows(path: string, n: number): Promise<void> {
  const w = await FlowWriter.open(path);
  for (let i = 0; i < n; i++) await w.add(tflow({ resp: true }));
  await w.close();
}

Deno.test("keepserving: with -r and no keepserving, run() returns once the file is read", async () => {
  await withTempDir(async (dir) => {
    await writeFlows(`${dir}/in.mitm`, 20);
    const rf = new ReadFile();
    const { master } = await testMaster([new KeepServing(), rf], [`rfile=${dir}/in.mitm`]);
    await master.run();
    assert.equal(rf.count, 20);
  });
});

Deno.test("keepserving: waits for replay.server.count / replay.client.count to reach 0", async () => {
  let left = 3;
  const fake = {
    name: "fakereplay",
    load(loader: { addCommand(p: string, fn: () => unknown): void }) {
      loader.addCommand("replay.server.count", () => left);
    },
  };
  const ks = new KeepServing();
  const { master } = await testMaster([ks, fake, {
    name: "opt",
    load(l: { addOption(...a: unknown[]): void }) {
      l.addOption("server_replay", "strs", [], "x");
    },
  }], ["server_replay=x"]);
  assert.equal(await ks.keepgoing(), true);
  const t = setInterval(() => left = Math.max(0, left - 1), 50);
  try {
    await master.run();
  } finally {
    clearInterval(t);
  }
  assert.equal(left, 0);
});

Deno.test("keepserving: nothing to read or replay: keeps running", async () => {
  const { master } = await testMaster([new KeepServing()]);
  let finished = false;
  const run = master.run().then(() => (finished = true));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(finished, false);
  master.shutdown();
  await run;
});

Deno.test("keepserving: --set keepserving keeps running after the read", async () => {
  await withTempDir(async (dir) => {
    const input = `${dir}/in.mitm`;
    await writeFlows(input, 1);
    const rf = new ReadFile();
    const { master } = await testMaster([new KeepServing(), rf], [`rfile=${input}`, "keepserving=true"]);
    let finished = false;
    const run = master.run().then(() => (finished = true));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(rf.count, 1);
    assert.equal(finished, false);
    master.shutdown();
    await run;
  });
});
