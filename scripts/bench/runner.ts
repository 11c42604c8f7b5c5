/**
 * Orchestration: start the origin process, run each scenario (start proxy, wait for its port, probe,
 * warm up, measure while sampling RSS, stop proxy) and collect {@linkcode ScenarioResult}s.
 * All child processes are stopped in `finally` blocks.
 *
 * @module
 */

import { freePort, type ManagedProcess, spawnManaged, stopAll, waitForPort } from "./process.ts";
import { probe } from "./probe.ts";
import { mergeRounds, type ScenarioResult } from "./report.ts";
import { treeCpuSeconds } from "./cpu.ts";
import { descendants, RssSampler } from "./rss.ts";
import {
  type Address,
  type BenchContext,
  type RunContext,
  type Scenario,
  SETTLE_MAX_S,
} from "./scenarios.ts";
import { runWrk, totalErrors, type WrkResult, type WrkTarget } from "./wrk.ts";

/** Options for {@linkcode runBench}. */
export interface RunOptions {
  /** Warm-up seconds per scenario before measuring (0 = none). */
  warmupS: number;
  /** Default seconds to wait for a proxy's port. */
  readyTimeoutS: number;
  /** Interval of background RSS samples used for the peak (ms). */
  rssIntervalMs?: number;
  /** Progress output (default: console.error). */
  log?: (msg: string) => void;
  /** wrk binary. */
  wrk?: string;
  /**
   * Times to run the whole list, round-robin (default 1): each scenario's result is then its median
   * round's, and ratios are medians of per-round ratios (see report.ts `ratio`).
   */
  rounds?: number;
}

/** A running origin server process. */
export interface Origin extends Address {
  proc: ManagedProcess;
}

const HOST = "127.0.0.1";

/**
 * Start `scripts/bench/origin.ts` in its own Deno process on 127.0.0.1:0 and wait for its
 * `LISTENING <port>` line and for the port to accept connections.
 */
