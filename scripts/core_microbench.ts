/**
 * The protocol core without sockets, timed: one keep-alive client connection through the real layer stack
 * (regular mode, HTTP/1, the dump tool's addons), requests and responses fed as events, commands executed
 * by a minimal in-memory driver (hooks run for real). Measures JS cost per request; `--profile` prints the
 * functions with the most self time (node:inspector).
 *
 * Usage: `deno run -A --v8-flags=--max-semi-space-size=4,--expose-gc scripts/core_microbench.ts [--n 100000] [--profile]`
 * (`--bare`: without the dump addons; `--heap`: bytes allocated per request by function, from V8's sampling
 * heap profiler, collected objects included: a figure the machine's load does not move; `--alloc`: the total,
 * with `--max-semi-space-size=128,--min-semi-space-size=128` so that nothing is collected meanwhile).
 * @module
 */
import { Session } from "node:inspector";
import process from "node:process";
import { Master } from "../lib/master.ts";
import { dumpAddons } from "../lib/cli.ts";
import { Client, type Connection, Server } from "../lib/flow/connection.ts";
import { Context } from "../lib/proxy/context.ts";
import {
  CloseConnection,
  type Command,
  Log,
  OpenConnection,
  RequestWakeup,
  SendData,
  StartHook,
} from "../lib/proxy/commands.ts";
import { DataReceived, Start } from "../lib/proxy/events.ts";
import { RegularMode } from "../lib/proxy/layers/modes.ts";

const n = Number(Deno.args[Deno.args.indexOf("--n") + 1] || 100000);
const profile = Deno.args.includes("--profile");

const master = new Master();
master.onLog(() => {});
if (!Deno.args.includes("--bare")) {
  await master.addAddons(
    ...dumpAddons(master).filter((a) => (a as { name?: string }).name !== "proxyserver"),
  );
}
await master.options.set(["flow_detail=0", "termlog_verbosity=error"]);
await master.addons.trigger("configure", new Set(master.options.specs().map((s) => s.name)));

const client = new Client({ peername: ["127.0.0.1", 50000], sockname: ["127.0.0.1", 8080] });
const ctx = new Context(client, new Server(null), master.proxy);
let toServer = 0;
let toClient = 0;
let server: Connection | null = null;
const root = new RegularMode(ctx);
root.attach((c: Command) => {
  if (c instanceof SendData) {
    if (c.conn === client) toClient++;
    else toServer++;
  } else if (c instanceof StartHook) {
    const p = c.flow ? master.addons.runHook(c.name, c.flow) : undefined;
    if (p) p.then(() => c.complete());
    else c.complete();
  } else if (c instanceof OpenConnection) {
    server = c.conn;
    c.conn.timestampStart = Date.now() / 1000;
    c.complete(null);
  } else if (c instanceof RequestWakeup) master.proxy.timers.wakeup(c);
  else if (c instanceof CloseConnection || c instanceof Log) { /* nothing */ }
});
root.handle(new Start());
const enc = new TextEncoder();
const req = enc.encode(
  "GET http://127.0.0.1:18098/ HTTP/1.1\r\nHost: 127.0.0.1:18098\r\nUser-Agent: bench\r\n\r\n",
);
const body = "x".repeat(1024);
const resp = enc.encode(
  `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
);

function once(): void {
  root.handle(new DataReceived(client, req));
  root.handle(new DataReceived(server!, resp));
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
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
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
  } µs CPU (client writes ${toClient}, server writes ${toServer})`,
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
