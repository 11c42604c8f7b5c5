/**
 * HTTP/2 benchmark scenarios, with h2load (it cannot use a forward proxy, so the proxies run as reverse
 * proxies with TLS on both sides: h2load -> TLS h2 -> proxy -> TLS h2 -> origin): small responses with
 * `-c16 -m10` (req/s), and one 100 MB download (MB/s), directly and through mitmdeno and mitmdump in the
 * same run. The origin (`h2_origin.ts`) runs in its own process.
 * @module
 */
import { findExecutable, spawnManaged } from "./process.ts";
import type { RunContext, Scenario } from "./scenarios.ts";
import {
  MITMDENO_CMD,
  MITMDENO_LISTEN,
  MITMDUMP_CMD,
  MITMDUMP_LISTEN,
  resolveDeno,
  withListen,
} from "./scenarios.ts";
import type { WrkResult } from "./wrk.ts";

let originPromise: Promise<{ port: number }> | null = null;
let tmpRoot: string | null = null;

function tmp(): string {
  tmpRoot ??= Deno.makeTempDirSync({ prefix: "mitmdeno-bench-h2-" });
  return tmpRoot;
}

/** Start the h2 origin once per bench run (stopped by the runner's stopAll). */
function h2Origin(run: RunContext): Promise<{ port: number }> {
  originPromise ??= (async () => {
    const proc = spawnManaged([
      Deno.execPath(),
      "run",
      "--allow-all",
      new URL("./h2_origin.ts", import.meta.url).pathname,
      "--dir",
      `${tmp()}/origin`,
      "--size",
      "1024",
      "--port",
      String(originPortNow()),
    ], { name: "h2-origin", cwd: run.repoRoot });
    const m = await proc.waitForLine(/^LISTENING (\d+) (.+)$/, 30_000);
    return { port: Number(m[1]) };
  })();
  return originPromise;
}

const BIG = 100 * 1024 * 1024;

const UNIT_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };
const DURATION = String.raw`([\d.]+)(us|ms|s|m|h)`;

/** A duration as h2load prints it ("212.38ms", "2.00s", "43us", "0us") in microseconds. */
export function parseH2loadDuration(v: string, unit: string): number {
  const f = UNIT_US[unit];
  if (f === undefined) throw new Error(`unknown h2load time unit ${unit}`);
  return Number(v) * f;
}

/**
 * A size as h2load prints it in its traffic line: `100.00MB (104857600)`. The byte count in parentheses is
 * exact; without it (older h2load) the value is scaled by 1024 per unit (h2load's "MB" is 2^20 bytes).
 */
function trafficBytes(line: string, what: "total" | "headers" | "data"): number | undefined {
  const m = new RegExp(String.raw`([\d.]+)([KMGT]?)B(?: \((\d+)\))? ${what}`).exec(line);
  if (!m) return undefined;
  if (m[3] !== undefined) return Number(m[3]);
  return Math.round(Number(m[1]) * 1024 ** " KMGT".indexOf(m[2] || " "));
}

/**
 * Parse h2load's summary into the bench's result shape. `perMB`: the rate is the response bodies' MB/s
 * (10^6 bytes, like the streaming scenarios) computed from the exact data byte count and the run's time,
 * instead of req/s, and `bytes` counts the bodies only (else all traffic). Throws when the summary is
 * missing.
 */
export function parseH2load(out: string, perMB: boolean): WrkResult {
  const fin = new RegExp(String.raw`finished in ${DURATION}, ([\d.]+) req/s`).exec(out);
  const req =
    /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/
      .exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!fin || !req) throw new Error(`unexpected h2load output: ${out.slice(-400)}`);
  const durationS = parseH2loadDuration(fin[1], fin[2]) / 1e6;
  const traffic = /^traffic: .*$/m.exec(out)?.[0] ?? "";
  const total = trafficBytes(traffic, "total") ?? 0;
  const data = trafficBytes(traffic, "data") ?? 0;
  const d = String.raw`\s+${DURATION}`;
  const lat = new RegExp(String.raw`time for request:${d}${d}${d}${d}`).exec(out);
  const us = (i: number) => lat ? parseH2loadDuration(lat[i], lat[i + 1]) : 0;
  return {
    requests: Number(req[3]),
    durationS,
    rps: perMB ? (durationS > 0 ? data / durationS / 1e6 : 0) : Number(fin[3]),
    bytes: perMB ? data : total,
    // h2load prints no percentiles; for the one-request download its time stands for them (as curl's does)
    latencyUs: perMB && Number(req[3]) === 1
      ? { mean: us(5), stdev: 0, max: us(3), p50: us(5), p90: us(5), p99: us(5) }
      : { mean: us(5), stdev: us(7), max: us(3), p50: 0, p90: 0, p99: 0 },
    errors: {
      connect: 0,
      read: Number(req[5]),
      write: 0,
      timeout: Number(req[6]),
      status: codes ? Number(codes[3]) + Number(codes[4]) : Number(req[4]),
    },
  };
}

