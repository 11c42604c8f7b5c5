/**
 * The HTTP/2 codec on the server side (mitmproxy's `Http2Client`: it is an h2 client of the server). Many
 * streams share the connection: each request of an {@link HttpStream} gets a stream id of ours (HTTP/2
 * needs them in increasing order, while requests may reach us in any order), mapped back to the
 * stream's own id on every response event. Requests beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS
 * wait here until a stream closes. With `http2_ping_keepalive` an idle connection is kept alive with PINGs.
 *
 * Events in: Start, DataReceived/ConnectionClosed (its server connection), HttpSend (request events).
 * Commands out: ReceiveHttp (response events), SendData, CloseConnection, RequestWakeup, Log.
 *
 * @module
 */
import { Layer } from "../../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../../events.ts";
import { CloseConnection, type RequestWakeup, SendData } from "../../commands.ts";
import { outgoingNames } from "../../../http/h2_normalize.ts";
import { microtaskBatch } from "./h2_fields.ts";
import { ProtocolError } from "../../errors.ts";
import type { Context } from "../../context.ts";
import type { Server } from "../../../flow/connection.ts";
import { H2Connection } from "../../../http2/connection.ts";
import { ErrorCode, errorName } from "../../../http2/frames.ts";
import { formatRequest, MalformedError, parseResponse, parseTrailers } from "./h2_fields.ts";
import { reasonPhrase } from "../../../http/status.ts";
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

/** Before the server's first SETTINGS: assume this many concurrent streams (as mitmproxy). */
const PROVISIONAL_CONCURRENCY = 10;

/** The HTTP/2 codec towards one server. */
export class Http2Client extends Layer {
  readonly conn: Server;
  readonly #h2: H2Connection;
  /** outer (HttpStream) id -> our h2 id, and back. */
  readonly #ours = new Map<number, number>();
  readonly #theirs = new Map<number, number>();
  /** Our ids whose response head arrived. */
  readonly #answered = new Set<number>();
  /** Requests waiting for a free stream (outer id -> its events so far), in arrival order. */
  readonly #queued = new Map<number, HttpEvent[]>();
  #settingsSeen = false;
  #closed = false;
  #lastActivity = Date.now();
  #ping: RequestWakeup | null = null;

