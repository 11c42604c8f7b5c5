/**
 * Small bodies cross to a script worker through a byte ring in a SharedArrayBuffer instead of an
 * ArrayBuffer in the message: a fresh ArrayBuffer costs ~0.8 µs to allocate in Deno and as much again to
 * clone on the other side, and its backing store is freed by the GC threads later (malloc contention).
 * The proxy copies a flow's bodies into the ring and names the region in the flow's message; the worker
 * copies them out into its own memory as the message arrives and releases the region at once.
 *
 * One producer (the proxy thread), one consumer (the worker), regions consumed in the order they were
 * written (messages are handled in the order they were posted), so release is a single cumulative
 * position: the end of the last region copied out. Positions are byte counts since the start, kept
 * modulo 2^32 in the shared header. When a body does not fit (too large, or the worker lags behind), the
 * caller falls back to an ArrayBuffer in the message.
 *
 * @example
 * ```ts
 * const w = new RingWriter(1 << 16);
 * const at = w.write(new Uint8Array([1, 2]), new Uint8Array([3]));
 * // post { bo: at, be: w.end } with the message; in the worker:
 * const r = new RingReader(w.buffer);
 * r.take(at, 3, w.end); // Uint8Array [1, 2, 3], region released
 * ```
 */
import { allocBytes } from "../../http/bytes.ts";

/** Bytes before the data: the consumer's release position (Uint32). */
const HEADER = 8;

/** Largest body pair sent through the ring (bigger ones are transferred). */
export const RING_MAX = 64 * 1024;

/** The proxy side: copies bodies in. */
export class RingWriter {
  /** The shared buffer, to send to the worker once. */
  readonly buffer: SharedArrayBuffer;
  readonly #ctl: Uint32Array;
  readonly #data: Uint8Array;
  readonly #size: number;
  /** Bytes written since the start (the end of the last region), as a plain number. */
  #head = 0;

  constructor(size = 1 << 21) {
    this.buffer = new SharedArrayBuffer(HEADER + size);
    this.#ctl = new Uint32Array(this.buffer, 0, 2);
    this.#data = new Uint8Array(this.buffer, HEADER, size);
    this.#size = size;
  }

  /** The end position of the last region written, to send along (the worker releases up to it). */
  get end(): number {
    return this.#head >>> 0;
  }

  /** Bytes written and not released yet. */
  get used(): number {
    return (this.#head - Atomics.load(this.#ctl, 0)) >>> 0;
  }

  /**
   * Copy `a` then `b` (either may be null) into one region; its offset in the ring, or -1 when it does
   * not fit now (the caller sends the bytes another way).
   */
  write(a: Uint8Array | null, b: Uint8Array | null): number {
    const n = (a?.byteLength ?? 0) + (b?.byteLength ?? 0);
    if (n === 0 || n > RING_MAX || n > this.#size) return -1;
    const used = this.used;
    let pos = this.#head % this.#size;
    // a region never wraps: skip the tail of the ring when it is too short
    const skip = pos + n > this.#size ? this.#size - pos : 0;
    if (used + skip + n > this.#size) return -1;
    if (skip) pos = 0;
    if (a) this.#data.set(a, pos);
    if (b) this.#data.set(b, pos + (a?.byteLength ?? 0));
    this.#head += skip + n;
    return pos;
  }
}

/** The worker side: copies bodies out and releases their regions. */
export class RingReader {
  readonly #ctl: Uint32Array;
  readonly #data: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#ctl = new Uint32Array(buffer, 0, 2);
    this.#data = new Uint8Array(buffer, HEADER);
  }

  /** A private copy of the `length` bytes at `offset`; everything up to `end` is released. */
  take(offset: number, length: number, end: number): Uint8Array {
    const out = allocBytes(length);
    out.set(this.#data.subarray(offset, offset + length));
    Atomics.store(this.#ctl, 0, end);
    return out;
  }
}
