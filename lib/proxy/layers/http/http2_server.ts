/**
 * The HTTP/2 codec on the client side (mitmproxy's `Http2Server`: it serves an h2 client). It drives an
 * {@link H2Connection} with the client connection's bytes and turns its streams into request events, each
 * with the h2 stream id; the response events it is given become frames. Streams are independent: a slow
 * or intercepted one holds back no other (flow control is per stream, see {@link Http2Server.pauseStream}).
 *
 * A malformed request head resets its stream (PROTOCOL_ERROR); a violation of the protocol ends the
 * connection with GOAWAY and the right code, logged once; the streams still open then get a
 * RequestProtocolError.
 *
 * Events in: Start, DataReceived/ConnectionClosed (client), HttpSend (response events).
 * Commands out: ReceiveHttp (request events), SendData, CloseConnection, Log.
 *
 * @module
 */
import { Layer } from "../../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../../events.ts";
import { CloseConnection, SendData } from "../../commands.ts";
import { errorResponse, ProtocolError } from "../../errors.ts";
import type { Context } from "../../context.ts";
import { H2Connection } from "../../../http2/connection.ts";
import { ErrorCode, errorName } from "../../../http2/frames.ts";
import { formatResponse, MalformedError, parseRequest, parseTrailers } from "./h2_fields.ts";
import { outgoingNames } from "../../../http/h2_normalize.ts";
import { microtaskBatch } from "./h2_fields.ts";
import {
  HttpEvent,
  HttpSend,
  ReceiveHttp,
  RequestData,
  RequestEndOfMessage,
  RequestHeaders,
  RequestProtocolError,
  RequestTrailers,
  ResponseData,
  ResponseEndOfMessage,
  ResponseHeaders,
  ResponseProtocolError,
  ResponseTrailers,
} from "./events.ts";

/** What the codec keeps per stream. */
interface StreamInfo {
  method: string;
  /** Response headers went out. */
  headersSent: boolean;
  /** The request is complete (END_STREAM received). */
  requestDone: boolean;
}

/** The HTTP/2 codec towards the client. */
export class Http2Server extends Layer {
  readonly #h2: H2Connection;
  readonly #streams = new Map<number, StreamInfo>();
  #closed = false;

  constructor(context: Context) {
    super(context);
    const limits = context.core.limits;
    this.#h2 = new H2Connection({
      headers: (id, fields, end) => this.#headers(id, fields, end),
      data: (id, d, end) => {
        if (!this.#streams.has(id)) return;
        if (d.length) this.onHttp(new RequestData(id, d));
        if (end) this.#requestEnd(id);
      },
      reset: (id, code, remote, message) => {
        if (!this.#streams.delete(id)) return;
        const msg = remote ? `stream reset by client (${errorName(code)})` : message;
        if (!remote) this.log(`${this.conn}: HTTP/2 stream ${id}: ${message}`);
        this.onHttp(new RequestProtocolError(id, new ProtocolError("client-closed", msg, null)));
      },
      goaway: (_last, code, debug) => {
        if (code !== ErrorCode.NO_ERROR) {
          this.log(
            `${this.conn}: client sent GOAWAY (${errorName(code)}${debug ? `: ${debug}` : ""})`,
            "debug",
          );
        }
        if (this.#streams.size === 0) this.#close();
      },
      failed: (code, message) => this.#failed(code, message),
      drained: () => this.onDrain(),
    }, {
      role: "server",
      maxHeaderListSize: limits.maxHeadSize,
      maxConcurrentStreams: 100,
    });
  }

  /** The connection this codec reads. */
  get conn() {
    return this.context.client;
  }

  /** Where received HTTP events go (see Http1Server.onHttp). */
  onHttp: (ev: HttpEvent) => void = (ev) => this.emit(new ReceiveHttp(ev));

  /** Told when data queued for the client's windows went out (backpressure, see the HTTP layer). */
  onDrain: () => void = () => {};

  /** Bytes waiting for the client's flow-control windows. */
  get backlog(): number {
    return this.#h2.backlog;
  }

  /** Hold back flow-control credit for a stream's request body, or undo one hold (they are counted). */
  pauseStream(id: number, paused: boolean): void {
    this.#h2.setPaused(id, paused);
    this.#flush();
  }

  /** `validate_inbound_headers`: malformed fields reset the stream (else they pass as received). */
  get #validate(): boolean {
    return !this.context.core.limits.lenientHeaders;
  }

