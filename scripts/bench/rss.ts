/**
 * Resident-set-size sampling from `/proc` (Linux only; other platforms yield `undefined`).
 *
 * RSS is summed over a process and all its descendants, so wrapper commands (`sh -c ...`, a
 * launcher script) still report the memory of the real proxy. Worker threads are part of their
 * process and therefore included.
 *
 * @module
 */

/** VmRSS of one process in KiB, or undefined if it is gone / not readable. */
export function readRssKiB(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * PIDs of all descendants of `pid` (children, grandchildren, ...), from /proc/<pid>/stat; with `running`,
 * without those that exited and wait to be reaped (zombies, state Z).
 */
export function descendants(pid: number, opts: { running?: boolean } = {}): number[] {
  const parentOf = new Map<number, number>();
  const zombies = new Set<number>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
        // Format: pid (comm) state ppid ...; comm may contain spaces/parens, so split after the last ')'.
        const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        parentOf.set(Number(e.name), Number(rest[1]));
        if (rest[0] === "Z") zombies.add(Number(e.name));
      } catch { /* raced with exit */ }
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        if (!opts.running || !zombies.has(child)) out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

/** Total VmRSS in KiB of `pid` plus all its descendants; undefined if `pid` itself is unreadable. */
export function treeRssKiB(pid: number): number | undefined {
  const own = readRssKiB(pid);
  if (own === undefined) return undefined;
  return descendants(pid).reduce((sum, p) => sum + (readRssKiB(p) ?? 0), own);
}

/** One labelled RSS sample. */
export interface RssSample {
  label: string;
  /** Milliseconds since the sampler was created. */
  tMs: number;
  kib: number;
}

/** Summary of an {@linkcode RssSampler}'s samples (KiB). */
export interface RssSummary {
  samples: RssSample[];
  /** First sample labelled "start" (else the first sample). */
  startKiB?: number;
  /** Sample labelled "mid". */
  midKiB?: number;
  /** Last sample labelled "end" (else the last sample). */
  endKiB?: number;
  /** Maximum over all samples, including periodic ones (start-up and warm-up too). */
  peakKiB?: number;
  /**
   * Maximum over the measured run only (from "start" to "end"): what the run itself needed. It differs
   * from peakKiB when start-up costs more, e.g. the type check mitmdeno runs in a child process when it
   * loads a script.
   */
  runPeakKiB?: number;
  /** endKiB - startKiB. */
  growthKiB?: number;
}

/**
 * Collects labelled RSS samples of a process tree (`sample("start")`, `sample("mid")`, ...), plus
 * optional periodic background samples (label "tick") to capture the peak. Call `stop()` when done.
 */
export class RssSampler {
  readonly samples: RssSample[] = [];
  #t0 = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly pid: number, opts: { intervalMs?: number } = {}) {
    if (opts.intervalMs) this.#timer = setInterval(() => this.sample("tick"), opts.intervalMs);
  }

  /** Take a sample now; returns KiB or undefined if the process is gone. */
  sample(label: string): number | undefined {
    const kib = treeRssKiB(this.pid);
    if (kib !== undefined) this.samples.push({ label, tMs: Date.now() - this.#t0, kib });
    return kib;
  }

  /** Stop periodic sampling. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Summarise the samples so far. */
  summary(): RssSummary {
    const s = this.samples;
    const find = (l: string) => s.find((x) => x.label === l)?.kib;
    const findLast = (l: string) => s.findLast((x) => x.label === l)?.kib;
    const startKiB = find("start") ?? s[0]?.kib;
    const endKiB = findLast("end") ?? s.at(-1)?.kib;
    const from = Math.max(0, s.findIndex((x) => x.label === "start"));
    const to = s.findLastIndex((x) => x.label === "end");
    const run = s.slice(from, to === -1 ? s.length : to + 1);
    return {
      samples: [...s],
      startKiB,
      midKiB: find("mid"),
      endKiB,
      peakKiB: s.length ? Math.max(...s.map((x) => x.kib)) : undefined,
      runPeakKiB: run.length ? Math.max(...run.map((x) => x.kib)) : undefined,
      growthKiB: startKiB !== undefined && endKiB !== undefined ? endKiB - startKiB : undefined,
    };
  }
}
