/**
 * Benchmark scenarios. A scenario says how to start the proxy under test (if any), what the load
 * generator should request, and optionally how to measure (default: wrk with the shared load
 * settings). To add one, append an object to {@linkcode defaultScenarios} (or build your own list
 * and pass it to `runBench` in `scripts/bench.ts`).
 *
 * Examples of future additions:
 * - a mitmdeno scenario with an addon: `mitmdenoScenario("mitmdeno+addon", ctx, ["-s", "addons/x.ts"])`
 * - HTTPS scenarios (tls_scenarios.ts): wrk cannot send CONNECT, so they supply their own
 *   {@linkcode Scenario.measure} (tls_load.ts, a separate load process using `node:tls`) returning the
 *   same {@linkcode WrkResult} shape (rps = connections/s for the fresh-connection scenarios).
 *
 * @module
 */

import { findExecutable, splitCommand } from "./process.ts";
import { streamScenario } from "./stream_scenarios.ts";
import { tlsScenario } from "./tls_scenarios.ts";
import { h2Scenario } from "./h2_scenarios.ts";
import { wsScenario } from "./ws_scenarios.ts";
import { socks5Scenario, upstreamScenario } from "./mode_scenarios.ts";
import { haproxyScenario, haproxyStreamScenario } from "./reference_scenarios.ts";
import type { WrkLoad, WrkResult, WrkTarget } from "./wrk.ts";
import { RUNTIME_FLAGS } from "../runtime_flags.ts";

/** Address of a listening server. */
export interface Address {
  host: string;
  port: number;
}

/** Settings shared by all scenarios of one bench run. */
export interface BenchContext {
  /** Repository root (cwd for mitmdeno). */
  repoRoot: string;
  /** The origin server all scenarios ultimately hit. */
  origin: Address;
  /** Load settings for the measured run. */
  load: WrkLoad;
  /** Override for the mitmdeno command (`--proxy-cmd`), already split into argv. */
  mitmdenoCmd?: string[];
  /** Override for the mitmdump command (`--mitmdump-cmd`), already split into argv. */
  mitmdumpCmd?: string[];
}

/** How to start a proxy process. */
export interface ProxySpec {
  /** argv that makes the proxy listen on `listen` (see {@linkcode withListen}). */
  command(listen: Address, ctx: BenchContext): string[];
  /** Working directory (default: repo root). */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Seconds to wait for the port to accept connections (default from `--ready-timeout`). */
  readyTimeoutS?: number;
  /**
   * After the warm-up, wait (at most {@linkcode SETTLE_MAX_S} s) until the proxy has no child processes
   * before measuring: mitmdeno type-checks a script in a `deno check` child at start-up (3-4 s and
   * ~260 MiB here), which would otherwise share the measured run's CPU and count in its RSS.
   */
  settleChildren?: boolean;
}

/** Longest wait for a proxy's start-up children (see {@linkcode ProxySpec.settleChildren}). */
export const SETTLE_MAX_S = 30;

/** Per-run information passed to {@linkcode Scenario.target} and {@linkcode Scenario.measure}. */
export interface RunContext extends BenchContext {
  /** Address of the started proxy, undefined for proxy-less scenarios. */
  proxy?: Address;
}

/** One benchmark scenario (one row of the result table). */
export interface Scenario {
  /** Unique short name; used by `--only`/`--skip` and by {@linkcode Target} comparisons. */
  name: string;
  /** One-line description. */
  description: string;
  /** Run when no `--only` is given (default true). */
  default?: boolean;
  /** What the rate column means for this scenario (default "req/s"; e.g. "MB/s"). */
  unit?: string;
  /** Interval of background RSS samples for the peak, for short measurements (default: the run's). */
  rssIntervalMs?: number;
  /** Proxy to start before measuring; undefined = load goes directly to the origin. */
  proxy?: ProxySpec;
  /** Reason this scenario cannot run here (missing binary/file), or undefined if it can. */
  unavailable?(ctx: BenchContext): string | undefined;
  /** What wrk should request. */
  target(run: RunContext): WrkTarget;
  /**
   * Custom measurement replacing wrk (e.g. CONNECT + TLS handshakes). Called for the warm-up and
   * the measured run with the respective duration.
   */
  measure?(
    run: RunContext,
    target: WrkTarget,
    durationS: number,
    phase: "warmup" | "measure",
  ): Promise<WrkResult>;
}

