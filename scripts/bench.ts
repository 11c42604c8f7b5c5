/**
 * mitmdeno throughput benchmark: `deno task bench [options]`.
 *
 * Starts a 1 KiB-response origin in a separate process, then for each scenario (direct, mitmdeno,
 * mitmdump, ...) starts the proxy, warms up and runs wrk (keep-alive, absolute-form requests through
 * the proxy), samples the proxy's RSS, and prints req/s, p50/p99 latency, errors, memory growth, the
 * mitmdeno/direct and mitmdeno/mitmdump ratios and the project's targets. Loopback only.
 *
 * Scenarios live in `scripts/bench/scenarios.ts`; reusable pieces in `scripts/bench/*.ts`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { installSignalCleanup, stopAll } from "./bench/process.ts";
import { type BenchReport, evaluateTargets, formatReport, type Ratio, ratio } from "./bench/report.ts";
import { runBench } from "./bench/runner.ts";
import { defaultScenarios, defaultTargets, parseCommandFlag, type Scenario } from "./bench/scenarios.ts";
import { findWrk } from "./bench/wrk.ts";

const USAGE = `Usage: deno task bench [options]

  --duration S        measured seconds per scenario (default 10)
  --warmup S          warm-up seconds per scenario, 0 to disable (default 2)
  --connections N     wrk connections (default 16)
  --threads N         wrk threads (default 2)
  --body-size BYTES   origin response body size (default 1024)
  --only a,b          run only these scenarios (also enables non-default ones)
  --skip a,b          skip these scenarios
  --list              list scenarios and exit
  --proxy-cmd CMD     command for mitmdeno, e.g. "deno run -A main.ts"; {host}/{port} placeholders,
                      else "--listen-host H --listen-port P -q" is appended
  --mitmdump-cmd CMD  command for mitmdump (same rules; appended: "--listen-host H -p P -q")
  --baseline DIR      also run every selected mitmdeno scenario from DIR (another checkout, e.g.
                      \`git worktree add /tmp/base main\`), each right after ours, as "base:NAME",
                      and report NAME / base:NAME: old and new code compared in one run
  --rounds N          run the selected scenarios N times round-robin (default 1); each row is then
                      its median round, each ratio the median of the rounds' ratios: this VM's speed
                      drifts by +-15% within minutes, and a paired median tells a real change from it
  --ready-timeout S   seconds to wait for a proxy to listen (default 30)
  --json FILE         also write results as JSON
  --strict            exit 1 if a target is MISS or N/A
  -h, --help          this help
`;

function num(v: string | undefined, name: string, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got ${v}`);
  return n;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(",").map((s) => s.trim()).filter(Boolean);
}

/** `s` run from the checkout at `dir` (same arguments, paths relative to that checkout). */
function baselineOf(s: Scenario, dir: string): Scenario {
  const inDir = <T extends { repoRoot: string }>(ctx: T): T => ({ ...ctx, repoRoot: dir });
  return {
    ...s,
    name: `base:${s.name}`,
    description: `${s.description} (from ${dir})`,
    unavailable: s.unavailable && ((ctx) => s.unavailable!(inDir(ctx))),
    proxy: s.proxy &&
      { ...s.proxy, cwd: dir, command: (listen, ctx) => s.proxy!.command(listen, inDir(ctx)) },
    target: (run) => s.target(inDir(run)),
    measure: s.measure && ((run, target, d, phase) => s.measure!(inDir(run), target, d, phase)),
  };
}

