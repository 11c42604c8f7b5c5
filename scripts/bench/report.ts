/**
 * Result types, ratio/target evaluation and the plain-text table printed by `deno task bench`.
 *
 * @module
 */

import type { RssSummary } from "./rss.ts";
import type { Target } from "./scenarios.ts";
import { totalErrors, type WrkResult } from "./wrk.ts";

/** Outcome of one scenario. */
export interface ScenarioResult {
  name: string;
  description: string;
  /** What the rate means (default "req/s"). */
  unit?: string;
  status: "ok" | "skipped" | "error";
  /** Skip reason or error message. */
  message?: string;
  /** Proxy argv, if a proxy was started. */
  command?: string[];
  result?: WrkResult;
  /** Errors seen during the warm-up run (not part of `result`). */
  warmupErrors?: number;
  rss?: RssSummary;
  /** CPU seconds (user + system) the proxy's process tree used during the measured run. */
  cpuSeconds?: number;
  /**
   * With `--rounds N` (N > 1): the rate of every round, in round order (null: that round failed). The
   * other fields are those of the median round.
   */
  rounds?: (number | null)[];
}

/** A throughput ratio between two scenarios. */
export interface Ratio {
  label: string;
  numerator: string;
  denominator: string;
  value?: number;
}

/** A target evaluated against results: PASS, MISS, or N/A when a scenario did not produce numbers. */
export interface TargetResult extends Ratio {
  min: number;
  verdict: "PASS" | "MISS" | "N/A";
}

/** Everything written by `--json`. */
export interface BenchReport {
  meta: Record<string, unknown>;
  scenarios: ScenarioResult[];
  ratios: Ratio[];
  targets: TargetResult[];
}

/** The median of `xs` (not empty): the middle value, or the mean of the two middle ones. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * rps(numerator) / rps(denominator), undefined if either has no successful result. When both ran in
 * several rounds, the median of the per-round ratios (each round's pair ran minutes apart at most, so
 * a slow spell of the machine hits both sides of a pair).
 *
 * @example
 * ```ts
 * import { ratio } from "./report.ts";
 * ratio([], "mitmdeno", "mitmdump"); // undefined: neither ran
 * ```
 */
export function ratio(results: ScenarioResult[], numerator: string, denominator: string): number | undefined {
  const find = (n: string) => results.find((r) => r.name === n && r.status === "ok");
  const a = find(numerator);
  const b = find(denominator);
  if (a?.rounds && b?.rounds) {
    const per: number[] = [];
    for (let i = 0; i < Math.min(a.rounds.length, b.rounds.length); i++) {
      const x = a.rounds[i];
      const y = b.rounds[i];
      if (x !== null && y !== null && y > 0) per.push(x / y);
    }
    return per.length ? median(per) : undefined;
  }
  const x = a?.result?.rps;
  const y = b?.result?.rps;
  return x !== undefined && y !== undefined && y > 0 ? x / y : undefined;
}

/**
 * One result for a scenario that ran in several rounds: the median round's (by rate; with an even
 * count the lower middle one), with `rounds` holding every round's rate. A scenario that never
 * succeeded gives its last round's result.
 */
export function mergeRounds(runs: ScenarioResult[]): ScenarioResult {
  if (runs.length === 1) return runs[0];
  const rate = (r: ScenarioResult) => r.status === "ok" && r.result ? r.result.rps : null;
  const ok = runs.filter((r) => rate(r) !== null).sort((a, b) => rate(a)! - rate(b)!);
  const pick = ok.length ? ok[(ok.length - 1) >> 1] : runs[runs.length - 1];
  return { ...pick, rounds: runs.map(rate) };
}

/** Evaluate `targets` against `results`. */
export function evaluateTargets(results: ScenarioResult[], targets: Target[]): TargetResult[] {
  return targets.map((t) => {
    const value = ratio(results, t.numerator, t.denominator);
    return { ...t, value, verdict: value === undefined ? "N/A" : value >= t.min ? "PASS" : "MISS" };
  });
}

/** Human formatting of microseconds. */
export function fmtUs(us: number): string {
  if (us < 1000) return `${us.toFixed(0)}us`;
  if (us < 1e6) return `${(us / 1000).toFixed(2)}ms`;
  return `${(us / 1e6).toFixed(2)}s`;
}