/** Target comparing two scenarios' throughput: `rps(numerator) / rps(denominator) >= min`. */
export interface Target {
  label: string;
  numerator: string;
  denominator: string;
  min: number;
}

/** Base URL of an address. */
export function urlOf(a: Address): string {
  return `http://${a.host}:${a.port}/`;
}

/**
 * wrk target going through an HTTP proxy at `proxy` to `origin` using an absolute-form request
 * target (`GET http://origin/ HTTP/1.1`) and a matching Host header.
 */
export function viaProxy(proxy: Address, origin: Address, path = "/"): WrkTarget {
  return {
    url: urlOf(proxy),
    requestTarget: `http://${origin.host}:${origin.port}${path}`,
    host: `${origin.host}:${origin.port}`,
  };
}

/**
 * Instantiate a user-supplied command template: `{host}`/`{port}` placeholders are replaced; if the
 * template contains no `{port}`, `defaultListenArgs` are appended. `extraArgs` always go last.
 */
export function withListen(
  template: string[],
  listen: Address,
  defaultListenArgs: string[],
  extraArgs: string[] = [],
): string[] {
  const hasPort = template.some((a) => a.includes("{port}"));
  const sub = (a: string) => a.replaceAll("{host}", listen.host).replaceAll("{port}", String(listen.port));
  return [...template.map(sub), ...(hasPort ? [] : defaultListenArgs.map(sub)), ...extraArgs];
}

/** Default mitmdeno command (run from the repo root). */
export const MITMDENO_CMD = ["deno", "run", ...RUNTIME_FLAGS, "--allow-all", "main.ts"];
/** Listen/quiet arguments appended to the mitmdeno command. */
export const MITMDENO_LISTEN = ["--listen-host", "{host}", "--listen-port", "{port}", "-q"];
/** Default mitmdump command. */
export const MITMDUMP_CMD = ["mitmdump"];
/** Listen/quiet arguments appended to the mitmdump command. */
export const MITMDUMP_LISTEN = ["--listen-host", "{host}", "-p", "{port}", "-q"];

