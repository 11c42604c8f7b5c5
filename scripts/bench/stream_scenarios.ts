/**
 * Streaming scenarios: one 1 GiB download with curl, plain HTTP and through CONNECT+TLS, direct and
 * through mitmdeno (and mitmdump) with `stream_large_bodies=1m`. The row's rate is MB/s (not req/s) and
 * the RSS column's peak is the proxy's peak during the transfer. The origin is
 * `scripts/bench/stream_origin.ts` in its own process.
 *
 * @module
 */
import { findExecutable, spawnManaged } from "./process.ts";
import {
  MITMDENO_CMD,
  MITMDENO_LISTEN,
  MITMDUMP_CMD,
  MITMDUMP_LISTEN,
  resolveDeno,
  type RunContext,
  type Scenario,
  withListen,
} from "./scenarios.ts";
import type { WrkResult } from "./wrk.ts";

/** Bytes per streamed download. */
export const STREAM_BYTES = 1024 ** 3;

let originPromise: Promise<{ http: number; https: number; ca: string; dir: string }> | null = null;

/** The shared stream origin (started by the first scenario that needs it): its ports, CA file and dir. */
export function streamOrigin(
  ctx: RunContext,
): Promise<{ http: number; https: number; ca: string; dir: string }> {
  originPromise ??= (async () => {
    const dir = Deno.makeTempDirSync({ prefix: "mitmdeno-bench-stream-" });
    const proc = spawnManaged([
      Deno.execPath(),
      "run",
      "--allow-all",
      new URL("./stream_origin.ts", import.meta.url).pathname,
      "--dir",
      dir,
    ], { name: "stream-origin", cwd: ctx.repoRoot });
    const m = await proc.waitForLine(/^LISTENING (\d+) (\d+) (.+)$/, 30_000);
    return { http: Number(m[1]), https: Number(m[2]), ca: m[3], dir };
  })();
  return originPromise;
}

/**
 * Download `bytes` with curl from the stream origin (through `run.proxy` when set), or from `base`
 * (e.g. a reverse proxy in front of the origin); the result's `rps` is MB/s.
 */
export async function download(
  run: RunContext,
  tls: boolean,
  bytes: number,
  base?: string,
): Promise<WrkResult> {
  const o = await streamOrigin(run);
  const url = base
    ? `${base}/bytes/${bytes}`
    : tls
    ? `https://localhost:${o.https}/bytes/${bytes}`
    : `http://127.0.0.1:${o.http}/bytes/${bytes}`;
  const args = [
    "-sS",
    "--max-time",
    "300",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code} %{size_download} %{time_total}",
  ];
  if (tls) args.push(run.proxy || base ? "-k" : "--cacert", ...(run.proxy || base ? [] : [o.ca]));
  if (run.proxy) args.push("-x", `http://${run.proxy.host}:${run.proxy.port}`);
  const out = await new Deno.Command("curl", { args: [...args, url], stdout: "piped", stderr: "piped" })
    .output();
  const [code, size, seconds] = new TextDecoder().decode(out.stdout).trim().split(" ");
  const ok = out.success && code === "200" && Number(size) === bytes;
  if (!ok) throw new Error(`curl: ${code} ${size} bytes: ${new TextDecoder().decode(out.stderr).trim()}`);
  const s = Number(seconds);
  return {
    requests: 1,
    durationS: s,
    rps: bytes / s / 1e6,
    bytes,
    latencyUs: { mean: s * 1e6, stdev: 0, max: s * 1e6, p50: s * 1e6, p90: s * 1e6, p99: s * 1e6 },
    errors: { connect: 0, read: 0, write: 0, timeout: 0, status: 0 },
  };
}

/** A streaming scenario: `proxy` null for direct. The warm-up downloads 64 MiB, the measured run 1 GiB. */
export function streamScenario(
  name: string,
  proxy: "mitmdeno" | "mitmdump" | null,
  tls: boolean,
  opts: { default?: boolean } = {},
): Scenario {
  const confdir = () => `${Deno.env.get("TMPDIR") ?? "/tmp"}/mitmdeno-bench-${name}`;
  const streamArgs = ["--set", "stream_large_bodies=1m", "--set", `confdir=${confdir()}`];
  return {
    name,
    description: `1 GiB ${tls ? "HTTPS (CONNECT+TLS)" : "plain HTTP"} download, MB/s -> ${proxy ?? "direct"}`,
    default: opts.default,
    unit: "MB/s",
    rssIntervalMs: 50,
    unavailable(ctx) {
      if (!findExecutable("curl")) return "curl not found";
      if (proxy === "mitmdeno") {
        const cmd = resolveDeno(ctx.mitmdenoCmd ?? MITMDENO_CMD);
        return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not found`;
      }
      if (proxy === "mitmdump") {
        const cmd = ctx.mitmdumpCmd ?? MITMDUMP_CMD;
        return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not found`;
      }
      return undefined;
    },
    proxy: proxy === "mitmdeno"
      ? {
        command: (listen, ctx) =>
          resolveDeno(
            withListen(ctx.mitmdenoCmd ?? MITMDENO_CMD, listen, MITMDENO_LISTEN, [...streamArgs, "-k"]),
          ),
      }
      : proxy === "mitmdump"
      ? {
        command: (listen, ctx) =>
          withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN, [
            ...streamArgs,
            "--ssl-insecure",
          ]),
        readyTimeoutS: 60,
      }
      : undefined,
    target: (run) => ({
      url: run.proxy ? `http://${run.proxy.host}:${run.proxy.port}/` : "http://127.0.0.1/",
    }),
    measure: (run, _target, _durationS, phase) =>
      download(run, tls, phase === "measure" ? STREAM_BYTES : 64 * 1024 * 1024),
  };
}