async function runH2load(
  url: string,
  big: boolean,
  durationS: number,
  connections: number,
): Promise<WrkResult> {
  const args = big
    ? ["-n", "1", "-c", "1", url]
    : ["-c", String(connections), "-m", "10", "-D", String(Math.max(1, Math.round(durationS))), url];
  const out = await new Deno.Command("h2load", { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0 && !/finished in/.test(text)) {
    throw new Error(`h2load failed: ${new TextDecoder().decode(out.stderr).slice(-400)} ${text.slice(-400)}`);
  }
  const r = parseH2load(text, big);
  // a download cut short still "succeeds" for h2load when the stream ended cleanly: count it as an error
  if (big && r.bytes !== BIG * r.requests) r.errors.read += 1;
  return r;
}

/** An HTTP/2 scenario: `proxy` null for h2load straight to the origin; `big`: the 100 MB download. */
export function h2Scenario(
  name: string,
  proxy: "mitmdeno" | "mitmdump" | null,
  big: boolean,
  opts: { default?: boolean } = {},
): Scenario {
  const target = (run: RunContext) =>
    proxy ? `https://127.0.0.1:${run.proxy!.port}` : `https://127.0.0.1:${run.origin.port}`;
  return {
    name,
    description: `${
      big ? "100 MB download (MB/s, stream_large_bodies=1m)" : "h2load -c16 -m10, 1 KiB responses"
    }: h2load -> ${proxy ? `${proxy} (reverse, TLS both sides) -> ` : ""}h2 origin`,
    default: opts.default,
    unit: big ? "MB/s" : undefined,
    // the download takes well under a second: sample RSS often enough to see its peak
    rssIntervalMs: big ? 50 : undefined,
    unavailable(ctx) {
      if (!findExecutable("h2load")) return "h2load not found (apt-get install nghttp2-client)";
      if (proxy === "mitmdump") {
        const cmd = ctx.mitmdumpCmd ?? MITMDUMP_CMD;
        return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not found`;
      }
      return undefined;
    },
    proxy: proxy === null ? undefined : {
      command: (listen, ctx) => {
        // the origin's port is picked before it runs (it starts with the first measurement)
        const port = originPortNow();
        // connection_strategy=lazy for both: with eager, mitmdump 8.1 connects first, sees the h2 origin's
        // SETTINGS frame arrive before the client said anything ("a server greeting") and relays the
        // connection as raw TCP without ALPN, so h2load gets nothing (0 req/s); lazy, it serves h2
        const mode = ["--mode", `reverse:https://localhost:${port}`, "--set", "connection_strategy=lazy"];
        // the download streams (as in the streaming scenarios): its RSS peak shows the flow-control windows
        // bound memory, not that 100 MB fit in it
        if (big) mode.push("--set", "stream_large_bodies=1m");
        return proxy === "mitmdeno"
          ? resolveDeno(withListen(ctx.mitmdenoCmd ?? MITMDENO_CMD, listen, MITMDENO_LISTEN, [
            ...mode,
            "--set",
            `confdir=${tmp()}/${name}`,
            "-k",
          ]))
          : withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN, [
            ...mode,
            "--set",
            `confdir=${tmp()}/${name}`,
            "--ssl-insecure",
          ]);
      },
      readyTimeoutS: proxy === "mitmdump" ? 60 : undefined,
    },
    target: (run) => ({ url: target(run) }),
    async measure(run, _t, durationS) {
      const origin = await h2Origin(run);
      const base = proxy ? target(run) : `https://127.0.0.1:${origin.port}`;
      return runH2load(big ? `${base}/big?n=${BIG}` : `${base}/`, big, durationS, run.load.connections);
    },
  };
}

let originPort: number | null = null;

/** A free loopback port for the origin, picked once. */
function originPortNow(): number {
  if (originPort === null) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    originPort = (l.addr as Deno.NetAddr).port;
    l.close();
  }
  return originPort;
}
