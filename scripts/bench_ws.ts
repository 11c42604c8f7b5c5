/**
 * WebSocket echo benchmark: `deno run -A --unstable-worker-options scripts/bench_ws.ts [--duration S]
 * [--connections N]`. An npm `ws` echo origin in this process; N `ws` clients, each through a CONNECT tunnel,
 * send a 64-byte text message and wait for its echo, for S seconds. Scenarios: direct, mitmdeno (the CLI, -q),
 * mitmdeno with a message-rewriting script (-s, sandboxed), mitmdump 8.1.1 (-q). Prints messages/s, p50/p99
 * round-trip latency and the proxy's RSS before and after. Loopback only.
 *
 * @module
 */

import { parseArgs } from "node:util";
import * as wsModule from "npm:ws@8.23.0";
import { startProxy } from "../tests/e2e/helpers.ts";
import { connectTunnel } from "../tests/e2e/tls_helpers.ts";

const { WebSocket, WebSocketServer } = wsModule as any;
const args = parseArgs({
  args: Deno.args,
  options: { duration: { type: "string" }, connections: { type: "string" } },
});
const DURATION = Number(args.values.duration ?? 5) * 1000;
const CONNS = Number(args.values.connections ?? 8);

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : 0;
}

async function run(proxyPort: number | null, wsPort: number) {
  const clients = await Promise.all(Array.from({ length: CONNS }, async () => {
    const tunnel = proxyPort ? await connectTunnel(proxyPort, `127.0.0.1:${wsPort}`) : null;
    const c = new WebSocket(`ws://127.0.0.1:${wsPort}/`, tunnel ? { createConnection: () => tunnel } : {});
    await new Promise((r, j) => (c.once("open", r), c.once("error", j)));
    return c;
  }));
  const lat: number[] = [];
  const msg = "x".repeat(64);
  const end = Date.now() + DURATION;
  await Promise.all(clients.map(async (c: any) => {
    while (Date.now() < end) {
      const t0 = performance.now();
      const got = new Promise((r) => c.once("message", r));
      c.send(msg);
      await got;
      lat.push(performance.now() - t0);
    }
  }));
  for (const c of clients) c.terminate();
  lat.sort((a, b) => a - b);
  return {
    rate: lat.length / (DURATION / 1000),
    p50: lat[Math.floor(lat.length / 2)],
    p99: lat[Math.floor(lat.length * 0.99)],
  };
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
await new Promise((r) => wss.on("listening", r));
wss.on("connection", (s: any) => s.on("message", (d: Uint8Array, b: boolean) => s.send(d, { binary: b })));
const wsPort = wss.address().port;
const dir = await Deno.makeTempDir();
const script = `${dir}/rewrite.ts`;
await Deno.writeTextFile(
  script,
  `import type { HTTPFlow } from "mitmdeno";\nexport function websocket_message(f: HTTPFlow) {\n  const m = f.websocket!.messages.at(-1)!;\n  m.text = m.text.replace("x", "y");\n}\n`,
);
const results: Record<string, { rate: number; p50: number; p99: number; rss?: string }> = {};
results.direct = await run(null, wsPort);
for (const [name, extra] of [["mitmdeno", []], ["mitmdeno+script", ["-s", script]]] as const) {
  const p = await startProxy(["-q", ...extra]);
  if (extra.length) await p.waitFor(/Loading script/);
  await run(p.port, wsPort); // warm-up
  const before = rss(p.pid);
  const r = await run(p.port, wsPort);
  results[name] = { ...r, rss: `${before.toFixed(0)} -> ${rss(p.pid).toFixed(0)} MiB` };
  await p.stop();
}
{
  const child = new Deno.Command("/usr/bin/mitmdump", {
    args: ["--listen-host", "127.0.0.1", "-p", "0", "-q"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // -q hides the listening line: find the port from /proc
  let port = 0;
  for (let i = 0; i < 100 && !port; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const out = new TextDecoder().decode(
      new Deno.Command("ss", { args: ["-ltnpH"], stdout: "piped" }).outputSync().stdout,
    );
    const m = new RegExp(`127\\.0\\.0\\.1:(\\d+)\\s.*pid=${child.pid},`).exec(out);
    if (m) port = Number(m[1]);
  }
  if (port) {
    await run(port, wsPort);
    results.mitmdump = await run(port, wsPort);
  }
  child.kill("SIGTERM");
  await child.output();
}
for (const [k, v] of Object.entries(results)) {
  console.log(
    `${k.padEnd(16)} ${v.rate.toFixed(0).padStart(7)} msg/s  p50 ${v.p50.toFixed(2)} ms  p99 ${
      v.p99.toFixed(2)
    } ms  ${v.rss ?? ""}`,
  );
}
const r = (a: string, b: string) =>
  results[a] && results[b] ? (results[a].rate / results[b].rate).toFixed(2) : "n/a";
console.log(
  `mitmdeno/mitmdump ${r("mitmdeno", "mitmdump")}x, script/no-script ${
    r("mitmdeno+script", "mitmdeno")
  }, mitmdeno/direct ${r("mitmdeno", "direct")}`,
);
wss.close();
await Deno.remove(dir, { recursive: true });
