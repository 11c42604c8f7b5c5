/**
 * Running `wrk` and parsing its results.
 *
 * Results are taken from a Lua `done()` callback that prints one machine-readable line
 * (`WRK_RESULT {json}`); if that line is missing (e.g. a custom script without the callback) the
 * human-readable `--latency` output is parsed instead. Both parsers are exported for tests.
 *
 * Proxying: wrk has no proxy option, so to go through an HTTP proxy, point wrk at the proxy and set
 * {@linkcode WrkTarget.requestTarget} to the absolute-form URL of the origin
 * (`GET http://127.0.0.1:ORIGIN/ HTTP/1.1`) plus a matching `Host` header — exactly what a browser
 * configured with an HTTP proxy sends for plain-HTTP requests.
 *
 * @module
 */

import { findExecutable, spawnManaged } from "./process.ts";

/** Marker prefix of the JSON line printed by the generated Lua `done()` callback. */
export const RESULT_MARKER = "WRK_RESULT ";

/** What wrk should request. */
export interface WrkTarget {
  /** URL wrk connects to, e.g. `http://127.0.0.1:8080/` (the proxy, or the origin for direct runs). */
  url: string;
  /** Request target sent on the request line; absolute-form (`http://host:port/path`) for proxies. */
  requestTarget?: string;
  /** Value of the `Host` header (defaults to wrk's: the host:port of `url`). */
  host?: string;
  /** HTTP method (default GET). */
  method?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Request body. */
  body?: string;
}

/** Load parameters for one wrk run. */
export interface WrkLoad {
  /** Concurrent connections (`-c`). */
  connections: number;
  /** Threads (`-t`). */
  threads: number;
  /** Duration in seconds (`-d`). */
  durationS: number;
  /** Per-request socket timeout in seconds (`--timeout`, default 5). */
  timeoutS?: number;
}

/** wrk's error counters (`Socket errors:` line and `Non-2xx or 3xx responses:`). */
export interface WrkErrors {
  connect: number;
  read: number;
  write: number;
  timeout: number;
  /** Responses with status >= 400 (wrk counts these as "Non-2xx or 3xx"). */
  status: number;
}

/** Parsed result of a wrk run. Latencies are in microseconds. */
export interface WrkResult {
  requests: number;
  durationS: number;
  /** Requests per second (requests / duration). */
  rps: number;
  bytes: number;
  latencyUs: { mean: number; stdev: number; max: number; p50: number; p90: number; p99: number };
  errors: WrkErrors;
}

/** Sum of all error counters. */
export function totalErrors(e: WrkErrors): number {
  return e.connect + e.read + e.write + e.timeout + e.status;
}

function luaString(s: string): string {
  return JSON.stringify(s); // JSON string escapes are valid Lua string escapes for our inputs
}

/**
 * Build the Lua script for `target`: request line/header overrides plus a `done()` callback that
 * prints the summary as one `WRK_RESULT {json}` line.
 */
