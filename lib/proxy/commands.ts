/**
 * Commands: what a layer asks for (mitmproxy's `proxy/commands.py`). A layer emits commands to its parent,
 * which passes them up (or handles them: the HTTP layer routes HTTP commands to the connection's codec); the
 * root's go to the driver, which carries them out against sockets, hooks and timers.
 *
 * A {@link BlockingCommand} has a reply; the emitting layer usually pauses until it arrives (see
 * `Layer.call`). The driver replies by calling {@link BlockingCommand.complete}, possibly before `emit`
 * returns (a hook whose handlers are all synchronous), so a layer returns right after emitting one.
 *
 * @module
 */
import type { Client, Connection, Server } from "../flow/connection.ts";
import type { EventName } from "../addons/manager.ts";
import type { LogLevel } from "../addons/log.ts";
import type { Flow } from "../flow/flow.ts";
import type { ProtocolError } from "./errors.ts";
import type { SecureVersion } from "node:tls";
import type { CipherPolicy } from "../tls/ciphers.ts";

/** Something a layer asks for. */
export abstract class Command {
  /** A short description for logs and test failures. */
  toString(): string {
    return this.constructor.name;
  }
}

/** Who waits for a command's reply: a paused layer (see layer.ts), without a closure per command. */
export interface ReplyTarget {
  resume(command: BlockingCommand<unknown>, reply: unknown): void;
}

/** A command with a reply of type `R`. */
export abstract class BlockingCommand<R> extends Command {
  #onReply: ((r: R) => void) | null = null;
  #target: ReplyTarget | null = null;
  #done = false;
  /** The reply, once given (for tests). */
  reply?: R;

  /** Where the reply goes (set by the emitting layer). */
  onReply(fn: (r: R) => void): this {
    this.#onReply = fn;
    return this;
  }

  /** The reply goes to `t.resume` (a paused layer). */
  replyTo(t: ReplyTarget): this {
    this.#target = t;
    return this;
  }

  /** Whether the reply was given. */
  get done(): boolean {
    return this.#done;
  }

