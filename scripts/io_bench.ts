/**
 * Flow file throughput, both directions, against mitmdump in the same run.
 *
 *   deno run -A scripts/io_bench.ts [N=100000] [--json]
 *
 * 1. library: write N flows with FlowWriter (v21 and v17), read them back with readFlows; RSS sampled every
 *    N/20 flows while streaming (it must stay flat: memory does not grow with the file).
 * 2. tools, same v17 file (mitmproxy 8.x reads only 17), subprocesses with their RSS sampled from /proc:
 *    - read:  `mitmdeno -n -q -r FILE`       vs `mitmdump -n -q -r FILE --set flow_detail=0`
 *    - write: `mitmdeno -n -q -r FILE -w OUT` vs `mitmdump -n -q -r FILE --set flow_detail=0 -w OUT`
 *    (read + replay every flow through the addon chain [+ save]; process start-up included).
 * Ratios are mitmdump time / mitmdeno time (target >= 5x).
 */
import { FlowWriter, readFlows } from "../lib/io/flowfile.ts";
import { Headers } from "../lib/http/headers.ts";
import { Request, Response } from "../lib/http/message.ts";
import { Client, Server } from "../lib/flow/connection.ts";
import { HTTPFlow } from "../lib/flow/flow.ts";
import { readRssKiB } from "./bench/rss.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const N = Number(args[0] ?? 100_000);
const JSON_OUT = Deno.args.includes("--json");
const enc = new TextEncoder();
const ROOT = new URL("../", import.meta.url).pathname;
const log = (s: string) => {
  if (!JSON_OUT) console.log(s);
};

/** A typical API exchange: ~0.9 KB on disk per flow at v21. */
export function makeFlow(i: number): HTTPFlow {
  const c = new Client({ peername: ["127.0.0.1", 40000 + (i % 20000)], sockname: ["127.0.0.1", 8080] });
  const s = new Server(["example.com", 443]);
  s.peername = ["93.184.216.34", 443];
  s.timestampStart = c.timestampStart;
  const req = new Request({
    method: "GET",
    scheme: "https",
    host: "example.com",
    port: 443,
    path: `/item/${i}?q=${i * 7}`,
    headers: new Headers([
      ["host", "example.com"],
      ["user-agent", "bench/1.0"],
      ["accept", "*/*"],
      ["accept-encoding", "gzip, deflate"],
    ]),
    rawContent: new Uint8Array(0),
    timestampStart: 1700000000 + i / 1000,
    timestampEnd: 1700000000 + i / 1000 + 0.001,
  });
  const f = new HTTPFlow(c, s, req, false);
  f.response = new Response({
    statusCode: 200,
    headers: new Headers([["content-type", "application/json"], ["content-length", "64"], [
      "server",
      "bench",
    ]]),
    rawContent: enc.encode(`{"id":${i},"payload":"${"x".repeat(40)}"}`.padEnd(64, " ")),
    timestampStart: 1700000000 + i / 1000 + 0.002,
    timestampEnd: 1700000000 + i / 1000 + 0.003,
  });
  return f;
}

const mb = (kib: number) => (kib / 1024).toFixed(0);
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));

async function write(path: string, version: number): Promise<number> {
  const w = await FlowWriter.open(path, { version });
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await w.add(makeFlow(i));
  await w.close();
  return performance.now() - t0;
}

/** Stream a file, sampling this process's RSS; returns time, count and RSS samples (MiB). */
async function read(path: string): Promise<{ ms: number; n: number; rss: number[] }> {
  const every = Math.max(1, Math.floor(N / 20));
  const rss: number[] = [];
  const t0 = performance.now();
  let n = 0;
  for await (const _ of readFlows(path)) {
    if (++n % every === 0) rss.push(Deno.memoryUsage().rss / 1048576);
  }
  return { ms: performance.now() - t0, n, rss };
}

/** Run a command to completion, sampling its RSS every 50 ms. */
async function timed(
  cmd: string,
  argv: string[],
): Promise<{ ms: number; code: number; peakMiB: number; err: string }> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, { args: argv, stdout: "null", stderr: "piped", stdin: "null" }).spawn();
  let peak = 0;
  const timer = setInterval(() => {
    const r = readRssKiB(child.pid);
    if (r !== undefined && r > peak) peak = r;
  }, 50);
  const out = await child.output();
  clearInterval(timer);
  return {
    ms: performance.now() - t0,
    code: out.code,
    peakMiB: Number(mb(peak)),
    err: new TextDecoder().decode(out.stderr).slice(0, 500),
  };
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