export function buildLuaScript(target: WrkTarget): string {
  const lines: string[] = [];
  if (target.requestTarget) lines.push(`wrk.path = ${luaString(target.requestTarget)}`);
  if (target.method) lines.push(`wrk.method = ${luaString(target.method)}`);
  if (target.body !== undefined) lines.push(`wrk.body = ${luaString(target.body)}`);
  if (target.host) lines.push(`wrk.headers["Host"] = ${luaString(target.host)}`);
  for (const [k, v] of Object.entries(target.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  }
  lines.push(`
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '${RESULT_MARKER}{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"latency_us":{"mean":%.2f,"stdev":%.2f,"max":%d,"p50":%d,"p90":%d,"p99":%d},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status))
end
`);
  return lines.join("\n");
}

/** Parse the `WRK_RESULT {json}` line printed by {@linkcode buildLuaScript}'s `done()`; undefined if absent. */
export function parseResultLine(stdout: string): WrkResult | undefined {
  const line = stdout.split("\n").find((l) => l.startsWith(RESULT_MARKER));
  if (!line) return undefined;
  const j = JSON.parse(line.slice(RESULT_MARKER.length));
  const durationS = j.duration_us / 1e6;
  return {
    requests: j.requests,
    durationS,
    rps: durationS > 0 ? j.requests / durationS : 0,
    bytes: j.bytes,
    latencyUs: { ...j.latency_us },
    errors: { ...j.errors },
  };
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };
const SIZE: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** Parse a wrk duration such as `512.00us`, `1.50ms`, `2.00s`, `1.00m` into microseconds. */
export function parseWrkTime(s: string): number {
  const m = s.trim().match(/^([\d.]+)(us|ms|s|m|h)$/);
  if (!m) throw new Error(`cannot parse wrk time: ${JSON.stringify(s)}`);
  return Number(m[1]) * UNIT_US[m[2]];
}

/** Parse a wrk duration such as `10.01s` or `1.00m` into seconds. */
function parseSeconds(s: string): number {
  return parseWrkTime(s) / 1e6;
}

/**
 * Parse wrk's human-readable output (run with `--latency`). Percentiles come from the
 * "Latency Distribution" block (p90 falls back to 0 if absent); mean/stdev/max from "Thread Stats".
 */
export function parseWrkText(stdout: string): WrkResult {
  const reqLine = stdout.match(/^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read/m);
  if (!reqLine) throw new Error(`unrecognised wrk output:\n${stdout}`);
  const requests = Number(reqLine[1]);
  const durationS = parseSeconds(reqLine[2]);
  const bytes = Math.round(Number(reqLine[3]) * (SIZE[reqLine[4]] ?? 1));
  const lat = stdout.match(/^\s*Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)/m);
  const pct = (p: number) => {
    const m = stdout.match(new RegExp(`^\\s*${p}%\\s+([\\d.]+\\w+)`, "m"));
    return m ? parseWrkTime(m[1]) : 0;
  };
  const sock = stdout.match(
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
  );
  const non2xx = stdout.match(/Non-2xx or 3xx responses: (\d+)/);
  const rpsLine = stdout.match(/^Requests\/sec:\s+([\d.]+)/m);
  return {
    requests,
    durationS,
    rps: rpsLine ? Number(rpsLine[1]) : durationS > 0 ? requests / durationS : 0,
    bytes,
    latencyUs: {
      mean: lat ? parseWrkTime(lat[1]) : 0,
      stdev: lat ? parseWrkTime(lat[2]) : 0,
      max: lat ? parseWrkTime(lat[3]) : 0,
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
    },
    errors: {
      connect: sock ? Number(sock[1]) : 0,
      read: sock ? Number(sock[2]) : 0,
      write: sock ? Number(sock[3]) : 0,
      timeout: sock ? Number(sock[4]) : 0,
      status: non2xx ? Number(non2xx[1]) : 0,
    },
  };
}

/** Parse wrk stdout: the `WRK_RESULT` JSON line if present, else the `--latency` text. */
export function parseWrkOutput(stdout: string): WrkResult {
  return parseResultLine(stdout) ?? parseWrkText(stdout);
}

/** Path of the wrk binary (`$WRK` or `wrk` on PATH), or undefined if not installed. */
export function findWrk(): string | undefined {
  const env = Deno.env.get("WRK");
  return env ? findExecutable(env) : findExecutable("wrk");
}

/**
 * Run wrk against `target` with `load`. Writes the generated Lua script to a temp file, kills wrk if
 * it overruns the duration by `graceS` seconds, and throws (with wrk's output) on failure. `prefix` runs wrk
 * under another command.
 */
export async function runWrk(
  target: WrkTarget,
  load: WrkLoad,
  opts: { wrk?: string; graceS?: number; prefix?: string[] } = {},
): Promise<WrkResult & { stdout: string }> {
  const wrk = opts.wrk ?? findWrk();
  if (!wrk) throw new Error("wrk not found on PATH (apt-get install wrk)");
  const script = await Deno.makeTempFile({ prefix: "mitmdeno-bench-", suffix: ".lua" });
  try {
    await Deno.writeTextFile(script, buildLuaScript(target));
    const args = [
      "-t",
      String(load.threads),
      "-c",
      String(load.connections),
      "-d",
      `${load.durationS}s`,
      "--timeout",
      `${load.timeoutS ?? 5}s`,
      "--latency",
      "-s",
      script,
      target.url,
    ];
    const limitMs = (load.durationS + (opts.graceS ?? 30)) * 1000;
    // Managed (process-group, registered) so stopAll()/signal cleanup also reaps wrk.
    // `prefix`: a command wrk runs under (e.g. proxychains4, which makes its connections go through SOCKS5)
    const proc = spawnManaged([...(opts.prefix ?? []), wrk, ...args], { name: "wrk", pipeStdin: false });
    let timer: ReturnType<typeof setTimeout> | undefined = undefined;
    const status = await Promise.race([
      proc.status,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), limitMs)),
    ]);
    clearTimeout(timer);
    if (!status) await proc.stop(1000);
    const stdout = proc.stdoutTail();
    const stderr = proc.stderrTail();
    if (!status) throw new Error(`wrk did not finish within ${limitMs} ms\n${stdout}${stderr}`);
    if (!status.success) throw new Error(`wrk failed (code ${status.code}): ${stderr || stdout}`);
    try {
      return { ...parseWrkOutput(stdout), stdout };
    } catch (e) {
      throw new Error(`${(e as Error).message}\nstderr: ${stderr}`);
    }
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}