/** Proxy CPU microseconds per unit of work (request, message, MB) in the measured run, if known. */
export function cpuPerUnitUs(s: ScenarioResult): number | undefined {
  const work = s.result ? s.result.rps * s.result.durationS : 0;
  return s.cpuSeconds !== undefined && work > 0 ? (s.cpuSeconds * 1e6) / work : undefined;
}

/** Human formatting of KiB as MiB. */
export function fmtKiB(kib: number | undefined): string {
  return kib === undefined ? "?" : `${(kib / 1024).toFixed(1)}`;
}

function fmtRatio(r: number | undefined): string {
  if (r === undefined) return "n/a";
  return r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(3)}x (${(r * 100).toFixed(1)}%)`;
}

function table(rows: string[][], rightAlign: Set<number>): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r.map((c, i) => rightAlign.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])).join("  ").trimEnd()
  ).join("\n");
}

/** Render the result table, ratios and targets as plain text. */
export function formatReport(report: BenchReport): string {
  const rows: string[][] = [[
    "scenario",
    "rate (req/s)",
    "p50",
    "p99",
    "errors",
    "CPU/unit",
    "RSS MiB start->mid->end (growth, peak)",
  ]];
  const notes: string[] = [];
  for (const s of report.scenarios) {
    if (s.status !== "ok" || !s.result) {
      rows.push([s.name, "-", "-", "-", "-", "-", s.status.toUpperCase()]);
      notes.push(`${s.name}: ${s.status}: ${s.message ?? ""}`);
      continue;
    }
    const r = s.result;
    let rss = "-";
    if (s.rss?.startKiB !== undefined) {
      const g = s.rss.growthKiB ?? 0;
      const { peakKiB, runPeakKiB } = s.rss;
      // the run's own peak too when start-up or warm-up went higher (by more than 1 MiB)
      const run = peakKiB !== undefined && runPeakKiB !== undefined && peakKiB - runPeakKiB > 1024
        ? `, in the run ${fmtKiB(runPeakKiB)}`
        : "";
      rss = `${fmtKiB(s.rss.startKiB)}->${fmtKiB(s.rss.midKiB)}->${fmtKiB(s.rss.endKiB)} ` +
        `(${g >= 0 ? "+" : ""}${fmtKiB(g)}, peak ${fmtKiB(peakKiB)}${run})`;
    }
    const errs = totalErrors(r.errors);
    rows.push([
      s.name,
      r.rps.toFixed(0) + (s.unit ? ` ${s.unit}` : ""),
      fmtUs(r.latencyUs.p50),
      fmtUs(r.latencyUs.p99),
      String(errs),
      cpuPerUnitUs(s) === undefined ? "-" : fmtUs(cpuPerUnitUs(s)!),
      rss,
    ]);
    if (errs > 0) {
      const e = r.errors;
      notes.push(
        `${s.name}: errors connect=${e.connect} read=${e.read} write=${e.write} timeout=${e.timeout} ` +
          `http>=400=${e.status} (of ${r.requests} requests)`,
      );
    }
    if (s.warmupErrors) notes.push(`${s.name}: ${s.warmupErrors} errors during warm-up`);
    if (s.rounds) {
      notes.push(
        `${s.name}: median of ${s.rounds.length} rounds: ${
          s.rounds.map((x) => x === null ? "failed" : x.toFixed(0)).join(", ")
        }`,
      );
    }
    if (s.message) notes.push(`${s.name}: ${s.message}`);
  }
  const out = [table(rows, new Set([1, 2, 3, 4, 5]))];
  if (notes.length) out.push("", ...notes.map((n) => `  ${n}`));
  if (report.ratios.length) {
    out.push("", table(report.ratios.map((r) => [r.label, fmtRatio(r.value)]), new Set()));
  }
  if (report.targets.length) {
    out.push(
      "",
      "targets:",
      table(
        report.targets.map((t) => [
          `  ${t.label}`,
          t.verdict,
          t.value === undefined ? "" : `(${fmtRatio(t.value)}, need ${t.min}x)`,
        ]),
        new Set(),
      ),
    );
  }
  return out.join("\n");
}
