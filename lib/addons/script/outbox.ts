/**
 * Coalesces the messages one side posts in the same turn of the event loop into one `postMessage`: each
 * message to a worker costs a serialization call and a wake-up of the other thread, and under load several
 * flows reach their hooks in the same turn (their replies likewise). The first message queues a microtask
 * that sends everything queued by then, in order, so nothing waits for a timer.
 *
 * Only messages that are known to clone are batched (flows and replies built by the wire format): a
 * postMessage that fails still detaches the buffers listed for transfer (Deno 2.x), so one bad value in a
 * batch would take the others' bodies with it. Anything else (command arguments and results, option
 * values) goes alone, after what was queued before it.
 */
import type { Envelope } from "./protocol.ts";

/** A batching sender for messages of type `M`. */
export class Outbox<M> {
  #ms: M[] = [];
  #transfers: Transferable[][] = [];
  #queued = false;
  readonly #post: (m: Envelope<M>, transfer: Transferable[]) => void;
  readonly #failed: (m: M, e: unknown) => void;

  /**
   * `post` sends an envelope (it may throw: a value that cannot be cloned); `failed` is told about each
   * message that could not be sent.
   */
  constructor(
    post: (m: Envelope<M>, transfer: Transferable[]) => void,
    failed: (m: M, e: unknown) => void,
  ) {
    this.#post = post;
    this.#failed = failed;
  }

  /**
   * Queue `m` (with the buffers it transfers) for the end of this turn; with `batchable` false (a value
   * that might not clone), send what is queued and then `m`, now.
   */
  send(m: M, transfer: Transferable[] = [], batchable = true): void {
    if (!batchable) {
      this.#flush();
      try {
        this.#post(m, transfer);
      } catch (e) {
        this.#failed(m, e);
      }
      return;
    }
    this.#ms.push(m);
    this.#transfers.push(transfer);
    if (!this.#queued) {
      this.#queued = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Messages queued and not sent yet. */
  get size(): number {
    return this.#ms.length;
  }

  /** Drop what is queued (the other side is gone). */
  clear(): void {
    this.#ms = [];
    this.#transfers = [];
  }

  #flush = (): void => {
    const ms = this.#ms;
    const ts = this.#transfers;
    if (!ms.length) return;
    // a microtask queued before a direct send finds nothing (and stays queued: harmless)
    this.#queued = false;
    this.#ms = [];
    this.#transfers = [];
    try {
      this.#post(ms.length === 1 ? ms[0] : { t: "batch", ms }, ms.length === 1 ? ts[0] : ts.flat());
    } catch (e) {
      for (const m of ms) this.#failed(m, e);
    }
  };
}
