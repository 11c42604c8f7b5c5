/**
 * Recording (`-w`) when the disk fails: a full filesystem (a small tmpfs, where the machine lets the test
 * mount one), /dev/full, and an output directory that disappears while a rotating file name moves on.
 * Each time: one clear error, recording stops, every flow written before stays readable, and the proxy
 * serves every request.
 */
import assert from "node:assert/strict";
import { curl, runCli, startOrigin, startProxy } from "./helpers.ts";

async function traffic(proxyUrl: string, originUrl: string, n: number): Promise<number[]> {
  const codes: number[] = [];
  for (let i = 0; i < n; i++) codes.push((await curl(["-x", proxyUrl, `${originUrl}/r${i}`])).status);
  return codes;
}

/** Flows in a file, read back by mitmdeno itself (`-n -r FILE`); the exit code says whether it read cleanly. */
async function readBack(path: string): Promise<{ flows: number; code: number; out: string }> {
  const r = await runCli(["-n", "-r", path, "--flow-detail", "1"]);
  const out = r.stdout + r.stderr;
  return { flows: (out.match(/GET http:\/\/127\.0\.0\.1:\d+\/r\d+/g) ?? []).length, code: r.code, out };
}

async function tryMountTmpfs(dir: string, size: string): Promise<string | null> {
  try {
    const r = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    return r.success ? null : new TextDecoder().decode(r.stderr).trim() || "mount failed";
  } catch (e) {
    return (e as Error).message;
  }
}

const mountDir = await Deno.makeTempDir({ prefix: "mitmdeno-tmpfs-" });
const mountError = await tryMountTmpfs(mountDir, "48k");
if (mountError === null) {
  await new Deno.Command("umount", { args: [mountDir] }).output();
}

Deno.test({
  name:
    "save: a full disk stops recording with one error; flows written before stay readable; the proxy serves on" +
    (mountError === null ? "" : ` [ignored: cannot mount a tmpfs here: ${mountError}]`),
  ignore: mountError !== null,
  fn: async () => {
    assert.equal(await tryMountTmpfs(mountDir, "48k"), null);
    const body = "x".repeat(2048);
    const o = startOrigin(() => new Response(body));
    const file = `${mountDir}/out.flows`;
    const p = await startProxy(["-w", file]);
    try {
      const codes = await traffic(p.url, o.url, 60);
      assert.deepEqual(codes, new Array(60).fill(200), "every request was served");
      const out = p.output();
      const errors =
        out.match(/Error while writing to .*out\.flows: .*No space left on device.*recording stopped/g) ?? [];
      assert.equal(errors.length, 1, `one error:\n${out}`);
      const back = await readBack(file);
      assert.equal(back.code, 0, `the file reads back cleanly:\n${back.out}`);
      assert.ok(back.flows >= 3 && back.flows < 60, `${back.flows} flows readable`);
      const written = Number(/\((\d+) flows written there stay readable/.exec(out)?.[1]);
      assert.equal(back.flows, written, "as many flows as the error said");
    } finally {
      await p.stop();
      await o.close();
      await new Deno.Command("umount", { args: [mountDir] }).output();
    }
  },
});

Deno.test("save: /dev/full: one error, recording stops, the proxy serves on", async () => {
  const o = startOrigin(() => new Response("hello"));
  const p = await startProxy(["-w", "/dev/full"]);
  try {
    const codes = await traffic(p.url, o.url, 20);
    assert.deepEqual(codes, new Array(20).fill(200));
    const errors = p.output().match(/Error while writing to \/dev\/full: .*recording stopped/g) ?? [];
    assert.equal(errors.length, 1, p.output());
  } finally {
    assert.equal(await p.stop(), 0, "exits cleanly");
    await o.close();
  }
});

Deno.test("save: the output directory replaced while a rotating file name moves on: one error, the proxy serves on", async () => {
  const o = startOrigin(() => new Response("hello"));
  const root = await Deno.makeTempDir({ prefix: "mitmdeno-save-fault-" });
  const dir = `${root}/rec`;
  const p = await startProxy(["-w", `${dir}/%S.flows`]);
  try {
    assert.deepEqual(await traffic(p.url, o.url, 5), new Array(5).fill(200));
    const first = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`);
    // the directory goes away and a file takes its name: the next second's file cannot be created
    await Deno.remove(dir, { recursive: true });
    await Deno.writeTextFile(dir, "not a directory");
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(await traffic(p.url, o.url, 10), new Array(10).fill(200));
    const errors = p.output().match(/Error while writing to .*recording stopped/g) ?? [];
    assert.equal(errors.length, 1, p.output());
    assert.ok(first.length >= 1);
  } finally {
    await p.stop();
    await o.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("save: cleanup", async () => {
  await Deno.remove(mountDir, { recursive: true }).catch(() => {});
});
