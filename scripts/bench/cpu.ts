/**
 * CPU time of a process tree from `/proc/<pid>/stat` (Linux only; elsewhere `undefined`): the
 * "per-request CPU" measure of the bench (CPU seconds the proxy used during the measured run divided
 * by the requests it served). Worker threads are part of their process and therefore included.
 *
 * @module
 */

import { descendants } from "./rss.ts";

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`: 100 on Linux/x86-64). */
const CLK_TCK = 100;

/** utime + stime of one process in seconds, or undefined if it is gone / not readable. */
export function readCpuSeconds(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // pid (comm) state ppid ... : fields after the last ')' start at field 3 (state); utime is 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    return Number.isFinite(ticks) ? ticks / CLK_TCK : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds of `pid` plus all its live descendants; undefined if `pid` itself is unreadable. */
export function treeCpuSeconds(pid: number): number | undefined {
  const own = readCpuSeconds(pid);
  if (own === undefined) return undefined;
  return descendants(pid).reduce((sum, p) => sum + (readCpuSeconds(p) ?? 0), own);
}