  /** Fields to send: names lower-cased with a log line each (`normalize_outbound_headers`), else as they are. */
  #out(fields: [string, string][]): [string, string][] {
    return outgoingNames(fields, this.context.core.limits.normalizeOutbound, (m) => this.log(m, "debug"));
  }

  protected onEvent(e: Event): void {
    if (e instanceof DataReceived) {
      this.#h2.receive(e.data);
      return this.#flush();
    }
    if (e instanceof HttpSend) return this.#send(e.event);
    if (e instanceof HttpEvent) return this.#send(e);
    if (e instanceof ConnectionClosed) return this.#peerClosed();
    if (e instanceof Start) {
      this.#h2.start();
      return this.#flush();
    }
  }

  #flush(): void {
    const out = this.#h2.takeOutput();
    if (out && !this.#closed) this.emit(new SendData(this.conn, out));
  }

  /** Flush once the current burst of events is handled (see {@link microtaskBatch}). */
  readonly #flushSoon = microtaskBatch(
    () => this.#flush(),
    (e) => this.log(`${this.conn}: HTTP/2 write failed: ${e.message}`, "error"),
  );

  // ---- requests ----

  #headers(id: number, fields: [string, string][], end: boolean): void {
    const info = this.#streams.get(id);
    if (info) {
      // a second block: trailers (the connection checked END_STREAM)
      let trailers;
      try {
        trailers = parseTrailers(fields, this.#validate);
      } catch (e) {
        if (!(e instanceof MalformedError)) throw e;
        return this.#malformed(id, `invalid HTTP/2 request trailers: ${e.message}`);
      }
      this.onHttp(new RequestTrailers(id, trailers));
      return this.#requestEnd(id);
    }
    let request;
    try {
      request = parseRequest(fields, this.#validate);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      return this.#malformed(id, `invalid HTTP/2 request headers: ${e.message}`);
    }
    this.#streams.set(id, { method: request.method, headersSent: false, requestDone: end });
    this.onHttp(new RequestHeaders(id, request, end));
    if (end) this.onHttp(new RequestEndOfMessage(id));
  }

  #requestEnd(id: number): void {
    const info = this.#streams.get(id);
    if (!info) return;
    info.requestDone = true;
    this.onHttp(new RequestEndOfMessage(id));
  }

  /** A malformed request: its stream is reset, the others go on. */
  #malformed(id: number, why: string): void {
    this.log(`${this.conn}: HTTP/2 stream ${id}: ${why}`);
    this.#h2.reset(id, ErrorCode.PROTOCOL_ERROR);
    this.#flush();
  }

  #failed(code: number, message: string): void {
    this.log(`${this.conn}: HTTP/2 protocol error (${errorName(code)}): ${message}`);
    this.#flush();
    this.#close();
    this.#abortAll(new ProtocolError("client-protocol", `HTTP/2 protocol error: ${message}`, null));
  }

  #peerClosed(): void {
    if (this.#closed) return;
    this.#close();
    this.#abortAll(new ProtocolError("client-closed", "client closed the connection", null));
  }

  #abortAll(err: ProtocolError): void {
    const ids = [...this.#streams.keys()];
    this.#streams.clear();
    for (const id of ids) this.onHttp(new RequestProtocolError(id, err));
  }

  // ---- responses ----

  #send(ev: HttpEvent): void {
    if (this.#closed) return;
    const id = ev.streamId;
    const info = this.#streams.get(id);
    if (!info) return;
    const h2 = this.#h2;
    if (ev instanceof ResponseHeaders) {
      const resp = ev.response;
      const informational = resp.statusCode >= 100 && resp.statusCode < 200;
      if (informational && resp.statusCode === 101) {
        // no protocol switch in HTTP/2 (RFC 9113 §8.6): the exchange cannot go on
        this.log(
          `${this.conn}: HTTP/2 stream ${id}: the server switched protocols (101): not possible over HTTP/2`,
        );
        this.#resetStream(id, ErrorCode.HTTP_1_1_REQUIRED);
        return;
      }
      let fields;
      try {
        fields = this.#out(formatResponse(resp, ev.endStream ? 0 : ev.length, info.method));
      } catch (e) {
        this.log(`${this.conn}: cannot send the response: ${(e as Error).message}`);
        return this.#resetStream(id, ErrorCode.INTERNAL_ERROR);
      }
      if (!informational) info.headersSent = true;
      h2.sendHeaders(id, fields, ev.endStream && !informational);
      if (ev.endStream && !informational) this.#responseDone(id);
    } else if (ev instanceof ResponseData) {
      h2.sendData(id, ev.data);
    } else if (ev instanceof ResponseTrailers) {
      h2.sendTrailers(id, this.#out(ev.trailers.fields.map(([k, v]) => [k, v] as [string, string])));
      this.#responseDone(id);
    } else if (ev instanceof ResponseEndOfMessage) {
      if (h2.canSend(id)) h2.endStream(id);
      this.#responseDone(id);
    } else if (ev instanceof ResponseProtocolError || ev instanceof RequestProtocolError) {
      const err = ev.error;
      if (!info.headersSent && err.status !== null && h2.canSend(id)) {
        // an error page, as mitmproxy sends on HTTP/2 too
        const page = errorResponse(err.status, err.message);
        page.headers.delete("connection");
        const body = page.rawContent!;
        info.headersSent = true;
        h2.sendHeaders(id, this.#out(formatResponse(page, body.length, info.method)), false);
        h2.sendData(id, body, true);
        this.#responseDone(id);
      } else {
        this.#resetStream(id, err.kind === "client-closed" ? ErrorCode.CANCEL : ErrorCode.INTERNAL_ERROR);
      }
    }
    // a head or body bytes without the end: more usually follows at once, written together
    if (ev instanceof ResponseData || (ev instanceof ResponseHeaders && !ev.endStream)) this.#flushSoon();
    else this.#flush();
  }

  #resetStream(id: number, code: number): void {
    this.#streams.delete(id);
    this.#h2.reset(id, code);
    this.#flush();
    this.#maybeClose();
  }

  /** The response is complete: the stream is forgotten once its request is complete too. */
  #responseDone(id: number): void {
    const info = this.#streams.get(id);
    if (!info) return;
    if (!info.requestDone && this.#h2.isOpen(id) && this.#h2.queuedOn(id) === 0 && !this.#h2.canSend(id)) {
      // answered before the request body was complete (an early error, a synthetic response): the client
      // may stop sending it (RFC 9113 §8.1)
      this.#h2.reset(id, ErrorCode.NO_ERROR);
    }
    this.#streams.delete(id);
    this.#maybeClose();
  }

  #maybeClose(): void {
    if (this.#h2.goawayReceived && this.#streams.size === 0 && this.#h2.backlog === 0) this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.emit(new CloseConnection(this.conn));
  }
}
