/**
 * Flow file throughput: write N flows with FlowWriter, read them back with readFlows, and time
 * `mitmdump -n -r FILE --set flow_detail=0` on a v17 copy of the same flows when mitmproxy is installed.
 *
 *   deno run -A scripts/io_bench.ts [N=100000]
 */
import { FlowWriter, readFlows } from "../lib/io/flowfile.ts";
import { Headers } from "../lib/http/headers.ts";
import { Request, Response } from "../lib/http/message.ts";
import { Client, Server } from "../lib/flow/connection.ts";
import { HTTPFlow } from "../lib/flow/flow.ts";

const N = Number(Deno.args[0] ?? 100_000);
const enc = new TextEncoder();

function makeFlow(i: number): HTTPFlow {
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

async function write(path: string, version: number): Promise<number> {
  const w = await FlowWriter.open(path, { version });
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await w.add(makeFlow(i));
  await w.close();
  return performance.now() - t0;
}

const dir = await Deno.makeTempDir();
try {
  const path = `${dir}/bench.mitm`;
  const tw = await write(path, 21);
  const size = (await Deno.stat(path)).size;
  console.log(
    `write v21: ${N} flows in ${(tw / 1000).toFixed(2)}s = ${Math.round(N / (tw / 1000))} flows/s ` +
      `(${(size / 1e6).toFixed(1)} MB, ${((size / 1e6) / (tw / 1000)).toFixed(1)} MB/s)`,
  );
  let t0 = performance.now();
  let n = 0;
  for await (const _ of readFlows(path)) n++;
  const tr = performance.now() - t0;
  console.log(`read  v21: ${n} flows in ${(tr / 1000).toFixed(2)}s = ${Math.round(n / (tr / 1000))} flows/s`);

  let mitmdump: string | null = null;
  try {
    Deno.statSync("/usr/bin/mitmdump");
    mitmdump = "/usr/bin/mitmdump";
  } catch { /* not installed */ }
  if (mitmdump) {
    // mitmproxy 8.x reads format 17 only
    const p17 = `${dir}/bench17.mitm`;
    const tw17 = await write(p17, 17);
    console.log(`write v17: ${Math.round(N / (tw17 / 1000))} flows/s`);
    t0 = performance.now();
    let m = 0;
    for await (const _ of readFlows(p17)) m++;
    const tr17 = performance.now() - t0;
    console.log(`read  v17 (ours, with migration): ${Math.round(m / (tr17 / 1000))} flows/s`);
    t0 = performance.now();
    const out = await new Deno.Command(mitmdump, {
      args: ["-n", "-q", "-r", p17, "--set", "flow_detail=0"],
      stdout: "null",
      stderr: "piped",
    }).output();
    const tm = performance.now() - t0;
    if (out.code !== 0) console.log("mitmdump failed:", new TextDecoder().decode(out.stderr).slice(0, 500));
    console.log(
      `mitmdump -n -r (v17): ${N} flows in ${(tm / 1000).toFixed(2)}s = ${
        Math.round(N / (tm / 1000))
      } flows/s ` +
        `(includes ~startup)`,
    );
    console.log(`ratio read (ours v17 / mitmdump): ${(tm / tr17).toFixed(1)}x faster`);
  } else {
    console.log("mitmdump not installed: skipping the comparison");
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
