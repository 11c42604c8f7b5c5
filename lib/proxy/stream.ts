/**
 * The one stream interface layers read and write through: pull-style reads with push-back, writes that
 * respect backpressure, and close. Backed by a `node:net` (or `node:tls`) socket, so a plain TCP connection
 * can later be upgraded to server-side TLS natively (see docs/architecture.md).
 */
import type { Socket } from "node:net";
import { concat } from "../http/bytes.ts";
import { findHeadEnd, HttpSyntaxError } from "../http1/parse.ts";

/** Raised by reads that exceed their deadline. */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** A message head not complete within its time limit; `partial` when some of it had arrived. */
export class HeadTimeoutError extends TimeoutError {
  constructor(message: string, readonly partial: boolean) {
    super(message);
    this.name = "HeadTimeoutError";
  }
}

const HIGH_WATER = 1 << 20;

interface Deadline {
  at: number;
  expire: () => void;
}

/**
 * Read deadlines, checked by one coarse timer instead of a timer per read (timers cost ~4% of CPU
 * at 20k req/s). Precision is WATCHDOG_MS, fine for idle timeouts measured in seconds. The timer is
 * unref'd and stops at the first check that finds no deadline, not when the last one goes: under load
 * the set empties and refills many times a second, and re-creating an interval each time costs ~2%.
 */
const WATCHDOG_MS = 250;
const watchdog = new (class {
  #entries = new Set<Deadline>();
  #timer: ReturnType<typeof setInterval> | null = null;
  add(d: Deadline): void {
    this.#entries.add(d);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#check(), Math.min(WATCHDOG_MS, Math.max(10, d.at - Date.now())));
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }
  delete(d: Deadline): void {
    this.#entries.delete(d);
  }
  #check(): void {
    if (this.#entries.size === 0) {
      clearInterval(this.#timer!);
      this.#timer = null;
      return;
    }
    const now = Date.now();
    for (const d of this.#entries) {
      if (d.at <= now) {
        this.#entries.delete(d);
        d.expire();
      }
    }
  }
})();

/** The libuv handle of a node:net socket, as far as pausing goes. */
interface ReadHandle {
  readStart?(): number;
  readStop?(): number;
}

/** A byte stream over a node socket. */
export class Stream {
  readonly socket: Socket;
  /**
   * For a TLS socket over a node:net socket: that socket. Pausing a TLS socket in Deno 2.9.6 stops only the
   * delivery of decrypted data, which piles up unread (a 1 GiB download through a slow reader: 2 GiB of
   * RSS); reads are stopped where the encrypted bytes come in, on the TCP socket's handle.
   */
  readonly #transport: Socket | null;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #eof = false;
  #error: Error | null = null;
  /** The pending read's resolve/reject, while one waits. */
  #resolve: (() => void) | null = null;
  #reject: ((e: Error) => void) | null = null;
  /** The pending read's deadline (one object per stream, reused). */
  readonly #deadline: Deadline = { at: 0, expire: () => this.#expire() };
  #deadlineMs = 0;
  #paused = false;
  #closed = false;
  /** Resolves when the socket is fully closed. */
  readonly closed: Promise<void>;

