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

/** Parse h2load's summary into the bench's result shape (`perMB`: rate in MB/s instead of req/s). */
export function parseH2load(out: string, perMB: boolean): WrkResult {
  const fin = /finished in ([\d.]+)s, ([\d.]+) req\/s, ([\d.]+)([KMG]?)B\/s/.exec(out);
  const req =
    /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/
      .exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!fin || !req) throw new Error(`unexpected h2load output: ${out.slice(-400)}`);
  const durationS = Number(fin[1]);
  const unit = { "": 1e-6, K: 1e-3, M: 1, G: 1e3 }[fin[4] as "" | "K" | "M" | "G"];
  const mbps = Number(fin[3]) * unit;
  const lat =
    /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(
      out,
    );
  const us = (v: string, u: string) => Number(v) * (u === "s" ? 1e6 : u === "ms" ? 1e3 : 1);
  return {
    requests: Number(req[3]),
    durationS,
    rps: perMB ? mbps : Number(fin[2]),
    bytes: Math.round(mbps * 1e6 * durationS),
    latencyUs: {
      mean: lat ? us(lat[5], lat[6]) : 0,
      stdev: lat ? us(lat[7], lat[8]) : 0,
      max: lat ? us(lat[3], lat[4]) : 0,
      p50: 0,
      p90: 0,
      p99: 0,
    },
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
  return parseH2load(text, big);
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
    description: `${big ? "100 MB download (MB/s)" : "h2load -c16 -m10, 1 KiB responses"}: h2load -> ${
      proxy ? `${proxy} (reverse, TLS both sides) -> ` : ""
    }h2 origin`,
    default: opts.default,
    unit: big ? "MB/s" : undefined,
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
