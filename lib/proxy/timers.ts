/**
 * One coarse timer for many deadlines (wakeups layers request, idle timeouts): a timer per deadline cost
 * ~30% of throughput under Deno's node compatibility (measured), one interval that checks a set costs
 * nothing measurable. Precision is {@link TICK_MS}. The interval is unref'd and stops at the first tick that
 * finds nothing, not when the last deadline goes: under load the set empties and refills many times a
 * second, and re-creating an interval each time costs ~2%.
 *
 * @module
 */
import type { RequestWakeup } from "./commands.ts";

/** The timer's resolution. */
export const TICK_MS = 250;

/** A deadline: `fire` runs once `at` (Date.now() time) has passed, unless `cancelled`. */
export interface Deadline {
  at: number;
  fire(): void;
  cancelled?: boolean;
}

/** The set of deadlines and its timer. */
export class Timers {
  #entries = new Set<Deadline>();
  #timer: ReturnType<typeof setInterval> | null = null;

  /** Add a deadline. */
  add(d: Deadline): void {
    this.#entries.add(d);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#check(), Math.min(TICK_MS, Math.max(10, d.at - Date.now())));
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  /** Deadlines not yet fired or forgotten. */
  get size(): number {
    return this.#entries.size;
  }

  /** Forget a deadline. */
  delete(d: Deadline): void {
    this.#entries.delete(d);
  }

  /**
   * A {@link RequestWakeup} as a deadline (forgotten at once when it is cancelled). It is in `group` (a
   * connection's deadlines) until it fires or is cancelled.
   */
  wakeup(w: RequestWakeup, group?: Set<Deadline>): void {
    if (w.cancelled) return;
    const d: Deadline = {
      at: Date.now() + w.delayMs,
      fire: () => {
        w.onCancel = null;
        group?.delete(d);
        if (!w.cancelled) w.onWake();
      },
    };
    w.onCancel = () => {
      this.#entries.delete(d);
      group?.delete(d);
    };
    group?.add(d);
    this.add(d);
  }

  #check(): void {
    if (this.#entries.size === 0) {
      clearInterval(this.#timer!);
      this.#timer = null;
      return;
    }
    const now = Date.now();
    for (const d of this.#entries) {
      if (d.cancelled) this.#entries.delete(d);
      else if (d.at <= now) {
        this.#entries.delete(d);
        d.fire();
      }
    }
  }
}