  constructor(context: Context, conn: Server) {
    super(context);
    this.conn = conn;
    const limits = context.core.limits;
    this.#h2 = new H2Connection({
      headers: (id, fields, end) => this.#headers(id, fields, end),
      data: (id, d, end) => {
        const outer = this.#theirs.get(id);
        if (outer === undefined) return;
        if (d.length) this.onHttp(new ResponseData(outer, d));
        if (end) this.#responseEnd(id);
      },
      reset: (id, code, remote, message) => {
        const outer = this.#theirs.get(id);
        if (outer === undefined) return;
        this.#forget(id);
        const msg = remote ? `stream reset by server (${errorName(code)})` : message;
        if (!remote) this.log(`${this.conn}: HTTP/2 stream ${id}: ${message}`);
        // REFUSED_STREAM: the server did not process it (RFC 9113 §8.7), so it may be sent again
        const kind = remote && code === ErrorCode.REFUSED_STREAM ? "server-closed-idle" : "server-protocol";
        this.onHttp(new ResponseProtocolError(outer, new ProtocolError(kind, msg, 502)));
        this.#dequeue();
      },
      goaway: (last, code, debug) => this.#goaway(last, code, debug),
      failed: (code, message) => this.#failed(code, message),
      drained: () => this.onDrain(),
    }, {
      role: "client",
      maxHeaderListSize: limits.maxHeadSize,
    });
  }

  /** Whether the connection can take another request now. */
  get idle(): boolean {
    return !this.#closed && this.#h2.alive && this.#ours.size === 0 && this.#queued.size === 0;
  }

  /** Whether it can take more requests (now or once a stream is free). */
  get reusable(): boolean {
    return !this.#closed && this.#h2.alive;
  }

  /** Whether one more request would be sent at once (not queued). */
  get hasCapacity(): boolean {
    return this.reusable && this.#queued.size === 0 && this.#ours.size < this.#limit();
  }

  /** Whether the connection is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes waiting for the server's flow-control windows. */
  get backlog(): number {
    return this.#h2.backlog;
  }

  /** Where received HTTP events go (see Http1Client.onHttp). */
  onHttp: (ev: HttpEvent) => void = (ev) => this.emit(new ReceiveHttp(ev));

  /** Told when data queued for the server's windows went out. */
  onDrain: () => void = () => {};

  /** Hold back credit for the response body of an outer stream, or undo one hold (they are counted). */
  pauseStream(outer: number, paused: boolean): void {
    const id = this.#ours.get(outer);
    if (id === undefined) return;
    this.#h2.setPaused(id, paused);
    this.#flush();
  }

  #limit(): number {
    return this.#settingsSeen
      ? this.#h2.peerMaxConcurrent
      : Math.min(PROVISIONAL_CONCURRENCY, this.#h2.peerMaxConcurrent);
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
      this.#lastActivity = Date.now();
      this.#settingsSeen = true; // the server's SETTINGS are the first thing it sends
      this.#h2.receive(e.data);
      this.#flush();
      return this.#dequeue();
    }
    if (e instanceof HttpSend) return this.#send(e.event);
    if (e instanceof HttpEvent) return this.#send(e);
    if (e instanceof ConnectionClosed) return this.#peerClosed();
    if (e instanceof Start) {
      this.#h2.start();
      this.#flush();
      this.#armPing();
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

  #armPing(): void {
    const every =
      (this.context.options.has("http2_ping_keepalive")
        ? this.context.options.http2_ping_keepalive
        : 58) as number;
    if (!(every > 0) || this.#closed) return;
    const idle = Date.now() - this.#lastActivity;
    const left = idle < 1000 ? every * 1000 : Math.max(1000, every * 1000 - idle);
    this.#ping = this.wakeup(left, () => {
      this.#ping = null;
      if (this.#closed || !this.#h2.alive) return;
      if (Date.now() - this.#lastActivity + 1000 >= every * 1000) {
        this.log(`${this.conn}: sending HTTP/2 keep-alive PING`, "debug");
        this.#lastActivity = Date.now();
        this.#h2.ping(new TextEncoder().encode("mitmdeno"));
        this.#flush();
      }
      this.#armPing();
    });
  }

  // ---- requests ----

  #send(ev: HttpEvent): void {
    if (this.#closed) {
      if (ev instanceof RequestHeaders) {
        this.onHttp(
          new ResponseProtocolError(
            ev.streamId,
            new ProtocolError("server-closed-idle", "the server connection is closed", 502),
          ),
        );
      }
      return;
    }
    this.#lastActivity = Date.now();
    const outer = ev.streamId;
    const waiting = this.#queued.get(outer);
    if (waiting) {
      waiting.push(ev);
      return;
    }
    let id = this.#ours.get(outer);
    if (id === undefined) {
      if (!(ev instanceof RequestHeaders)) return;
      if (!this.#h2.alive) {
        return this.onHttp(
          new ResponseProtocolError(
            outer,
            new ProtocolError("server-closed-idle", "the server connection is going away (GOAWAY)", 502),
          ),
        );
      }
      if (this.#ours.size >= this.#limit() || this.#queued.size) {
        this.#queued.set(outer, [ev]);
        return;
      }
      id = this.#h2.newStreamId();
      this.#ours.set(outer, id);
      this.#theirs.set(id, outer);
    }
    const h2 = this.#h2;
    if (ev instanceof RequestHeaders) {
      let fields;
      try {
        fields = this.#out(formatRequest(ev.request));
      } catch (e) {
        this.#forget(id);
        return this.onHttp(
          new ResponseProtocolError(
            outer,
            new ProtocolError("internal", `Cannot send the request: ${(e as Error).message}`, 502),
          ),
        );
      }
      h2.sendHeaders(id, fields, ev.endStream);
    } else if (ev instanceof RequestData) h2.sendData(id, ev.data);
    else if (ev instanceof RequestTrailers) {
      h2.sendTrailers(id, this.#out(ev.trailers.fields.map(([k, v]) => [k, v] as [string, string])));
    } else if (ev instanceof RequestEndOfMessage) {
      if (h2.canSend(id)) h2.endStream(id);
    } else if (ev instanceof RequestProtocolError || ev instanceof ResponseProtocolError) {
      // the stream gave up (killed, client gone, timeout): reset it, the connection goes on
      h2.reset(id, ev.error.kind === "client-closed" ? ErrorCode.CANCEL : ErrorCode.INTERNAL_ERROR);
      this.#forget(id);
      this.#flush();
      return this.#dequeue();
    }
    // a head or body bytes without the end: more usually follows at once, written together
    if (ev instanceof RequestData || (ev instanceof RequestHeaders && !ev.endStream)) this.#flushSoon();
    else this.#flush();
  }

  /** Send queued requests while streams are free. */
  #dequeue(): void {
    for (let i = 0; i < 1000 && this.#queued.size && this.#ours.size < this.#limit() && this.#h2.alive; i++) {
      const [outer, events] = this.#queued.entries().next().value!;
      this.#queued.delete(outer);
      for (const ev of events) this.#send(ev);
    }
    if (!this.#h2.alive && this.#queued.size) {
      const outers = [...this.#queued.keys()];
      this.#queued.clear();
      for (const o of outers) {
        this.onHttp(
          new ResponseProtocolError(
            o,
            new ProtocolError(
              "server-closed-idle",
              "the server connection went away before the request",
              502,
            ),
          ),
        );
      }
    }
  }

  #forget(id: number): void {
    const outer = this.#theirs.get(id);
    this.#theirs.delete(id);
    this.#answered.delete(id);
    if (outer !== undefined) this.#ours.delete(outer);
    this.#maybeClose();
  }

  // ---- responses ----

  #headers(id: number, fields: [string, string][], end: boolean): void {
    const outer = this.#theirs.get(id);
    if (outer === undefined) return;
    if (this.#answered.has(id)) {
      let trailers;
      try {
        trailers = parseTrailers(fields, this.#validate);
      } catch (e) {
        if (!(e instanceof MalformedError)) throw e;
        return this.#malformed(id, outer, `invalid HTTP/2 response trailers: ${e.message}`);
      }
      this.onHttp(new ResponseTrailers(outer, trailers));
      return this.#responseEnd(id);
    }
    let response;
    try {
      response = parseResponse(fields, this.#validate);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      return this.#malformed(id, outer, `invalid HTTP/2 response headers: ${e.message}`);
    }
    if (response.statusCode < 200) {
      // as mitmproxy: 1xx are swallowed (100 Continue is sent to clients by the proxy itself)
      this.log(
        `${this.conn}: swallowing HTTP/2 informational response: ${response.statusCode} ${
          reasonPhrase(response.statusCode)
        }`,
        "debug",
      );
      return;
    }
    this.#answered.add(id);
    this.onHttp(new ResponseHeaders(outer, response, end));
    if (end) this.#responseEnd(id);
  }

  #responseEnd(id: number): void {
    const outer = this.#theirs.get(id);
    if (outer === undefined) return;
    this.#forget(id);
    this.onHttp(new ResponseEndOfMessage(outer));
    this.#dequeue();
  }

  #malformed(id: number, outer: number, why: string): void {
    this.log(`${this.conn}: HTTP/2 stream ${id}: ${why}`);
    this.#h2.reset(id, ErrorCode.PROTOCOL_ERROR);
    this.#forget(id);
    this.#flush();
    this.onHttp(new ResponseProtocolError(outer, new ProtocolError("server-protocol", why, 502)));
  }

  #goaway(last: number, code: number, debug: string): void {
    const why = `server sent GOAWAY (${errorName(code)}${debug ? `: ${debug}` : ""})`;
    this.log(`${this.conn}: ${why}`, code === ErrorCode.NO_ERROR ? "debug" : "info");
    // streams above `last` were not processed: they may be sent again on another connection
    for (const [id, outer] of [...this.#theirs]) {
      if (id <= last) continue;
      this.#forget(id);
      this.onHttp(
        new ResponseProtocolError(
          outer,
          new ProtocolError("server-closed-idle", `${why} before processing the request`, 502),
        ),
      );
    }
    this.#dequeue();
    this.#maybeClose();
  }

  #failed(code: number, message: string): void {
    this.log(`${this.conn}: HTTP/2 protocol error (${errorName(code)}): ${message}`);
    this.#flush();
    this.#abortAll(new ProtocolError("server-protocol", `HTTP/2 protocol error: ${message}`, 502));
    this.#close();
  }

  #peerClosed(): void {
    if (this.#closed) return;
    this.#abortAll(
      new ProtocolError("server-closed", "server closed the HTTP/2 connection", 502),
      "server-closed-idle",
    );
    this.#close();
  }

  /** Every stream and queued request fails (`unanswered`: the kind for streams without a response head). */
  #abortAll(err: ProtocolError, unanswered?: "server-closed-idle"): void {
    const streams = [...this.#theirs];
    const answered = new Set(this.#answered);
    this.#theirs.clear();
    this.#ours.clear();
    this.#answered.clear();
    const queued = [...this.#queued.keys()];
    this.#queued.clear();
    for (const [id, outer] of streams) {
      const e = unanswered && !answered.has(id) ? new ProtocolError(unanswered, err.message, 502) : err;
      this.onHttp(new ResponseProtocolError(outer, e));
    }
    for (const outer of queued) {
      this.onHttp(
        new ResponseProtocolError(outer, new ProtocolError("server-closed-idle", err.message, 502)),
      );
    }
  }

  #maybeClose(): void {
    if (!this.#closed && !this.#h2.alive && this.#theirs.size === 0 && this.#queued.size === 0) this.#close();
  }

  /** Say goodbye (GOAWAY) and close; streams still open fail. */
  shutdown(): void {
    if (this.#closed) return;
    this.#h2.goaway(ErrorCode.NO_ERROR);
    this.#flush();
    this.#abortAll(new ProtocolError("server-closed", "connection closed by the proxy", 502));
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ping?.cancel();
    this.emit(new CloseConnection(this.conn));
  }
}
