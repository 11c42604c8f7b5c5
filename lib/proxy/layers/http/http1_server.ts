/**
 * The HTTP/1 codec on the client side (mitmproxy's `Http1Server`: it serves the client). It turns the client
 * connection's bytes into request events and the response events it is given into bytes. One request at a
 * time: a pipelined request is read once the previous response went out. A request head that cannot be
 * parsed is answered here (400, 431, 501, 505 with the reason) and the connection closed: there is no stream
 * for it yet.
 *
 * Events in: DataReceived/ConnectionClosed (client), HttpSend (response events), Start.
 * Commands out: ReceiveHttp (request events), SendData, CloseConnection, RequestWakeup, Log.
 *
 * @module
 */
import { Layer } from "../../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../../events.ts";
import { CloseConnection, type RequestWakeup, SendData } from "../../commands.ts";
import { errorResponse, ProtocolError } from "../../errors.ts";
import type { Context } from "../../context.ts";
import {
  bodyFraming,
  findHeadEnd,
  HttpSyntaxError,
  parseRequestHead,
  parseTarget,
  requestHost,
} from "../../../http1/parse.ts";
import { BodyReader } from "../../../http1/body.ts";
import { chunk as encodeChunk, lastChunk, responseHead } from "../../../http1/serialize.ts";
import { clientWantsKeepAlive, endToEndFields, placeContentLength } from "../../../http1/hop.ts";
import { concat } from "../../../http/bytes.ts";
import { Request, type Response } from "../../../http/message.ts";
import { Headers } from "../../../http/headers.ts";
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

const EMPTY = new Uint8Array(0);
/** A body still coming when the response is complete is read and dropped up to this size, else we close. */
const DRAIN_LIMIT = 1 << 20;

/** The HTTP/1 codec towards the client. */
export class Http1Server extends Layer {
  /** The id of the current stream (odd numbers, as HTTP/2 client streams). */
  #streamId = -1;
  #nextId = 1;
  /** What is being read. */
  #reading: "head" | "body" | "wait" | "done" = "head";
  #buf: Uint8Array[] = [];
  #buffered = 0;
  #body: BodyReader | null = null;
  #requestMethod = "GET";
  #clientVersion = "HTTP/1.1";
  #keepAlive = true;
  /** The response state of the current stream. */
  #sending: "none" | "head" | "body" | "done" = "none";
  #chunked = false;
  #closeAfter = false;
  /** A response head not written yet: it goes out with the first body bytes, in one buffer and write. */
  #pendingHead: { code: number; reason: string; fields: [string, string][] } | null = null;
  #first = true;
  #headTimer: RequestWakeup | null = null;
  #requests = 0;
  #closed = false;
  /** After a 101 or CONNECT: bytes received past the end of HTTP (for the next layer). */
  #upgraded = false;

  constructor(context: Context) {
    super(context);
  }

  /** The connection this codec reads. */
  get conn() {
    return this.context.client;
  }