  /** `transport`: the node:net socket under a TLS `socket` (see above). */
  constructor(socket: Socket, transport: Socket | null = null) {
    this.socket = socket;
    this.#transport = transport;
    socket.setNoDelay?.(true);
    socket.on("data", (b: Uint8Array) => {
      this.#queue.push(b);
      this.#queued += b.length;
      if (this.#queued > HIGH_WATER && !this.#paused) this.#pause();
      this.#wake();
    });
    socket.on("end", () => {
      this.#eof = true;
      this.#wake();
    });
    socket.on("error", (e: Error) => {
      this.#error ??= e;
      this.#eof = true;
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        this.#closed = true;
        this.#eof = true;
        this.#wake();
        resolve();
      });
    });
  }

  #wake(): void {
    const r = this.#resolve;
    if (r) {
      this.#resolve = null;
      this.#reject = null;
      if (this.#deadlineMs > 0) {
        this.#deadlineMs = 0;
        watchdog.delete(this.#deadline);
      }
      r();
    }
  }

  #expire(): void {
    const reject = this.#reject;
    const ms = this.#deadlineMs;
    this.#resolve = null;
    this.#reject = null;
    this.#deadlineMs = 0;
    reject?.(new TimeoutError(`no data for ${ms / 1000}s`));
  }

  /** Whether the peer finished sending (or the socket failed). */
  get eof(): boolean {
    return this.#eof && this.#queue.length === 0;
  }

  /** Whether the socket is closed. */
  get isClosed(): boolean {
    return this.#closed || this.socket.destroyed;
  }

  /** The error that broke the socket, if any. */
  get error(): Error | null {
    return this.#error;
  }

  /** Bytes already received and not yet read. */
  get buffered(): number {
    return this.#queued;
  }

  /**
   * The next chunk of bytes, or null at end of stream. Rejects with the socket's error, or with
   * {@link TimeoutError} if nothing arrives within `timeoutMs`.
   */
  async read(timeoutMs = 0): Promise<Uint8Array | null> {
    while (this.#queue.length === 0) {
      if (this.#eof) {
        if (this.#error) throw this.#error;
        return null;
      }
      await this.#wait(timeoutMs);
    }
    return this.#shift();
  }

  /** Take the first queued chunk (the queue must not be empty). */
  #shift(): Uint8Array {
    const b = this.#queue.shift()!;
    this.#queued -= b.length;
    if (this.#paused && this.#queued < HIGH_WATER / 2) this.#resume();
    return b;
  }

  #pause(): void {
    this.#paused = true;
    this.socket.pause();
    (this.#transport as unknown as { _handle?: ReadHandle } | null)?._handle?.readStop?.();
  }

  #resume(): void {
    this.#paused = false;
    if (this.#transport && !this.#transport.destroyed) {
      (this.#transport as unknown as { _handle?: ReadHandle })._handle?.readStart?.();
    }
    this.socket.resume();
  }

  #wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      if (timeoutMs > 0) {
        this.#deadlineMs = timeoutMs;
        this.#deadline.at = Date.now() + timeoutMs;
        watchdog.add(this.#deadline);
      }
    });
  }

  /** Put bytes back at the front, to be returned by the next read. */
  unread(b: Uint8Array): void {
    if (b.length === 0) return;
    this.#queue.unshift(b);
    this.#queued += b.length;
  }

  /** Look at the first bytes without consuming them: at least `min` bytes unless the stream ends first. */
  async peek(min: number, timeoutMs = 0): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let n = 0;
    try {
      while (n < min) {
        const b = await this.read(timeoutMs);
        if (b === null) break;
        parts.push(b);
        n += b.length;
      }
    } catch (e) {
      this.unread(concat(parts)); // a timeout must not lose what was already received
      throw e;
    }
    const all = concat(parts);
    this.unread(all);
    return all;
  }

  /**
   * Read a message head (through the blank line). Returns null on a clean EOF before any byte.
   * Bytes after the head are pushed back. Throws {@link HttpSyntaxError} 431 past `maxSize`, and
   * on EOF in the middle of a head. `timeoutMs` bounds each wait for bytes; with `headTimeoutMs`, the
   * whole head must arrive within that long from `since` (a time from Date.now(); default: its first byte),
   * else {@link HeadTimeoutError} (a client sending its head byte by byte is not held forever).
   */
  async readHead(
    maxSize: number,
    timeoutMs = 0,
    headTimeoutMs = 0,
    since?: number,
  ): Promise<Uint8Array | null> {
    let deadline = headTimeoutMs > 0 && since !== undefined ? since + headTimeoutMs : 0;
    const first = this.#queue.length
      ? this.#shift()
      : await this.#readWithin(timeoutMs, deadline, headTimeoutMs, false);
    if (first === null) return null;
    let end = findHeadEnd(first);
    if (end !== -1) {
      if (end < first.length) this.unread(first.subarray(end));
      return first.subarray(0, end);
    }
    if (deadline === 0 && headTimeoutMs > 0) deadline = Date.now() + headTimeoutMs;
    const parts = [first];
    let size = first.length;
    for (;;) {
      if (size > maxSize) throw new HttpSyntaxError(`header section too large (over ${maxSize} bytes)`, 431);
      const b = await this.#readWithin(timeoutMs, deadline, headTimeoutMs, true);
      if (b === null) {
        throw new HttpSyntaxError(`connection closed in the middle of a message head (${size} bytes read)`);
      }
      parts.push(b);
      const scanFrom = Math.max(0, size - 3);
      size += b.length;
      const all = concat(parts);
      end = findHeadEnd(all, scanFrom);
      if (end !== -1) {
        if (end < all.length) this.unread(all.subarray(end));
        return all.subarray(0, end);
      }
      parts.length = 0;
      parts.push(all);
    }
  }

  /** A read for {@link readHead}: within `timeoutMs`, and before `deadline` (0: none). */
  async #readWithin(
    timeoutMs: number,
    deadline: number,
    headTimeoutMs: number,
    partial: boolean,
  ): Promise<Uint8Array | null> {
    if (deadline === 0) return await this.read(timeoutMs);
    const left = deadline - Date.now();
    if (left <= 0) throw this.#headTimeout(headTimeoutMs, partial);
    try {
      return await this.read(timeoutMs > 0 ? Math.min(timeoutMs, left) : left);
    } catch (e) {
      if (e instanceof TimeoutError && Date.now() >= deadline - 5) {
        throw this.#headTimeout(headTimeoutMs, partial);
      }
      throw e;
    }
  }

  #headTimeout(ms: number, partial: boolean): HeadTimeoutError {
    return new HeadTimeoutError(`message head not complete within ${ms / 1000}s`, partial);
  }

  /**
   * Exactly `n` bytes if the first queued chunk already holds them (consumed), else null and nothing
   * is consumed: a synchronous fast path for a body that arrived with its head.
   */
  takeBuffered(n: number): Uint8Array | null {
    const b = this.#queue[0];
    if (b === undefined || b.length < n) return null;
    this.#shift();
    if (b.length > n) {
      this.unread(b.subarray(n));
      return b.subarray(0, n);
    }
    return b;
  }

  /** Read up to `max` bytes (at least one), or null at EOF. */
  async readUpTo(max: number, timeoutMs = 0): Promise<Uint8Array | null> {
    const b = await this.read(timeoutMs);
    if (b === null) return null;
    if (b.length > max) {
      this.unread(b.subarray(max));
      return b.subarray(0, max);
    }
    return b;
  }

  /** Write bytes; resolves when the socket can take more (backpressure). */
  write(data: Uint8Array): Promise<void> | void {
    if (this.socket.destroyed) throw new Error("write to a closed connection");
    if (!this.socket.write(data)) return this.#drain();
  }

  #drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /** Write several buffers as one batch. */
  writev(parts: Uint8Array[]): Promise<void> | void {
    if (parts.length === 1) return this.write(parts[0]);
    let total = 0;
    for (const p of parts) total += p.length;
    if (total <= 64 * 1024) return this.write(concat(parts));
    this.socket.cork();
    let ok = true;
    for (const p of parts) ok = this.socket.write(p) && ok;
    this.socket.uncork();
    if (!ok) return this.#drain();
  }

  /** Half-close: send FIN after pending writes. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  /**
   * Half-close (pending writes are flushed first), and destroy the socket if the peer has not closed it
   * within `graceMs`. The timer goes as soon as the socket closes: a pending one would keep the stream,
   * and its TLS state, alive for the whole grace period (at ~1.4k fresh TLS connections/s, 2 s of closed
   * connections held ~250 MiB).
   */
  close(graceMs = 2000): void {
    this.end();
    if (this.#closed) return;
    const timer = setTimeout(() => this.destroy(), graceMs);
    (timer as { unref?: () => void }).unref?.();
    this.socket.once("close", () => clearTimeout(timer));
  }

  /** Close at once, dropping pending data. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Stop delivering data to this Stream (e.g. before handing the socket to TLS) and return unread bytes. */
  detach(): Uint8Array {
    this.socket.removeAllListeners("data");
    this.socket.removeAllListeners("end");
    const rest = concat(this.#queue);
    this.#queue = [];
    this.#queued = 0;
    return rest;
  }
}
