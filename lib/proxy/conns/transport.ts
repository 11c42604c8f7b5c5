/**
 * One open socket as the driver uses it: a node:net socket, later maybe a node:tls socket over it. Data,
 * end and close are reported to one listener; reading can be paused (for a TLS socket also on the TCP socket
 * under it: pausing a TLS socket in Deno 2.9.6 only stops the delivery of decrypted data, which then piles
 * up unread); writes report whether the socket wants a pause (backpressure).
 *
 * @module
 */
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { Buffer } from "node:buffer";

/** Bytes a socket may hold unsent before its writer is told to wait (the others stop reading). */
export const WRITE_BACKLOG = 256 * 1024;

/** The libuv handle of a node:net socket, as far as reading goes. */
interface ReadHandle {
  readStart?(): number;
  readStop?(): number;
}

/** What a transport reports. */
export interface TransportListener {
  data(chunk: Uint8Array): void;
  /** The peer finished sending, or the socket failed (`error`). Reported once. */
  end(error: Error | null): void;
  /** Fully closed. */
  closed(): void;
  /** Writes can go on after a full buffer. */
  drain(): void;
}

/** An open socket. */
export class Transport {
  /** The socket data comes from: the TCP socket, or the TLS socket over it. */
  socket: Socket;
  /** The TCP socket (the same as `socket` without TLS). */
  readonly tcp: Socket;
  #listener: TransportListener | null = null;
  #ended = false;
  #closed = false;
  #paused = false;
  /** Why reading is paused: a set of reasons, reading resumes when it is empty. */
  #pauses = 0;
  readonly closedPromise: Promise<void>;
  #resolveClosed!: () => void;

  constructor(socket: Socket) {
    this.socket = socket;
    this.tcp = socket;
    socket.setNoDelay?.(true);
    this.closedPromise = new Promise((r) => (this.#resolveClosed = r));
    this.#wire(socket);
  }

  #onData = (b: Uint8Array) => this.#listener?.data(b);
  #onEnd = () => this.#end(null);
  #onError = (e: Error) => this.#end(e);
  #onClose = () => {
    this.#end(null);
    if (this.#closed) return;
    this.#closed = true;
    this.#resolveClosed();
    this.#listener?.closed();
  };
  #onDrain = () => this.#listener?.drain();

  #wire(s: Socket): void {
    s.on("data", this.#onData);
    s.on("end", this.#onEnd);
    s.on("error", this.#onError);
    s.on("close", this.#onClose);
  }

  #unwire(s: Socket): void {
    s.off("data", this.#onData);
    s.off("end", this.#onEnd);
    s.off("error", this.#onError);
    s.off("close", this.#onClose);
    s.off("drain", this.#onDrain);
  }

  #end(e: Error | null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#listener?.end(e);
  }

  /** Report to `l` from now on. */
  listen(l: TransportListener | null): void {
    this.#listener = l;
  }

  /** Whether the peer finished sending (or the socket failed). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Whether the socket is closed. */
  get isClosed(): boolean {
    return this.#closed || this.socket.destroyed;
  }

  /**
   * Write; false when the socket's buffer is full: the listener's `drain` is called once it emptied (the
   * 'drain' listener is only attached then).
   */
  write(data: Uint8Array): boolean {
    const s = this.socket;
    if (s.destroyed) return true;
    // node's own limit (16 KiB) would stop the other side for every 64 KiB chunk read: only a real
    // backlog does (a 'drain' follows: the socket set its need-drain flag when write said false)
    if (s.write(data) || s.writableLength < WRITE_BACKLOG) return true;
    s.once("drain", this.#onDrain);
    return false;
  }

  /** Bytes waiting in the socket's write buffer. */
  get writeBuffered(): number {
    return this.socket.writableLength ?? 0;
  }

  /** Stop reading (counted: each pause needs a resume). */
  pause(): void {
    if (this.#pauses++ === 0) this.#setPaused(true);
  }

  /** Undo one {@link pause}. */
  resume(): void {
    if (this.#pauses === 0) return;
    if (--this.#pauses === 0) this.#setPaused(false);
  }

  #setPaused(p: boolean): void {
    if (this.#paused === p) return;
    this.#paused = p;
    const handle = (this.tcp as unknown as { _handle?: ReadHandle })._handle;
    if (p) {
      this.socket.pause();
      if (this.socket !== this.tcp) handle?.readStop?.();
    } else {
      if (this.socket !== this.tcp && !this.tcp.destroyed) handle?.readStart?.();
      this.socket.resume();
    }
  }

  /**
   * Hand the TCP socket to TLS: stop listening on it, put `initial` back in front of what is unread, and
   * return it paused (node:tls must get a socket nobody else reads; see lib/tls/upgrade.ts).
   */
  detachForTls(initial: Uint8Array | null): Socket {
    this.#unwire(this.socket);
    // the TCP socket, or the TLS socket over it (TLS in TLS: through an https:// upstream proxy)
    const s = this.socket;
    s.pause();
    if (initial && initial.length) {
      s.unshift(Buffer.from(initial.buffer, initial.byteOffset, initial.byteLength));
    }
    return s;
  }

  /** Continue over `tls` (the TLS socket over the TCP socket), reporting its data. */
  upgraded(tls: TLSSocket): void {
    this.socket = tls;
    this.#ended = false;
    this.#wire(tls);
    if (this.#paused) this.#setPausedAfterUpgrade();
  }

  #setPausedAfterUpgrade(): void {
    this.socket.pause();
    (this.tcp as unknown as { _handle?: ReadHandle })._handle?.readStop?.();
  }

  /**
   * Stop reporting data and return the socket, reading resumed (for a native relay): only the close is still
   * noticed ({@link closedPromise}). Errors are swallowed from now on.
   */
  release(): Socket {
    const s = this.socket;
    s.off("data", this.#onData);
    s.off("end", this.#onEnd);
    s.off("drain", this.#onDrain);
    s.off("error", this.#onError);
    s.on("error", () => {});
    this.#listener = null;
    this.#pauses = 0;
    if (this.#paused) this.#setPaused(false);
    return s;
  }

  /** Half-close: send FIN after what is buffered. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  /**
   * Finish sending and close; destroy the socket if the peer has not closed it within `graceMs` (the timer
   * goes when the socket closes: left pending it would hold the socket and its TLS state).
   */
  close(graceMs = 2000): void {
    this.end();
    if (this.isClosed) return;
    const timer = setTimeout(() => this.destroy(), graceMs);
    (timer as { unref?: () => void }).unref?.();
    this.socket.once("close", () => clearTimeout(timer));
  }

  /** Close at once. */
  destroy(): void {
    this.socket.destroy();
    if (this.tcp !== this.socket) this.tcp.destroy();
  }
}
