/**
 * The docs stay true: every ```ts block of docs/addons.md runs (blocks with title="x.ts" are saved under that
 * name for later blocks to import; blocks with Deno.test run under `deno test`, the others under
 * `deno run`), and docs/options.md matches the live option registry.
 */
import assert from "node:assert/strict";
import { renderOptionsDoc } from "../scripts/gen_options_doc.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** The ```ts blocks of a markdown text, with their optional title. */
export function tsBlocks(md: string): { title?: string; code: string; line: number }[] {
  const out: { title?: string; code: string; line: number }[] = [];
  const re = /^```ts([^\n]*)\n([\s\S]*?)^```$/gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(md))) {
    const info = m[1];
    if (/\bignore\b/.test(info)) continue;
    const title = /title="([^"]+)"/.exec(info)?.[1];
    out.push({ title, code: m[2], line: md.slice(0, m.index).split("\n").length });
  }
  return out;
}

async function run(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("docs/addons.md: every ts block runs", async () => {
  const md = await Deno.readTextFile(`${ROOT}docs/addons.md`);
  const blocks = tsBlocks(md);
  assert.ok(blocks.length >= 6, `expected the docs to have code, found ${blocks.length} blocks`);
  // inside the repo so that the import map resolves "mitmdeno" and "mitmdeno/testing"
  const dir = await Deno.makeTempDir({ dir: `${ROOT}tests`, prefix: ".docs_tmp_" });
  try {
    const tests: string[] = [];
    const runs: { file: string; line: number }[] = [];
    for (const [i, b] of blocks.entries()) {
      const isTest = b.code.includes("Deno.test(");
      const file = b.title ?? (isTest ? `block${i}_test.ts` : `block${i}.ts`);
      await Deno.writeTextFile(`${dir}/${file}`, b.code);
      if (isTest) tests.push(file);
      else runs.push({ file, line: b.line });
    }
    for (const r of runs) {
      const res = await run(["run", "--allow-all", "--no-lock", r.file], dir);
      assert.equal(res.code, 0, `docs/addons.md block at line ${r.line} (${r.file}) failed:\n${res.out}`);
    }
    const t = await run(["test", "--allow-all", "--unstable-worker-options", "--no-lock", ...tests], dir);
    assert.equal(t.code, 0, `docs/addons.md test blocks failed:\n${t.out}`);
    assert.match(t.out, /\d+ passed \| 0 failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("docs/options.md is generated from the live option registry", async () => {
  const want = await renderOptionsDoc();
  const have = await Deno.readTextFile(`${ROOT}docs/options.md`);
  assert.ok(
    have === want,
    "docs/options.md is out of date: run `deno run -A scripts/gen_options_doc.ts`",
  );
});