async function gitRev(cwd: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], cwd, stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string" },
      warmup: { type: "string" },
      connections: { type: "string" },
      threads: { type: "string" },
      "body-size": { type: "string" },
      only: { type: "string" },
      skip: { type: "string" },
      list: { type: "boolean" },
      "proxy-cmd": { type: "string" },
      "mitmdump-cmd": { type: "string" },
      baseline: { type: "string" },
      "ready-timeout": { type: "string" },
      rounds: { type: "string" },
      json: { type: "string" },
      strict: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const all = defaultScenarios();
  if (values.list) {
    for (const s of all) {
      console.log(`${s.name.padEnd(16)} ${s.default === false ? "(opt-in) " : ""}${s.description}`);
    }
    return 0;
  }
  const durationS = num(values.duration, "duration", 10, 1);
  const warmupS = num(values.warmup, "warmup", 2, 0);
  const connections = num(values.connections, "connections", 16, 1);
  const threads = num(values.threads, "threads", 2, 1);
  if (threads > connections) throw new Error("--threads must not exceed --connections");
  const bodySize = num(values["body-size"], "body-size", 1024, 0);
  const readyTimeoutS = num(values["ready-timeout"], "ready-timeout", 30, 1);
  const rounds = num(values.rounds, "rounds", 1, 1);
  if (!Number.isInteger(rounds)) throw new Error(`--rounds: expected a whole number, got ${values.rounds}`);

  const only = list(values.only);
  const skip = new Set(list(values.skip) ?? []);
  const unknown = [...(only ?? []), ...skip].filter((n) => !all.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(", ")} (see --list)`);
  let scenarios = all.filter((s) =>
    (only ? only.includes(s.name) : s.default !== false) && !skip.has(s.name)
  );
  const baseline = values.baseline?.replace(/\/$/, "");
  if (baseline) {
    scenarios = scenarios.flatMap((s) => s.name.startsWith("mitmdeno") ? [s, baselineOf(s, baseline)] : [s]);
  }

  const wrk = findWrk();
  if (!wrk) throw new Error("wrk not found on PATH (apt-get install wrk)");

  const repoRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const load = { connections, threads, durationS };
  const removeSignals = installSignalCleanup();
  let report: BenchReport;
  try {
    const { results, origin } = await runBench(scenarios, {
      repoRoot,
      load,
      mitmdenoCmd: parseCommandFlag(values["proxy-cmd"]),
      mitmdumpCmd: parseCommandFlag(values["mitmdump-cmd"]),
    }, { warmupS, readyTimeoutS, bodySize, wrk, rounds });
    const ratios: Ratio[] = [
      { label: "mitmdeno / direct", numerator: "mitmdeno", denominator: "direct" },
      { label: "mitmdeno / mitmdump", numerator: "mitmdeno", denominator: "mitmdump" },
      { label: "mitmdump / direct", numerator: "mitmdump", denominator: "direct" },
      // the reference rows (scripts/bench/reference_scenarios.ts): what a C proxy reaches on this machine
      { label: "haproxy / direct", numerator: "haproxy", denominator: "direct" },
      { label: "mitmdeno / haproxy", numerator: "mitmdeno", denominator: "haproxy" },
      { label: "stream-haproxy / stream-direct", numerator: "stream-haproxy", denominator: "stream-direct" },
      {
        label: "stream-mitmdeno / stream-haproxy",
        numerator: "stream-mitmdeno",
        denominator: "stream-haproxy",
      },
      {
        label: "stream-haproxy-tls / stream-direct-tls",
        numerator: "stream-haproxy-tls",
        denominator: "stream-direct-tls",
      },
      {
        label: "stream-mitmdeno-tls / stream-haproxy-tls",
        numerator: "stream-mitmdeno-tls",
        denominator: "stream-haproxy-tls",
      },
      { label: "mitmdeno-ws / ws-direct", numerator: "mitmdeno-ws", denominator: "ws-direct" },
      { label: "mitmdeno-ws / mitmdump-ws", numerator: "mitmdeno-ws", denominator: "mitmdump-ws" },
      {
        label: "mitmdeno-ws-script / mitmdeno-ws",
        numerator: "mitmdeno-ws-script",
        denominator: "mitmdeno-ws",
      },
      ...scenarios.filter((s) => s.name.startsWith("base:")).map((s) => ({
        label: `${s.name.slice(5)} / ${s.name}`,
        numerator: s.name.slice(5),
        denominator: s.name,
      })),
    ].map((r) => ({ ...r, value: ratio(results, r.numerator, r.denominator) }));
    report = {
      meta: {
        date: new Date().toISOString(),
        git: await gitRev(repoRoot),
        deno: Deno.version.deno,
        cpus: navigator.hardwareConcurrency,
        os: `${Deno.build.os}-${Deno.build.arch}`,
        wrk,
        load,
        warmupS,
        bodySize,
        rounds,
        origin,
      },
      scenarios: results,
      ratios,
      targets: evaluateTargets(results, defaultTargets),
    };
  } finally {
    removeSignals();
    await stopAll();
  }

  console.log(
    `\nmitmdeno bench: ${connections} connections, ${threads} threads, ${durationS}s (+${warmupS}s warm-up), ` +
      `${bodySize} B body, ${navigator.hardwareConcurrency} CPUs${
        rounds > 1 ? `, median of ${rounds} rounds` : ""
      }\n`,
  );
  console.log(formatReport(report));
  if (values.json) {
    await Deno.writeTextFile(values.json, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nwrote ${values.json}`);
  }
  const failed = report.scenarios.some((s) => s.status === "error");
  const missed = report.targets.some((t) => t.verdict !== "PASS");
  return failed || (values.strict && missed) ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    await stopAll();
    Deno.exit(2);
  }
}