  /** Give the reply (once; later calls are ignored). */
  complete(r: R): void {
    if (this.#done) return;
    this.#done = true;
    this.reply = r;
    const t = this.#target;
    if (t !== null) {
      this.#target = null;
      return t.resume(this as BlockingCommand<unknown>, r);
    }
    const fn = this.#onReply;
    this.#onReply = null;
    fn?.(r);
  }
}

/** Send bytes on a connection. */
export class SendData extends Command {
  constructor(readonly conn: Connection, readonly data: Uint8Array) {
    super();
  }
  override toString(): string {
    return `SendData(${this.conn.constructor.name.toLowerCase()}, ${this.data.length}b)`;
  }
}

/** What opening a server connection gave: null when it is open, else the failure. */
export type OpenResult = ProtocolError | null;

/**
 * Open a connection to `conn.address` (TCP). The driver fires `server_connect`, `server_connected` or
 * `server_connect_error`. When the connection manager hands out an idle connection to the same server
 * instead, it is open already and, for TLS, `conn.timestampTlsSetup` is set: no handshake is needed.
 */
export class OpenConnection extends BlockingCommand<OpenResult> {
  constructor(readonly conn: Server) {
    super();
  }
  override toString(): string {
    return `OpenConnection(${this.conn})`;
  }
}

/**
 * Close a connection. `halfClose`: only finish sending (the peer may still send). `reuse`: the connection is
 * idle and healthy: the driver may keep it for another client connection.
 */
export class CloseConnection extends Command {
  constructor(readonly conn: Connection, readonly opts: { halfClose?: boolean; reuse?: boolean } = {}) {
    super();
  }
  override toString(): string {
    return `CloseConnection(${this.conn.constructor.name.toLowerCase()}${
      this.opts.halfClose ? ", half" : ""
    })`;
  }
}

/**
 * Run an addon hook. For flow hooks (`flow` set) the driver runs it as the proxy does: the hook, then
 * `update`, then waits while the flow is intercepted.
 */
export class StartHook extends BlockingCommand<void> {
  constructor(readonly name: EventName, readonly data: unknown, readonly flow: Flow | null = null) {
    super();
  }
  override toString(): string {
    return `StartHook(${this.name})`;
  }
}

/** Write to the log. */
export class Log extends Command {
  constructor(readonly message: string, readonly level: LogLevel = "info") {
    super();
  }
  override toString(): string {
    return `Log(${this.level}, ${JSON.stringify(this.message)})`;
  }
}

/** Call `onWake` once, `delayMs` from now (coarse: ±250 ms), unless cancelled. */
export class RequestWakeup extends Command {
  cancelled = false;
  /** Set by whoever runs the timer: forget it at once when cancelled. */
  onCancel: (() => void) | null = null;
  constructor(readonly delayMs: number, readonly onWake: () => void) {
    super();
  }
  /** Stop the timer. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const f = this.onCancel;
    this.onCancel = null;
    f?.();
  }
  override toString(): string {
    return `RequestWakeup(${this.delayMs})`;
  }
}

/** Details of an established TLS connection. */
export interface TlsInfo {
  alpn: string | null;
  tlsVersion: string | null;
  cipher: string | null;
  /** The peer's certificate chain (PEM), for a server. */
  certificateList: string[];
  /** CN, SANs and O of the server's certificate. */
  peerNames?: { cn?: string; sans: string[]; o?: string };
}

/** How to start TLS on a connection. */
export interface TlsSettings {
  /** The client side: we are the TLS server (with `secureContext`). */
  secureContext?: unknown;
  /** ALPN protocols offered (server side) or accepted (client side, in order of preference). */
  alpn: string[];
  /** The server side: SNI to send (null: none). */
  sni?: string | null;
  /** The server side: the name the certificate is checked against when not the SNI (default: the address). */
  verifyHost?: string;
  /** The server side: skip certificate verification. */
  insecure?: boolean;
  /** The server side: trusted roots (PEM) instead of the default store. */
  ca?: string[];
  /** Bytes already received (and passed to layers) that belong to the handshake: given back to TLS. */
  initialData?: Uint8Array;
  /** Handshake timeout in ms (0: none). */
  timeoutMs: number;
  /** The server side: TLS version bounds (node:tls names; the client side has them in its context). */
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** The server side: the client certificate to present when asked (`client_certs`). */
  clientCert?: { key: string; cert: string } | null;
  /** TLS 1.2 suites allowed (`ciphers_client`/`ciphers_server`): another one fails the handshake. */
  ciphers?: CipherPolicy | null;
}

/**
 * Do a TLS handshake on an open connection: as the server for a {@link Client} (we present our certificate),
 * as the client for a {@link Server}. After it, data events carry decrypted bytes and SendData is encrypted.
 * The driver does the handshake with node:tls natively on the socket (a sans-io TLS in JS would be several
 * times slower here, see docs/architecture.md). Replies with the TLS details or the failure.
 */
export class StartTls extends BlockingCommand<TlsInfo | ProtocolError> {
  constructor(readonly conn: Client | Server, readonly settings: TlsSettings) {
    super();
  }
  override toString(): string {
    return `StartTls(${this.conn.constructor.name.toLowerCase()})`;
  }
}

/**
 * Relay raw bytes between two open connections until both directions ended, natively (no events, no copies
 * in JS): a passthrough. Bytes still buffered by a layer go first (`aPending` to `b`, `bPending` to `a`).
 */
export class Relay extends BlockingCommand<void> {
  constructor(
    readonly a: Connection,
    readonly b: Connection,
    readonly aPending: Uint8Array | null = null,
    readonly bPending: Uint8Array | null = null,
  ) {
    super();
  }
}

/** Stop (`pause`) or restart delivering data events of a connection (flow control). */
export class SetReading extends Command {
  constructor(readonly conn: Connection, readonly reading: boolean) {
    super();
  }
}

/**
 * Flow control for `conn` (a server connection) is the layer's business: when its write buffer is full the
 * driver does not stop reading the other connections (the default, right when one peer feeds it), it tells
 * the root with `WritesBlocked(conn, true)`, and `WritesBlocked(conn, false)` once the buffer drained. The
 * HTTP layer asks for this for an HTTP/1 server connection fed by one stream of an HTTP/2 client: only that
 * stream is held back then.
 */
export class WatchWrites extends Command {
  constructor(readonly conn: Connection) {
    super();
  }
}