  /** Bytes received and not read as HTTP (after an upgrade: the start of the next protocol). */
  takeBuffered(): Uint8Array {
    const b = concat(this.#buf);
    this.#buf = [];
    this.#buffered = 0;
    return b;
  }

  /** Whether the current exchange already sent response bytes. */
  get responseStarted(): boolean {
    return this.#sending !== "none" && this.#pendingHead === null;
  }

  /**
   * Where received HTTP events go: set by the HTTP layer (a direct call); by default they are emitted as
   * {@link ReceiveHttp} commands (as a Playbook test sees them).
   */
  onHttp: (ev: HttpEvent) => void = (ev) => this.emit(new ReceiveHttp(ev));

  protected onEvent(e: Event): void {
    if (e instanceof DataReceived) return this.#data(e.data);
    if (e instanceof HttpEvent) return this.#send(e);
    if (e instanceof HttpSend) return this.#send(e.event);
    if (e instanceof ConnectionClosed) return this.#peerClosed();
    if (e instanceof Start) return this.#startHead();
  }

  // ---- reading requests ----

  #startHead(): void {
    this.#reading = "head";
    // the first request's head must arrive within http_header_timeout of the connection's start
    if (this.#first) this.#headStarted();
    this.#first = false;
    if (this.#buffered) this.#readHead();
  }

  /**
   * A request head started now: it must be complete within http_header_timeout. One timer serves the whole
   * connection: when it fires it checks the head being read, and waits again if that one started later.
   */
  #headStarted(): void {
    const limit = this.context.core.limits.headerTimeout;
    if (limit <= 0) return;
    this.#headStart = Date.now();
    if (this.#headTimer === null) this.#armHeadTimer(limit);
  }

  #headStart = 0;

  #armHeadTimer(ms: number): void {
    this.#headTimer = this.wakeup(ms, () => {
      this.#headTimer = null;
      if (this.#reading !== "head" || this.#closed || this.#headStart === 0) return;
      const limit = this.context.core.limits.headerTimeout;
      const left = this.#headStart + limit - Date.now();
      if (left > 250) return this.#armHeadTimer(left);
      const why = `request head not complete after ${limit / 1000}s (http_header_timeout)`;
      this.log(`${this.conn}: ${why}`);
      if (this.#buffered > 0) this.#answerError(408, why);
      else this.#close();
    });
  }

  #data(d: Uint8Array): void {
    if (this.#closed) return;
    if (this.#reading === "body") return this.#bodyData(d);
    if (this.#reading === "head" && this.#buffered === 0 && this.#headStart === 0) this.#headStarted();
    this.#buf.push(d);
    this.#buffered += d.length;
    if (this.#reading === "head") this.#readHead();
  }

  #readHead(): void {
    const buf = this.#buf.length === 1 ? this.#buf[0] : concat(this.#buf);
    const end = findHeadEnd(buf);
    const limits = this.context.core.limits;
    if (end === -1) {
      this.#buf = [buf];
      if (buf.length > limits.maxHeadSize) {
        this.#answerError(431, `header section too large (over ${limits.maxHeadSize} bytes)`);
      }
      return;
    }
    // blank lines between requests are allowed (RFC 9112 §2.2)
    let start = 0;
    while (start < end && (buf[start] === 13 || buf[start] === 10)) start++;
    const head = buf.subarray(start, end);
    const rest = end < buf.length ? buf.subarray(end) : null;
    this.#buf = rest ? [rest] : [];
    this.#buffered = rest ? rest.length : 0;
    if (head.length === 0) {
      // only blank lines so far: the request may follow in what is buffered
      if (this.#buffered) this.#readHead();
      return;
    }
    this.#headStart = 0;
    let request: Request;
    let reader: BodyReader;
    try {
      const p = parseRequestHead(head, limits);
      const t = parseTarget(p.method, p.target);
      requestHost(p.headers, p.httpVersion, t.form);
      const framing = bodyFraming(p.headers, { request: true, httpVersion: p.httpVersion });
      reader = new BodyReader(framing, limits);
      const tls = this.conn.tls;
      request = new Request({
        method: p.method,
        scheme: t.scheme ?? (tls ? "https" : "http"),
        host: t.host ?? "",
        port: t.port ?? 0,
        path: t.form === "asterisk" ? "*" : t.path ?? "",
        authority: t.form === "authority" ? p.target : "",
        httpVersion: p.httpVersion,
        headers: Headers.adopt(p.headers),
        rawContent: null,
      });
    } catch (e) {
      if (e instanceof HttpSyntaxError) return this.#answerError(e.status, e.message);
      throw e;
    }
    this.#requests++;
    this.#streamId = this.#nextId;
    this.#nextId += 2;
    this.#requestMethod = request.method;
    this.#clientVersion = request.httpVersion;
    this.#keepAlive = clientWantsKeepAlive(request.httpVersion, request.headers);
    this.#sending = "none";
    this.#pendingHead = null;
    this.#closeAfter = false;
    this.#body = reader;
    const id = this.#streamId;
    const endStream = reader.done;
    this.#reading = endStream ? "wait" : "body";
    this.onHttp(new RequestHeaders(id, request, endStream));
    if (endStream) this.onHttp(new RequestEndOfMessage(id));
    else if (this.#buffered && this.#reading === "body") {
      const b = this.takeBuffered();
      this.#bodyData(b);
    }
  }

  #bodyData(d: Uint8Array): void {
    const reader = this.#body!;
    const id = this.#streamId;
    let r;
    try {
      r = reader.feed(d);
    } catch (e) {
      if (!(e instanceof HttpSyntaxError)) throw e;
      this.#reading = "done";
      this.#keepAlive = false;
      this.onHttp(
        new RequestProtocolError(
          id,
          new ProtocolError("client-protocol", `Invalid chunked request body: ${e.message}`, 400),
        ),
      );
      return;
    }
    for (const c of r.data) this.onHttp(new RequestData(id, c));
    if (!r.done) return;
    if (r.rest) {
      this.#buf.push(r.rest);
      this.#buffered += r.rest.length;
    }
    this.#reading = "wait";
    const trailers = reader.trailers;
    if (trailers) this.onHttp(new RequestTrailers(id, new Headers(trailers)));
    this.onHttp(new RequestEndOfMessage(id));
    if (this.#sending === "done") this.#nextRequest();
  }

  #peerClosed(): void {
    if (this.#closed) return;
    if (this.#reading === "body" && this.#body) {
      const reader = this.#body;
      if (reader.end()) {
        this.#reading = "wait";
        this.onHttp(new RequestEndOfMessage(this.#streamId));
      } else {
        this.#reading = "done";
        this.onHttp(
          new RequestProtocolError(
            this.#streamId,
            new ProtocolError(
              "client-closed",
              `Request body incomplete: connection closed after ${reader.describeProgress()}`,
              null,
            ),
          ),
        );
      }
      return;
    }
    if (this.#reading === "wait" && this.#sending !== "done") {
      // the client half-closed after its request: the response may still go out
      this.#keepAlive = false;
      return;
    }
    this.#close();
  }

  // ---- sending responses ----

  #send(ev: HttpEvent): void {
    if (this.#closed) return;
    if (ev.streamId !== this.#streamId) return;
    try {
      this.#sendEvent(ev);
    } catch (e) {
      // a response an addon made unserializable (CR/LF in a header value): an error page instead
      if (this.#pendingHead === null && this.#sending !== "none") throw e;
      this.#pendingHead = null;
      this.#sending = "none";
      this.#answerError(502, `Cannot send the response: ${(e as Error).message}`);
    }
  }

  #sendEvent(ev: HttpEvent): void {
    if (ev instanceof ResponseHeaders) return this.#responseHeaders(ev);
    if (ev instanceof ResponseData) return this.#responseData(ev.data);
    if (ev instanceof ResponseTrailers) return this.#responseEnd(ev.trailers);
    if (ev instanceof ResponseEndOfMessage) {
      if (this.#sending !== "done") this.#responseEnd(null);
      return;
    }
    if (ev instanceof ResponseProtocolError) return this.#responseError(ev.error);
    if (ev instanceof RequestProtocolError) return this.#responseError(ev.error);
  }

  #responseHeaders(ev: ResponseHeaders): void {
    const resp = ev.response;
    const code = resp.statusCode;
    if (code >= 100 && code < 200 && code !== 101) {
      // informational (100 Continue): goes out now, the final response follows; it has no body, so no
      // framing fields (RFC 9110 §8.6: no Content-Length in a 1xx)
      const fields = endToEndFields(resp.headers).filter((f) => f[0].toLowerCase() !== "content-length");
      this.emit(new SendData(this.conn, responseHead("HTTP/1.1", code, resp.reason || "", fields)));
      return;
    }
    const method = this.#requestMethod;
    const bodyless = method === "HEAD" || code === 204 || code === 304 || code === 101 ||
      (method === "CONNECT" && code >= 200 && code < 300);
    if (method === "CONNECT" && code >= 200 && code < 300) {
      // the tunnel is open: exactly a status line, no headers (mitmproxy does the same, for Android emulators)
      this.#pendingHead = null;
      this.#sending = "done";
      this.emit(
        new SendData(this.conn, responseHead("HTTP/1.1", code, resp.reason || "Connection established", [])),
      );
      return;
    }
    const known = ev.endStream ? 0 : ev.length;
    this.#chunked = !bodyless && known === null && this.#clientVersion === "HTTP/1.1";
    let keep = this.#keepAlive && !/close/i.test(resp.headers.get("connection") ?? "") &&
      (bodyless || known !== null || this.#chunked);
    if (code === 101) keep = true;
    this.#closeAfter = !keep;
    const fields = this.#headFields(resp, bodyless, known, keep);
    this.#pendingHead = { code, reason: resp.reason || "", fields };
    this.#sending = "body";
    if (ev.endStream) this.#responseEnd(null);
  }

  /** The response head's fields: end-to-end fields as they are, framed for what is sent. */
  #headFields(resp: Response, bodyless: boolean, length: number | null, keep: boolean): [string, string][] {
    const upgrade = resp.statusCode === 101;
    const out = endToEndFields(resp.headers, upgrade);
    // HEAD and 304 answers keep the resource's Content-Length; others carry the length actually sent
    if (this.#requestMethod !== "HEAD" && resp.statusCode !== 304 && !upgrade) {
      const sendLength = bodyless || this.#chunked ? null : length;
      if (!placeContentLength(out, sendLength) && sendLength !== null && !(resp.statusCode === 204)) {
        out.push(["Content-Length", String(sendLength)]);
      }
    }
    if (this.#chunked) out.push(["Transfer-Encoding", "chunked"]);
    if (!upgrade) {
      if (!keep) out.push(["Connection", "close"]);
      else if (this.#clientVersion === "HTTP/1.0") out.push(["Connection", "keep-alive"]);
    }
    return out;
  }

  /** The pending head, serialized (followed by `body` in the same buffer when given). */
  #head(body?: Uint8Array): Uint8Array {
    const h = this.#pendingHead!;
    const bytes = responseHead("HTTP/1.1", h.code, h.reason, h.fields, body);
    this.#pendingHead = null;
    return bytes;
  }

  #responseData(d: Uint8Array): void {
    if (this.#sending !== "body" || d.length === 0) return;
    const pending = this.#pendingHead !== null;
    if (this.#chunked) {
      const parts = encodeChunk(d);
      this.emit(new SendData(this.conn, concat(pending ? [this.#head(), ...parts] : parts)));
    } else if (pending) {
      if (d.length <= 64 * 1024) this.emit(new SendData(this.conn, this.#head(d)));
      else {
        this.emit(new SendData(this.conn, this.#head()));
        this.emit(new SendData(this.conn, d));
      }
    } else this.emit(new SendData(this.conn, d));
  }

  #responseEnd(trailers: Headers | null): void {
    if (this.#sending !== "body") return;
    const tail = this.#chunked ? lastChunk(trailers?.fields ?? null) : EMPTY;
    if (this.#pendingHead !== null) {
      this.emit(new SendData(this.conn, this.#head(tail.length ? tail : undefined)));
    } else if (tail.length) this.emit(new SendData(this.conn, tail));
    this.#sending = "done";
    this.#afterResponse();
  }

  #afterResponse(): void {
    if (this.#upgraded) return;
    const method = this.#requestMethod;
    if (this.#closeAfter || !this.#keepAlive) return this.#close();
    if (this.#reading === "body") {
      // the request body is still coming (the response came early): read and drop it if small, else close
      const f = this.#body!.framing;
      if (f.kind === "length" && f.length - this.#body!.received <= DRAIN_LIMIT) return;
      return this.#close();
    }
    if (this.#reading === "wait" && method !== "CONNECT") this.#nextRequest();
  }

  #nextRequest(): void {
    if (this.#closed || this.#sending !== "done" || this.#upgraded) return;
    this.#body = null;
    this.#streamId = -1;
    this.#sending = "none";
    this.#startHead();
  }

  #responseError(err: ProtocolError): void {
    if (this.#sending === "none" || this.#pendingHead !== null) {
      if (err.status !== null) return this.#answerError(err.status, err.message);
    }
    this.#close();
  }

  /**
   * Stop reading HTTP on this connection: a CONNECT was answered or the protocol was switched (101). What
   * was received past the request stays in {@link takeBuffered}.
   */
  upgrade(): void {
    this.#upgraded = true;
    this.#reading = "done";
    this.#headTimer?.cancel();
  }

  /** Answer with an error page and close (nothing else was sent for this request). */
  #answerError(status: number, reason: string): void {
    this.#headTimer?.cancel();
    this.#reading = "done";
    this.log(`${this.conn}: bad request: ${reason}`);
    const r = errorResponse(status, reason);
    this.emit(
      new SendData(
        this.conn,
        responseHead("HTTP/1.1", r.statusCode, r.reason, r.headers.fields, r.rawContent!),
      ),
    );
    this.#close();
  }

  /** Close the client connection (what was sent is flushed first). */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#headTimer?.cancel();
    this.emit(new CloseConnection(this.conn));
  }
}
