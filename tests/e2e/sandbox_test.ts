/**
 * Attacks on the script sandbox that would take the whole proxy down, so each runs against a real proxy
 * process: a script that runs out of memory (from a timer, and inside a hook), one that signals the
 * proxy's own process. The proxy must log the script's failure with its name and keep serving.
 */
import assert from "node:assert/strict";
import { curl, rssMiB, startOrigin, startProxy } from "./helpers.ts";

/** How a script that exhausts its memory is stopped: the memory limit, or a hook's timeout when V8 spends that
 * long collecting garbage at the limit (both end the worker with bounded memory). */
const STOPPED =
  /hog\.ts: (worker crashed: ran out of memory|the \w+ hook took longer than 5s|worker crashed: busy)/;

async function withProxy(
  scripts: Record<string, string>,
  fn: (p: Awaited<ReturnType<typeof startProxy>>, originUrl: string) => Promise<void>,
  extra: string[] = [],
): Promise<void> {
  const o = startOrigin(() => new Response("hello"));
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-sandbox-e2e-" });
  const args: string[] = [];
  for (const [name, src] of Object.entries(scripts)) {
    await Deno.writeTextFile(`${dir}/${name}`, src);
    args.push("-s", `${dir}/${name}`);
  }
  const p = await startProxy([...args, ...extra]);
  try {
    await fn(p, o.url);
  } finally {
    await p.stop();
    await o.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Sample the proxy's RSS every 100 ms until `until` resolves; returns the peak in MiB. */
async function peakRss(pid: number, until: Promise<unknown>): Promise<number> {
  let peak = 0;
  let done = false;
  until.finally(() => (done = true));
  while (!done) {
    peak = Math.max(peak, rssMiB(pid));
    await new Promise((r) => setTimeout(r, 100));
  }
  return Math.max(peak, rssMiB(pid));
}

Deno.test("sandbox e2e: a script that runs out of memory in a timer or a hook stops alone; the proxy serves on", async () => {
  const hog = `
import { ctx, type HTTPFlow } from "mitmdeno";
const keep: unknown[] = [];
function eat() { for (let i = 0; i < 200_000; i++) keep.push({ i, s: "x".repeat(16) + i }); }
export function running() { ctx.log.info("hog running"); }
export function request(flow: HTTPFlow) {
  if (flow.request.path === "/timer") setInterval(eat, 1);
  if (flow.request.path === "/hook") for (;;) eat();
  // from microtasks: Deno cancels the stop at the heap limit there and doubles the limit
  if (flow.request.path === "/micro") setInterval(() => Promise.resolve().then(() => { for (;;) eat(); }), 50);
}
export function response(flow: HTTPFlow) { flow.response!.headers.set("x-hog", "alive"); }`;
  await withProxy({ "hog.ts": hog }, async (p, origin) => {
    await p.waitFor(/hog running/);
    // from a timer, outside any hook
    const timer = curl(["-x", p.url, `${origin}/timer`]);
    assert.equal((await timer).status, 200);
    const peak1 = await peakRss(
      p.pid,
      p.waitFor(/hog\.ts: worker crashed: ran out of memory \(limit 64 MiB/, 30000),
    );
    // inside a hook: the flow goes on unchanged
    await p.waitFor(/hog running(.|\n)*hog running/, 15000);
    const hookRun = curl(["-x", p.url, `${origin}/hook`]);
    const peak2 = await peakRss(p.pid, hookRun);
    const r = await hookRun;
    assert.equal(r.status, 200, "the flow went on");
    assert.equal(r.body, "hello");
    // a synchronous loop in a hook is ended by the memory limit or, if V8 is busy collecting garbage at the
    // limit for that long, by the hook's timeout: either way with bounded memory
    await p.waitFor(new RegExp(`(${STOPPED.source}(.|\\n)*){2}`));
    // from microtasks, again and again
    await p.waitFor(/hog running(.|\n)*hog running(.|\n)*hog running/, 15000);
    assert.equal((await curl(["-x", p.url, `${origin}/micro`])).status, 200);
    const peak3 = await peakRss(
      p.pid,
      p.waitFor(new RegExp(`(${STOPPED.source}(.|\\n)*){3}`), 30000),
    );
    // the proxy still serves, the restarted script too
    await p.waitFor(/(hog running(.|\n)*){4}/, 15000);
    const after = await curl(["-x", p.url, `${origin}/after`]);
    assert.equal(after.status, 200);
    assert.match(after.headers, /^x-hog: alive\r$/m);
    const peak = Math.max(peak1, peak2, peak3);
    assert.ok(peak < 700, `peak RSS ${peak} MiB`);
  }, ["--set", "script_memory_limit=64"]);
});

Deno.test("sandbox e2e: a script cannot signal or exit the proxy's process", async () => {
  const killer = `
import { ctx } from "mitmdeno";
import process from "node:process";
export function running() {
  for (const [name, f] of [
    ["Deno.kill", () => Deno.kill(Deno.pid, "SIGTERM")],
    ["process.kill", () => process.kill(process.pid, "SIGKILL")],
    ["group", () => Deno.kill(0, "SIGTERM")],
  ] as const) {
    try { f(); ctx.log.info(name + " SENT"); } catch (e) { ctx.log.info(name + " refused: " + (e as Error).message); }
  }
  setTimeout(() => Deno.exit(3), 100);
}`;
  await withProxy({ "killer.ts": killer }, async (p, origin) => {
    await p.waitFor(/Deno\.kill refused: signalling the proxy's own process is not available/);
    await p.waitFor(/process\.kill refused/);
    await p.waitFor(/group refused/);
    // Deno.exit ends the script's worker only; it is restarted
    await p.waitFor(/killer\.ts: worker crashed: the script worker exited \(code 3\)/);
    assert.equal((await curl(["-x", p.url, `${origin}/still-here`])).status, 200);
    assert.doesNotMatch(p.output(), /SENT/);
  });
});