const result: Record<string, unknown> = { flows: N };
const dir = await Deno.makeTempDir({ prefix: "mitmdeno-iobench-" });
try {
  const path = `${dir}/bench.mitm`;
  const tw = await write(path, 21);
  const size = (await Deno.stat(path)).size;
  log(
    `library write v21: ${N} flows in ${(tw / 1000).toFixed(2)}s = ${rate(N, tw)} flows/s ` +
      `(${(size / 1e6).toFixed(1)} MB, ${((size / 1e6) / (tw / 1000)).toFixed(1)} MB/s)`,
  );
  const r21 = await read(path);
  log(`library read  v21: ${r21.n} flows in ${(r21.ms / 1000).toFixed(2)}s = ${rate(r21.n, r21.ms)} flows/s`);
  const settled = r21.rss.slice(2);
  log(
    `  RSS while streaming (MiB, every ${Math.floor(N / 20)} flows): ${
      r21.rss.map((x) => x.toFixed(0)).join(" ")
    }` +
      ` -> after warm-up min ${Math.min(...settled).toFixed(0)} max ${Math.max(...settled).toFixed(0)}`,
  );
  const p17 = `${dir}/bench17.mitm`;
  const tw17 = await write(p17, 17);
  const r17 = await read(p17);
  log(
    `library write v17: ${rate(N, tw17)} flows/s; read v17 (with migration to 21): ${
      rate(r17.n, r17.ms)
    } flows/s`,
  );
  Object.assign(result, {
    libWriteV21: rate(N, tw),
    libReadV21: rate(r21.n, r21.ms),
    libWriteV17: rate(N, tw17),
    libReadV17: rate(r17.n, r17.ms),
    fileMB: +(size / 1e6).toFixed(1),
    readRssMiB: r21.rss.map((x) => +x.toFixed(0)),
  });

  const deno = Deno.execPath();
  const ours = (extra: string[]) => ["run", "-A", `${ROOT}main.ts`, "-n", "-q", "-r", p17, ...extra];
  const oursRead = await timed(deno, ours([]));
  const oursWrite = await timed(deno, ours(["-w", `${dir}/ours-out.mitm`]));
  if (oursRead.code !== 0 || oursWrite.code !== 0) log(`mitmdeno failed: ${oursRead.err} ${oursWrite.err}`);
  log(
    `mitmdeno -n -r:      ${rate(N, oursRead.ms)} flows/s (${
      (oursRead.ms / 1000).toFixed(2)
    }s, peak RSS ${oursRead.peakMiB} MiB)`,
  );
  log(
    `mitmdeno -n -r -w:   ${rate(N, oursWrite.ms)} flows/s (${
      (oursWrite.ms / 1000).toFixed(2)
    }s, peak RSS ${oursWrite.peakMiB} MiB)`,
  );
  Object.assign(result, {
    cliRead: rate(N, oursRead.ms),
    cliReadWrite: rate(N, oursWrite.ms),
    cliReadPeakMiB: oursRead.peakMiB,
    cliReadWritePeakMiB: oursWrite.peakMiB,
  });

  const mitmdump = "/usr/bin/mitmdump";
  if (exists(mitmdump)) {
    const theirs = (extra: string[]) => ["-n", "-q", "-r", p17, "--set", "flow_detail=0", ...extra];
    const mRead = await timed(mitmdump, theirs([]));
    const mWrite = await timed(mitmdump, theirs(["-w", `${dir}/py-out.mitm`]));
    if (mRead.code !== 0 || mWrite.code !== 0) log(`mitmdump failed: ${mRead.err} ${mWrite.err}`);
    log(
      `mitmdump -n -r:      ${rate(N, mRead.ms)} flows/s (${
        (mRead.ms / 1000).toFixed(2)
      }s, peak RSS ${mRead.peakMiB} MiB)`,
    );
    log(
      `mitmdump -n -r -w:   ${rate(N, mWrite.ms)} flows/s (${
        (mWrite.ms / 1000).toFixed(2)
      }s, peak RSS ${mWrite.peakMiB} MiB)`,
    );
    const readX = mRead.ms / oursRead.ms;
    const writeX = mWrite.ms / oursWrite.ms;
    log(`ratio read:  ${readX.toFixed(1)}x mitmdump (target >= 5x) ${readX >= 5 ? "OK" : "BELOW TARGET"}`);
    log(`ratio write: ${writeX.toFixed(1)}x mitmdump (target >= 5x) ${writeX >= 5 ? "OK" : "BELOW TARGET"}`);
    Object.assign(result, {
      mitmdumpRead: rate(N, mRead.ms),
      mitmdumpReadWrite: rate(N, mWrite.ms),
      mitmdumpReadPeakMiB: mRead.peakMiB,
      mitmdumpReadWritePeakMiB: mWrite.peakMiB,
      ratioRead: +readX.toFixed(2),
      ratioWrite: +writeX.toFixed(2),
    });
  } else {
    log("mitmdump not installed: skipping the comparison");
  }
  if (JSON_OUT) console.log(JSON.stringify(result));
} finally {
  await Deno.remove(dir, { recursive: true });
}
