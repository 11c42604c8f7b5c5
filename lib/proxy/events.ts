/**
 * Events: what a layer receives (mitmproxy's `proxy/events.py`). The driver turns socket activity into
 * events and hands them to the root layer, which passes them down to the layer they concern. Replies to
 * blocking commands do not travel as events: a {@link BlockingCommand} is completed directly (see layer.ts).
 *
 * @module
 */
import type { Connection } from "../flow/connection.ts";
import type { RequestWakeup } from "./commands.ts";

/** Something that happened on a connection or to a layer. */
export abstract class Event {
  /** A short description for logs and test failures. */
  toString(): string {
    return this.constructor.name;
  }
}

/** The layer starts: the first event every layer gets. */
export class Start extends Event {}

/** Event about one connection. */
export abstract class ConnectionEvent extends Event {
  constructor(readonly conn: Connection) {
    super();
  }
}

/** Bytes arrived on `conn` (after TLS, if the driver decrypts it). */
export class DataReceived extends ConnectionEvent {
  constructor(conn: Connection, readonly data: Uint8Array) {
    super(conn);
  }
  override toString(): string {
    return `DataReceived(${this.conn.constructor.name.toLowerCase()}, ${this.data.length}b)`;
  }
}

/**
 * The peer stopped sending on `conn` (end of stream, reset or error). The connection may still be written to
 * (a half-close) until the layer closes it or the driver sees it fully closed.
 */
export class ConnectionClosed extends ConnectionEvent {
  override toString(): string {
    return `ConnectionClosed(${this.conn.constructor.name.toLowerCase()})`;
  }
}

/**
 * The write buffer of `conn` is full (`blocked`), or drained again: sent only for connections a layer asked
 * for with `WatchWrites` (for the others the driver pauses reading instead).
 */
export class WritesBlocked extends ConnectionEvent {
  constructor(conn: Connection, readonly blocked: boolean) {
    super(conn);
  }
  override toString(): string {
    return `WritesBlocked(${this.conn.constructor.name.toLowerCase()}, ${this.blocked})`;
  }
}

/** A timer requested with {@link RequestWakeup} fired. */
export class Wakeup extends Event {
  constructor(readonly command: RequestWakeup) {
    super();
  }
}
