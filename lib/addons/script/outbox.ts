/**
 * Coalesces the messages one side posts in the same turn of the event loop into as few `postMessage`s as
 * possible: each message to a worker costs a serialization call and, when the other thread sleeps, a
 * wake-up that costs the sender ~20 µs here (measured in Deno 2.9 on this 2-core VM), and under load
 * several flows reach their hooks in the same turn (their replies likewise). The first message queues a
 * microtask that sends everything queued by then, in order, so nothing waits for a timer.
 *
 * Messages travel in one of two forms:
 * - as JSON text ({@link Outbox.sendText}): the common case (flows without metadata or new connection
 *   records, plain replies, log lines). The texts of one turn are joined into one string, a JSON array,
 *   which postMessage copies as a single string and the other side reads with one `JSON.parse`: much
 *   cheaper than structured clone of many small objects.
 * - as structured-clone objects ({@link Outbox.send}), with buffers to transfer. Only messages known to
 *   clone are batched: a postMessage that fails still detaches the buffers listed for transfer (Deno 2.x),
 *   so one bad value in a batch would take the others' bodies with it. Anything else (command arguments
 *   and results, option values) goes alone, after what was queued before it.
 *
 * Order is kept: a turn's messages are posted as runs of the same form.
 */
import type { Envelope } from "./protocol.ts";

interface Queued<M> {
  /** The JSON text of the message, or null for an object. */
  text: string | null;
  m: M | null;
  transfer: Transferable[];
}

/** A batching sender for messages of type `M`. */
export class Outbox<M> {
  #queue: Queued<M>[] = [];
  #queued = false;
  readonly #post: (m: Envelope<M>, transfer: Transferable[]) => void;
  readonly #failed: (m: M, e: unknown) => void;

  /**
   * `post` sends an envelope (it may throw: a value that cannot be cloned); `failed` is told about each
   * object message that could not be sent.
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
    this.#queue.push({ text: null, m, transfer });
    this.#schedule();
  }

  /** Queue a message given as its JSON text (the receiver gets it parsed) for the end of this turn. */
  sendText(json: string): void {
    this.#queue.push({ text: json, m: null, transfer: [] });
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#queued) {
      this.#queued = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Messages queued and not sent yet. */
  get size(): number {
    return this.#queue.length;
  }

  /** Drop what is queued (the other side is gone). */
  clear(): void {
    this.#queue = [];
  }

  #flush = (): void => {
    const q = this.#queue;
    if (!q.length) return;
    // a microtask queued before a direct send finds nothing (and stays queued: harmless)
    this.#queued = false;
    this.#queue = [];
    let i = 0;
    while (i < q.length) {
      let j = i + 1;
      const text = q[i].text !== null;
      while (j < q.length && (q[j].text !== null) === text) j++;
      if (text) this.#postTexts(q, i, j);
      else this.#postObjects(q, i, j);
      i = j;
    }
  };

  #postTexts(q: Queued<M>[], from: number, to: number): void {
    let s = "[" + q[from].text;
    for (let k = from + 1; k < to; k++) s += "," + q[k].text;
    // a string always clones
    this.#post(s + "]", []);
  }

  #postObjects(q: Queued<M>[], from: number, to: number): void {
    try {
      if (to - from === 1) this.#post(q[from].m!, q[from].transfer);
      else {
        const ms: M[] = [];
        const ts: Transferable[] = [];
        for (let k = from; k < to; k++) {
          ms.push(q[k].m!);
          for (const t of q[k].transfer) ts.push(t);
        }
        this.#post({ t: "batch", ms }, ts);
      }
    } catch (e) {
      for (let k = from; k < to; k++) this.#failed(q[k].m!, e);
    }
  }
}

/** The messages in an envelope, in order (a string is a JSON array of messages). */
export function unpackEnvelope<M extends { t: string }>(e: Envelope<M>): M[] {
  if (typeof e === "string") return JSON.parse(e) as M[];
  return e.t === "batch" ? (e as { ms: M[] }).ms : [e as M];
}