export async function startOrigin(opts: { bodySize: number; timeoutMs?: number }): Promise<Origin> {
  const script = new URL("./origin.ts", import.meta.url).pathname;
  const proc = spawnManaged(
    [
      Deno.execPath(),
      "run",
      "--allow-net",
      script,
      "--host",
      HOST,
      "--port",
      "0",
      "--size",
      String(opts.bodySize),
    ],
    { name: "origin" },
  );
  try {
    const m = await proc.waitForLine(/^LISTENING (\d+)$/, opts.timeoutMs ?? 30_000);
    const port = Number(m[1]);
    await waitForPort(HOST, port, 5_000, proc);
    return { host: HOST, port, proc };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}

async function measure(
  scenario: Scenario,
  run: RunContext,
  target: WrkTarget,
  durationS: number,
  opts: RunOptions,
  phase: "warmup" | "measure",
): Promise<WrkResult> {
  if (scenario.measure) return await scenario.measure(run, target, durationS, phase);
  const { stdout: _stdout, ...result } = await runWrk(target, { ...run.load, durationS }, { wrk: opts.wrk });
  return result;
}

/** Run one scenario; never throws (errors become `status: "error"`). */
export async function runScenario(
  scenario: Scenario,
  ctx: BenchContext,
  opts: RunOptions,
): Promise<ScenarioResult> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const base = { name: scenario.name, description: scenario.description, unit: scenario.unit };
  const why = scenario.unavailable?.(ctx);
  if (why) {
    log(`[${scenario.name}] skipped: ${why}`);
    return { ...base, status: "skipped", message: why };
  }
  let proc: ManagedProcess | undefined;
  let sampler: RssSampler | undefined;
  let midTimer: ReturnType<typeof setTimeout> | undefined;
  let command: string[] | undefined;
  try {
    const run: RunContext = { ...ctx };
    if (scenario.proxy) {
      const listen = { host: HOST, port: freePort(HOST) };
      command = scenario.proxy.command(listen, ctx);
      log(`[${scenario.name}] starting: ${command.join(" ")}`);
      proc = spawnManaged(command, {
        name: scenario.name,
        cwd: scenario.proxy.cwd ?? ctx.repoRoot,
        env: scenario.proxy.env,
      });
      const readyS = scenario.proxy.readyTimeoutS ?? opts.readyTimeoutS;
      const t0 = Date.now();
      await waitForPort(listen.host, listen.port, readyS * 1000, proc);
      log(
        `[${scenario.name}] listening on ${listen.host}:${listen.port} after ${
          Date.now() - t0
        } ms (pid ${proc.pid})`,
      );
      run.proxy = listen;
      sampler = new RssSampler(proc.pid, {
        intervalMs: scenario.rssIntervalMs ?? opts.rssIntervalMs ?? 1000,
      });
      sampler.sample("idle");
    }
    const target = scenario.target(run);
    if (!scenario.measure) {
      const p = await probe(target);
      if (p.status >= 400) {
        throw new Error(`probe request got HTTP ${p.status}:\n${p.head}`);
      }
    }
    let warmupErrors: number | undefined;
    if (opts.warmupS > 0) {
      log(`[${scenario.name}] warm-up ${opts.warmupS}s`);
      const w = await measure(scenario, run, target, opts.warmupS, opts, "warmup");
      warmupErrors = totalErrors(w.errors);
    }
    if (proc?.exited()) throw new Error(`proxy exited during warm-up`);
    if (proc && scenario.proxy?.settleChildren) {
      const pid = proc.pid;
      const running = () => descendants(pid, { running: true }).length;
      const t0 = Date.now();
      while (running() > 0 && Date.now() - t0 < SETTLE_MAX_S * 1000) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const waited = Date.now() - t0;
      if (waited >= 100) {
        const still = running();
        log(
          `[${scenario.name}] waited ${waited} ms for the proxy's child processes${
            still ? ` (${still} left)` : ""
          }`,
        );
      }
    }
    log(
      `[${scenario.name}] measuring ${ctx.load.durationS}s (${ctx.load.connections} connections, ${ctx.load.threads} threads)`,
    );
    sampler?.sample("start");
    const cpuStart = proc && treeCpuSeconds(proc.pid);
    if (sampler) midTimer = setTimeout(() => sampler!.sample("mid"), (ctx.load.durationS * 1000) / 2);
    const result = await measure(scenario, run, target, ctx.load.durationS, opts, "measure");
    clearTimeout(midTimer);
    sampler?.sample("end");
    const cpuEnd = proc && treeCpuSeconds(proc.pid);
    const cpuSeconds = cpuStart !== undefined && cpuEnd !== undefined ? cpuEnd - cpuStart : undefined;
    const exitedDuringRun = proc?.exited();
    log(
      `[${scenario.name}] ${result.rps.toFixed(0)} ${scenario.unit ?? "req/s"}, ${
        totalErrors(result.errors)
      } errors`,
    );
    return {
      ...base,
      status: exitedDuringRun ? "error" : "ok",
      message: exitedDuringRun ? "proxy exited during the measured run" : undefined,
      command,
      result,
      warmupErrors,
      rss: sampler?.summary(),
      cpuSeconds,
    };
  } catch (e) {
    const message = (e as Error).message;
    log(`[${scenario.name}] ERROR: ${message}`);
    return { ...base, status: "error", message, command, rss: sampler?.summary() };
  } finally {
    clearTimeout(midTimer);
    sampler?.stop();
    await proc?.stop();
  }
}

/**
 * Start the origin, run `scenarios` in order with `ctx` (its `origin` is filled in), `opts.rounds` times
 * over, and stop every child process afterwards (also on error).
 */
export async function runBench(
  scenarios: Scenario[],
  ctx: Omit<BenchContext, "origin">,
  opts: RunOptions & { bodySize: number },
): Promise<{ results: ScenarioResult[]; origin: Address }> {
  const log = opts.log ?? ((m: string) => console.error(m));
  let origin: Origin | undefined;
  try {
    origin = await startOrigin({ bodySize: opts.bodySize });
    log(`origin listening on ${origin.host}:${origin.port} (pid ${origin.proc.pid})`);
    const full: BenchContext = { ...ctx, origin: { host: origin.host, port: origin.port } };
    const rounds = Math.max(1, opts.rounds ?? 1);
    const runs: ScenarioResult[][] = scenarios.map(() => []);
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) log(`== round ${round} of ${rounds}`);
      for (const [i, s] of scenarios.entries()) {
        runs[i].push(await runScenario(s, full, opts));
        if (origin.proc.exited()) throw new Error("origin server exited unexpectedly");
      }
    }
    return { results: runs.map(mergeRounds), origin: full.origin };
  } finally {
    await origin?.proc.stop();
    await stopAll();
  }
}
