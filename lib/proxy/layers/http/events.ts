/**
 * The HTTP event vocabulary, shared by every HTTP version (mitmproxy's `layers/http/_events.py`): a codec
 * turns a connection's bytes into these events (each carrying the id of the stream it belongs to) and these
 * events back into bytes. The flow logic (stream.ts) only ever sees these, whether the connection speaks
 * HTTP/1 or HTTP/2.
 *
 * Between the layers they travel inside {@link ReceiveHttp} (codec -> HTTP layer, a command) and
 * {@link SendHttp} (stream -> HTTP layer, a command; HTTP layer -> codec, the event {@link HttpSend}).
 *
 * @module
 */
import type { Request, Response } from "../../../http/message.ts";
import type { Headers } from "../../../http/headers.ts";
import type { HTTPFlow } from "../../../flow/flow.ts";
import type { Connection } from "../../../flow/connection.ts";
import { BlockingCommand, Command } from "../../commands.ts";
import { Event } from "../../events.ts";
import type { ProtocolError } from "../../errors.ts";
import type { Server } from "../../../flow/connection.ts";

/** An HTTP event of one stream. */
export abstract class HttpEvent extends Event {
  constructor(readonly streamId: number) {
    super();
  }
  override toString(): string {
    return `${this.constructor.name}(${this.streamId})`;
  }
}

/**
 * A request head. `endStream`: no body follows. `length`, when sending: the body length the codec will send
 * (null: unknown, framed by chunks); ignored when received. `flow`: the flow this request belongs to, when it
 * is a replay (the stream then uses it instead of making a new one).
 */
export class RequestHeaders extends HttpEvent {
  constructor(
    streamId: number,
    readonly request: Request,
    readonly endStream: boolean,
    readonly length: number | null = null,
    readonly flow: HTTPFlow | null = null,
  ) {
    super(streamId);
  }
}

/**
 * A response head. `endStream`: no body follows. `length`, when sending: the body length the codec will
 * send (null: unknown, framed by chunks or the end of the connection); ignored when received.
 */
export class ResponseHeaders extends HttpEvent {
  constructor(
    streamId: number,
    readonly response: Response,
    readonly endStream: boolean,
    readonly length: number | null = null,
  ) {
    super(streamId);
  }
}

/** Body bytes. */
export class RequestData extends HttpEvent {
  constructor(streamId: number, readonly data: Uint8Array) {
    super(streamId);
  }
}

/** Body bytes. */
export class ResponseData extends HttpEvent {
  constructor(streamId: number, readonly data: Uint8Array) {
    super(streamId);
  }
}

/** Trailer fields (after the body, before the end). */
export class RequestTrailers extends HttpEvent {
  constructor(streamId: number, readonly trailers: Headers) {
    super(streamId);
  }
}

/** Trailer fields (after the body, before the end). */
export class ResponseTrailers extends HttpEvent {
  constructor(streamId: number, readonly trailers: Headers) {
    super(streamId);
  }
}

/** The message is complete. */
export class RequestEndOfMessage extends HttpEvent {}

/** The message is complete. */
export class ResponseEndOfMessage extends HttpEvent {}

/** The request could not be read (or, when sent, abort it: e.g. a killed flow, an RST_STREAM for HTTP/2). */
export class RequestProtocolError extends HttpEvent {
  constructor(streamId: number, readonly error: ProtocolError) {
    super(streamId);
  }
}

/** The response could not be read or the server went away (or, when sent, abort the response). */
export class ResponseProtocolError extends HttpEvent {
  constructor(streamId: number, readonly error: ProtocolError) {
    super(streamId);
  }
}

/** Codec -> HTTP layer: an HTTP event came in on the codec's connection. */
export class ReceiveHttp extends Command {
  constructor(readonly event: HttpEvent) {
    super();
  }
  override toString(): string {
    return `ReceiveHttp(${this.event})`;
  }
}

/** Stream -> HTTP layer: send an HTTP event on a connection. */
export class SendHttp extends Command {
  constructor(readonly event: HttpEvent, readonly conn: Connection) {
    super();
  }
  override toString(): string {
    return `SendHttp(${this.event}, ${this.conn.constructor.name.toLowerCase()})`;
  }
}

/** HTTP layer -> codec: send this HTTP event. */
export class HttpSend extends Event {
  constructor(readonly event: HttpEvent) {
    super();
  }
  override toString(): string {
    return `HttpSend(${this.event})`;
  }
}

/**
 * Stream -> HTTP layer: a server connection for a request to `address` (TLS or not): an open one that is
 * free, else a new one. `fresh`: never a connection that carried a request before (a retry). The reply is the
 * connection (now reserved for the stream) or why there is none.
 */
export class GetHttpConnection extends BlockingCommand<Server | ProtocolError> {
  constructor(
    readonly address: [string, number],
    readonly tls: boolean,
    readonly fresh = false,
  ) {
    super();
  }
  override toString(): string {
    return `GetHttpConnection(${this.address.join(":")}${this.tls ? ", tls" : ""})`;
  }
}

/**
 * Stream -> HTTP layer: stop reading what feeds this stream (`held` true: its data waits in the stream's queue
 * behind a slow hook or connection), or go on (`held` false). The HTTP layer also lets go once the stream is
 * over.
 */
export class HoldStream extends Command {
  constructor(readonly streamId: number, readonly held: boolean) {
    super();
  }
  override toString(): string {
    return `HoldStream(${this.streamId}, ${this.held})`;
  }
}

/** Stream -> HTTP layer: the stream is done with its server connection (it may serve others now). */
export class ReleaseHttpConnection extends Command {
  constructor(readonly conn: Server, readonly reusable: boolean) {
    super();
  }
}
