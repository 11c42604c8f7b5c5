/**
 * The protocol core without sockets, timed: one keep-alive client connection through the real layer stack
 * (regular mode, HTTP/1, the dump tool's addons), requests and responses fed as events, commands executed
 * by a minimal in-memory driver (hooks run for real). Measures JS cost per request; `--profile` prints the
 * functions with the most self time (node:inspector).
 *
 * Usage: `deno run -A --v8-flags=--max-semi-space-size=4,--expose-gc,--no-concurrent-array-buffer-sweeping scripts/core_microbench.ts [--n 100000] [--profile]`
 * (`--bare`: without the dump addons; `--heap`: bytes allocated per request by function, from V8's sampling
 * heap profiler, collected objects included: a figure the machine's load does not move; `--alloc`: the total,
 * with `--max-semi-space-size=128,--min-semi-space-size=128` so that nothing is collected meanwhile;
 * `--against DIR [--rounds 30]`: CPU per request of this checkout and of the one in DIR, e.g. an older commit
 * from `git worktree add /tmp/old <commit>`, run side by side in this process with batches alternated, and the
 * median ratio: steadier than two separate runs on a busy machine; run it with `--config deno.json`).
 * @module
 */
import { Session } from "node:inspector";
import process from "node:process";
import { coreExchange } from "./bench/core_exchange.ts";

const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i === -1 ? undefined : Deno.args[i + 1];
};
const n = Number(arg("--n") || 100000);
const profile = Deno.args.includes("--profile");
const bare = Deno.args.includes("--bare");

const ex = await coreExchange(new URL("..", import.meta.url).pathname, { bare });
const once = ex.once;

const against = arg("--against");
if (against) {
  // side by side in one process, batches alternated: the machine's load moves both alike
  const other = await coreExchange(against, { bare });
  for (let i = 0; i < 20000; i++) {
    once();
    other.once();
  }
  const batch = 10000;
  const rounds = Number(arg("--rounds") || 30);
  const cpuPer = (f: () => void) => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < batch; i++) f();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / batch;
  };
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // which goes first alternates too (the second of a pair tends to be a little slower)
    if (r % 2) {
      ours.push(cpuPer(once));
      theirs.push(cpuPer(other.once));
    } else {
      theirs.push(cpuPer(other.once));
      ours.push(cpuPer(once));
    }
  }
  const median = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1];
  console.log(
    `this checkout ${median(ours).toFixed(2)} µs CPU/request, ${against} ${median(theirs).toFixed(2)}: ` +
      `ratio ${median(ours.map((x, i) => x / theirs[i])).toFixed(3)} (median of ${rounds} pairs of ${batch})`,
  );
  Deno.exit(0);
}

for (let i = 0; i < 20000; i++) once();
let session: Session | null = null;
if (profile) {
  session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 50 });
  session.post("Profiler.start");
}
if (Deno.args.includes("--alloc")) {
  // bytes allocated per request: young-generation growth over a run too short to collect (run with a large
  // --max-semi-space-size); a figure that, unlike time, does not move with the machine's load
  const gc = (globalThis as { gc?: () => void }).gc!;
  const m = 2000;
  gc();
  const h0 = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < m; i++) once();
  const h1 = Deno.memoryUsage().heapUsed;
  console.log(`allocated ~${Math.round((h1 - h0) / m)} bytes/request`);
}
if (Deno.args.includes("--heap")) {
  const hs = new Session();
  hs.connect();
  const post = (m: string, params: object = {}) =>
    new Promise<unknown>((res, rej) => hs.post(m, params, (e, r) => (e ? rej(e) : res(r))));
  await post("HeapProfiler.enable");
  await post("HeapProfiler.startSampling", {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < 20000; i++) once();
  const { profile } = await post("HeapProfiler.stopSampling") as {
    profile: { head: HeapNode };
  };
  interface HeapNode {
    callFrame: { functionName: string; url: string; lineNumber: number };
    selfSize: number;
    children: HeapNode[];
  }
  const self = new Map<string, number>();
  const walk = (nd: HeapNode) => {
    const f = nd.callFrame;
    const k = `${f.functionName || "(anon)"} ${f.url.replace(/^.*\/(lib|addons|ext)\//, "$1/")}:${
      f.lineNumber + 1
    }`;
    self.set(k, (self.get(k) ?? 0) + nd.selfSize);
    for (const c of nd.children) walk(c);
  };
  walk(profile.head);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 80)) {
    console.log(`${String(Math.round(v / 20000)).padStart(6)} B/req  ${k}`);
  }
  Deno.exit(0);
}
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < n; i++) once();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
// CPU time as well as wall time: on a busy machine the CPU time per request is the steadier figure
console.log(
  `${n} requests: ${(ms * 1000 / n).toFixed(2)} µs/request wall, ${
    ((cpu.user + cpu.system) / n).toFixed(2)
  } µs CPU (client writes ${ex.writes.client}, server writes ${ex.writes.server})`,
);
if (session) {
  session.post("Profiler.stop", (_e, r) => {
    const p = (r as {
      profile: {
        nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
        samples: number[];
      };
    }).profile;
    const byId = new Map(p.nodes.map((x) => [x.id, x]));
    const self = new Map<string, number>();
    for (const id of p.samples) {
      const f = byId.get(id)!.callFrame;
      const k = `${f.functionName || "(anon)"} ${f.url.replace(/^.*\/(lib|addons|ext)\//, "$1/")}:${
        f.lineNumber + 1
      }`;
      self.set(k, (self.get(k) ?? 0) + 1);
    }
    const total = p.samples.length;
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
      console.log(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
    }
    Deno.exit(0);
  });
} else Deno.exit(0);