/** Replace a leading bare `deno` with the running Deno binary, so PATH does not matter. */
export function resolveDeno(argv: string[]): string[] {
  return argv[0] === "deno" ? [Deno.execPath(), ...argv.slice(1)] : argv;
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Load goes straight to the origin (the upper bound). */
export const directScenario: Scenario = {
  name: "direct",
  description: "wrk -> origin (no proxy)",
  target: (run) => ({ url: urlOf(run.origin) }),
};

/**
 * mitmdeno as an HTTP proxy (absolute-form requests), optionally with extra CLI args such as
 * `["-s", "addons/examples/add_header.ts"]`; files among `requiredFiles` (relative to the repo root)
 * must exist or the scenario is skipped.
 */
export function mitmdenoScenario(
  name: string,
  extraArgs: string[] = [],
  opts: { description?: string; default?: boolean; requiredFiles?: string[] } = {},
): Scenario {
  return {
    name,
    description: opts.description ??
      `wrk -> mitmdeno${extraArgs.length ? ` ${extraArgs.join(" ")}` : ""} -> origin`,
    default: opts.default,
    unavailable(ctx) {
      const cmd = resolveDeno(ctx.mitmdenoCmd ?? MITMDENO_CMD);
      if (!findExecutable(cmd[0])) return `${cmd[0]} not found`;
      const files = [...(ctx.mitmdenoCmd ? [] : ["main.ts"]), ...(opts.requiredFiles ?? [])];
      const missing = files.filter((f) => !fileExists(`${ctx.repoRoot}/${f}`));
      return missing.length ? `missing ${missing.join(", ")} (use --proxy-cmd to override)` : undefined;
    },
    proxy: {
      command: (listen, ctx) =>
        resolveDeno(withListen(ctx.mitmdenoCmd ?? MITMDENO_CMD, listen, MITMDENO_LISTEN, extraArgs)),
      settleChildren: extraArgs.includes("-s"),
    },
    target: (run) => viaProxy(run.proxy!, run.origin),
  };
}

/** mitmdump (Python mitmproxy) in regular mode, as the baseline. */
export function mitmdumpScenario(
  name = "mitmdump",
  extraArgs: string[] = [],
  opts: { default?: boolean } = {},
): Scenario {
  return {
    name,
    description: `wrk -> mitmdump${extraArgs.length ? ` ${extraArgs.join(" ")}` : ""} -> origin`,
    default: opts.default,
    unavailable(ctx) {
      const cmd = ctx.mitmdumpCmd ?? MITMDUMP_CMD;
      return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not installed`;
    },
    proxy: {
      command: (listen, ctx) =>
        withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN, extraArgs),
      readyTimeoutS: 60, // Python startup can be slow on a cold cache
    },
    target: (run) => viaProxy(run.proxy!, run.origin),
  };
}

/** The Python equivalent of addons/examples/add_header.ts, for the mitmdump-with-script baseline. */
export const MITMDUMP_ADD_HEADER_PY = `def response(flow):
    flow.response.headers["newheader"] = "foo"
`;

/** mitmdump running {@linkcode MITMDUMP_ADD_HEADER_PY} (written to a temp file when the scenario starts). */
export function mitmdumpAddonScenario(name = "mitmdump-addon"): Scenario {
  const base = mitmdumpScenario(name);
  let script: string | undefined;
  return {
    ...base,
    description: "wrk -> mitmdump -s add_header.py (response hook adds a header) -> origin",
    proxy: {
      ...base.proxy!,
      command(listen, ctx) {
        if (!script) {
          script = Deno.makeTempFileSync({ prefix: "mitmdeno-bench-", suffix: ".py" });
          Deno.writeTextFileSync(script, MITMDUMP_ADD_HEADER_PY);
        }
        return [...base.proxy!.command(listen, ctx), "-s", script];
      },
    },
  };
}

/** The scenarios `deno task bench` knows about, in run order. */
export function defaultScenarios(): Scenario[] {
  return [
    directScenario,
    mitmdenoScenario("mitmdeno"),
    mitmdumpScenario("mitmdump"),
    haproxyScenario("haproxy"),
    // in the default set: the two "with a script" targets (and #11's "the script scenario must not regress")
    // would otherwise read N/A in every plain `deno task bench`
    mitmdenoScenario("mitmdeno-addon", ["-s", "addons/examples/add_header.ts"], {
      requiredFiles: ["addons/examples/add_header.ts"],
    }),
    mitmdumpAddonScenario("mitmdump-addon"),
    tlsScenario("mitmdeno-tls-fresh", "mitmdeno", "fresh"),
    tlsScenario("mitmdump-tls-fresh", "mitmdump", "fresh"),
    tlsScenario("mitmdeno-https-ka", "mitmdeno", "keepalive"),
    tlsScenario("mitmdump-https-ka", "mitmdump", "keepalive"),
    upstreamScenario("mitmdeno-upstream", "mitmdeno"),
    upstreamScenario("mitmdump-upstream", "mitmdump"),
    socks5Scenario("mitmdeno-socks5", "mitmdeno"),
    socks5Scenario("mitmdump-socks5", "mitmdump"),
    streamScenario("stream-direct", null, false),
    streamScenario("stream-mitmdeno", "mitmdeno", false),
    streamScenario("stream-direct-tls", null, true),
    streamScenario("stream-mitmdeno-tls", "mitmdeno", true),
    streamScenario("stream-mitmdump-tls", "mitmdump", true, { default: false }),
    haproxyStreamScenario("stream-haproxy", false),
    haproxyStreamScenario("stream-haproxy-tls", true),
    h2Scenario("h2-direct", null, false),
    h2Scenario("mitmdeno-h2", "mitmdeno", false),
    h2Scenario("mitmdump-h2", "mitmdump", false),
    h2Scenario("h2-direct-100mb", null, true),
    h2Scenario("mitmdeno-h2-100mb", "mitmdeno", true),
    h2Scenario("mitmdump-h2-100mb", "mitmdump", true, { default: false }),
    wsScenario("ws-direct", null),
    wsScenario("mitmdeno-ws", "mitmdeno"),
    wsScenario("mitmdeno-ws-script", "mitmdeno", { script: true }),
    wsScenario("mitmdump-ws", "mitmdump"),
  ];
}

/** The issue's performance targets. */
export const defaultTargets: Target[] = [
  { label: "mitmdeno-h2 >= 15x mitmdump-h2", numerator: "mitmdeno-h2", denominator: "mitmdump-h2", min: 15 },
  {
    label: "mitmdeno-h2 >= 70% of mitmdeno-https-ka",
    numerator: "mitmdeno-h2",
    denominator: "mitmdeno-https-ka",
    min: 0.7,
  },
  {
    label: "h2 100 MB streamed download >= 50% of direct MB/s",
    numerator: "mitmdeno-h2-100mb",
    denominator: "h2-direct-100mb",
    min: 0.5,
  },
  {
    label: "streamed HTTPS download >= 50% of direct MB/s",
    numerator: "stream-mitmdeno-tls",
    denominator: "stream-direct-tls",
    min: 0.5,
  },
  {
    label: "streamed plain download >= 70% of direct MB/s",
    numerator: "stream-mitmdeno",
    denominator: "stream-direct",
    min: 0.7,
  },
  {
    label: "with a script >= 60% of no-script req/s",
    numerator: "mitmdeno-addon",
    denominator: "mitmdeno",
    min: 0.6,
  },
  {
    label: "with a script >= 10x mitmdump with a script",
    numerator: "mitmdeno-addon",
    denominator: "mitmdump-addon",
    min: 10,
  },
  { label: "mitmdeno >= 15x mitmdump", numerator: "mitmdeno", denominator: "mitmdump", min: 15 },
  { label: "mitmdeno >= 30% of direct", numerator: "mitmdeno", denominator: "direct", min: 0.3 },
  {
    label: "fresh CONNECT+TLS+GET/s >= 4x mitmdump",
    numerator: "mitmdeno-tls-fresh",
    denominator: "mitmdump-tls-fresh",
    min: 4,
  },
  {
    label: "upstream mode req/s >= 25x mitmdump upstream",
    numerator: "mitmdeno-upstream",
    denominator: "mitmdump-upstream",
    min: 25,
  },
  {
    label: "socks5 mode req/s >= 25x mitmdump socks5",
    numerator: "mitmdeno-socks5",
    denominator: "mitmdump-socks5",
    min: 25,
  },
  {
    label: "keep-alive HTTPS req/s >= 10x mitmdump",
    numerator: "mitmdeno-https-ka",
    denominator: "mitmdump-https-ka",
    min: 10,
  },
  {
    label: "WebSocket echo msg/s >= 20x mitmdump",
    numerator: "mitmdeno-ws",
    denominator: "mitmdump-ws",
    min: 20,
  },
  {
    label: "WebSocket with a rewriting script >= 60% of no-script msg/s",
    numerator: "mitmdeno-ws-script",
    denominator: "mitmdeno-ws",
    min: 0.6,
  },
];

/** Parse a `--proxy-cmd` style string into argv (quotes honoured). */
export function parseCommandFlag(s: string | undefined): string[] | undefined {
  if (s === undefined || s.trim() === "") return undefined;
  return splitCommand(s);
}
