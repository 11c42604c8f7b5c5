/**
 * The HTTP/1 codec on the server side (mitmproxy's `Http1Client`: it is a client of the server). It turns
 * the request events it is given into bytes and the server's bytes into response events. One exchange at a
 * time; after a complete response the connection is free for the next request if both sides allow it.
 *
 * Events in: DataReceived/ConnectionClosed (its server connection), HttpSend (request events), Start.
 * Commands out: ReceiveHttp (response events), SendData, CloseConnection.
 *
 * @module
 */
import { Layer } from "../../layer.ts";
import { ConnectionClosed, DataReceived, type Event } from "../../events.ts";
import { CloseConnection, SendData } from "../../commands.ts";
import { ProtocolError } from "../../errors.ts";
import type { Context } from "../../context.ts";
import type { Server } from "../../../flow/connection.ts";
import { bodyFraming, findHeadEnd, HttpSyntaxError, parseResponseHead } from "../../../http1/parse.ts";
import { BodyReader } from "../../../http1/body.ts";
import { chunk as encodeChunk, lastChunk, requestHead } from "../../../http1/serialize.ts";
import { endToEndFields, hasConnectionToken, isUpgrade, placeContentLength } from "../../../http1/hop.ts";
import { concat } from "../../../http/bytes.ts";
import { type Request, Response } from "../../../http/message.ts";
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

/** The HTTP/1 codec towards one server. */
export class Http1Client extends Layer {
  readonly conn: Server;
  #streamId = -1;
  #request: Request | null = null;
  #chunked = false;
  /** The request head not written yet: it goes out with the first body bytes, in one buffer and write. */
  #pendingHead: { method: string; target: string; version: string; fields: [string, string][] } | null = null;
  #requestDone = false;
  #reading: "idle" | "head" | "body" | "done" = "idle";
  #buf: Uint8Array[] = [];
  #body: BodyReader | null = null;
  /** Response bytes seen for the current exchange (0: the server said nothing yet). */
  #responseBytes = 0;
  /** Exchanges this connection carried (a reused connection that dies before answering may be retried). */
  #exchanges = 0;
  #reusable = true;
  #closed = false;

  constructor(context: Context, conn: Server) {
    super(context);
    this.conn = conn;
  }

  /** Whether the connection can carry another request now. */
  get idle(): boolean {
    return !this.#closed && this.#reusable && this.#reading === "idle" && this.#streamId === -1;
  }

  /** Whether it can ever carry another request. */
  get reusable(): boolean {
    return !this.#closed && this.#reusable;
  }

  /** Whether the connection is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes received past the HTTP response (after a 101: the start of the next protocol). */
  takeBuffered(): Uint8Array {
    const b = concat(this.#buf);
    this.#buf = [];
    return b;
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
  }

  // ---- sending requests ----

  #send(ev: HttpEvent): void {
    if (ev instanceof RequestHeaders) return this.#write(() => this.#requestHeaders(ev));
    if (ev.streamId !== this.#streamId) return;
    if (ev instanceof RequestData) return this.#write(() => this.#requestData(ev.data));
    if (ev instanceof RequestTrailers) return this.#write(() => this.#requestEnd(ev.trailers));
    if (ev instanceof RequestEndOfMessage) {
      if (!this.#requestDone) this.#write(() => this.#requestEnd(null));
      return;
    }
    if (ev instanceof RequestProtocolError || ev instanceof ResponseProtocolError) {
      // the stream gave up (killed, client gone): this connection is in an unknown state
      this.#reusable = false;
      this.#close();
    }
  }

  #requestHeaders(ev: RequestHeaders): void {
    const req = ev.request;
    this.#streamId = ev.streamId;
    this.#request = req;
    this.#requestDone = false;
    this.#reading = "head";
    this.#responseBytes = 0;
    this.#exchanges++;
    const length = ev.endStream ? 0 : ev.length;
    this.#chunked = length === null;
    const out = endToEndFields(req.headers, isUpgrade(req.headers));
    if (this.conn.viaAbsoluteForm) {
      // to an upstream proxy, Proxy-Authorization is for that hop (upstream_auth sets it)
      for (const f of req.headers.fields) if (f[0].toLowerCase() === "proxy-authorization") out.push(f);
    }
    const hadLength = placeContentLength(out, this.#chunked ? null : length);
    if (!out.some((f) => f[0].length === 4 && f[0].toLowerCase() === "host")) {
      const dp = req.scheme === "https" ? 443 : 80;
      out.unshift(["Host", req.port === dp ? req.host : `${req.host}:${req.port}`]);
    }
    if (this.#chunked) out.push(["Transfer-Encoding", "chunked"]);
    else if (length !== null && !hadLength && (length > 0 || /^(POST|PUT|PATCH)$/.test(req.method))) {
      out.push(["Content-Length", String(length)]);
    }
    const target = this.conn.viaAbsoluteForm && req.method !== "CONNECT"
      ? req.url // through an upstream proxy: absolute form
      : req.method === "CONNECT"
      ? req.authority || `${req.host}:${req.port}`
      : req.path === "*" && req.method === "OPTIONS"
      ? "*"
      : req.path || "/";
    const version = req.httpVersion === "HTTP/1.0" ? "HTTP/1.0" : "HTTP/1.1";
    this.#pendingHead = { method: req.method, target, version, fields: out };
    if (ev.endStream) this.#requestEnd(null);
  }

  /** The pending head, serialized (followed by `body` in the same buffer when given). */
  #head(body?: Uint8Array): Uint8Array {
    const h = this.#pendingHead!;
    const bytes = requestHead(h.method, h.target, h.version, h.fields, body);
    this.#pendingHead = null;
    return bytes;
  }

  /** Send what `fn` serializes; a request an addon made unserializable (CR/LF in a header) fails the stream. */
  #write(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof HttpSyntaxError) throw e;
      this.#fail(new ProtocolError("internal", `Cannot send the request: ${(e as Error).message}`, 502));
    }
  }

  #requestData(d: Uint8Array): void {
    if (this.#requestDone || d.length === 0) return;
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

  #requestEnd(trailers: Headers | null): void {
    if (this.#requestDone) return;
    this.#requestDone = true;
    const tail = this.#chunked ? lastChunk(trailers?.fields ?? null) : null;
    if (this.#pendingHead !== null) this.emit(new SendData(this.conn, this.#head(tail ?? undefined)));
    else if (tail) this.emit(new SendData(this.conn, tail));
    if (this.#reading === "done") this.#exchangeDone();
  }

  // ---- reading responses ----

  #data(d: Uint8Array): void {
    if (this.#closed) return;
    this.#responseBytes += d.length;
    if (this.#reading === "body") return this.#bodyData(d);
    this.#buf.push(d);
    if (this.#reading === "head") this.#readHead();
    else if (this.#reading === "idle") {
      // a server that talks without being asked: the connection cannot be trusted any more
      this.#reusable = false;
    }
  }

  #readHead(): void {
    for (;;) {
      const buf = this.#buf.length === 1 ? this.#buf[0] : concat(this.#buf);
      const end = findHeadEnd(buf);
      const limits = this.context.core.limits;
      if (end === -1) {
        this.#buf = [buf];
        if (buf.length > limits.maxHeadSize) {
          this.#fail(
            new ProtocolError(
              "server-protocol",
              `Invalid response from server: header section too large (over ${limits.maxHeadSize} bytes)`,
              502,
            ),
          );
        }
        return;
      }
      const head = buf.subarray(0, end);
      const rest = end < buf.length ? buf.subarray(end) : null;
      this.#buf = rest ? [rest] : [];
      let response: Response;
      let reader: BodyReader;
      const req = this.#request!;
      try {
        const p = parseResponseHead(head, limits);
        if (p.statusCode >= 100 && p.statusCode < 200 && p.statusCode !== 101) continue; // informational
        const framing = bodyFraming(p.headers, {
          request: false,
          httpVersion: p.httpVersion,
          statusCode: p.statusCode,
          requestMethod: req.method,
        });
        reader = new BodyReader(framing, limits);
        response = new Response({
          statusCode: p.statusCode,
          reason: p.reason,
          httpVersion: p.httpVersion,
          headers: Headers.adopt(p.headers),
          rawContent: null,
          timestampStart: Date.now() / 1000,
        });
        if (
          framing.kind === "close" || hasConnectionToken(response.headers, "close") ||
          (p.httpVersion === "HTTP/1.0" && !hasConnectionToken(response.headers, "keep-alive"))
        ) this.#reusable = false;
      } catch (e) {
        if (!(e instanceof HttpSyntaxError)) throw e;
        return this.#fail(
          new ProtocolError("server-protocol", `Invalid response from server: ${e.message}`, 502),
        );
      }
      const id = this.#streamId;
      this.#body = reader;
      if (response.statusCode === 101) {
        // the connection switches protocols: nothing more is HTTP
        this.#reusable = false;
        this.#reading = "done";
        this.onHttp(new ResponseHeaders(id, response, true));
        return;
      }
      const endStream = reader.done;
      this.#reading = endStream ? "done" : "body";
      this.onHttp(new ResponseHeaders(id, response, endStream));
      if (endStream) return this.#responseEnd();
      if (this.#buf.length) {
        const b = this.takeBuffered();
        this.#bodyData(b);
      }
      return;
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
      return this.#fail(
        new ProtocolError("server-protocol", `Invalid response from server: chunked body: ${e.message}`, 502),
      );
    }
    for (const c of r.data) this.onHttp(new ResponseData(id, c));
    if (!r.done) return;
    if (r.rest && r.rest.length) {
      // bytes after the response: the server is out of sync
      this.#reusable = false;
    }
    this.#responseEnd();
  }

  #responseEnd(): void {
    const id = this.#streamId;
    const trailers = this.#body?.trailers;
    this.#reading = "done";
    if (trailers) this.onHttp(new ResponseTrailers(id, new Headers(trailers)));
    this.onHttp(new ResponseEndOfMessage(id));
    if (this.#requestDone) this.#exchangeDone();
    else this.#reusable = false; // answered before the request was complete
  }

  #exchangeDone(): void {
    if (this.#streamId === -1) return;
    this.#streamId = -1;
    this.#request = null;
    this.#body = null;
    this.#reading = "idle";
    if (!this.#reusable) this.#close();
  }

  #peerClosed(): void {
    if (this.#closed) return;
    const id = this.#streamId;
    if (this.#reading === "body" && this.#body?.end()) {
      this.#reusable = false;
      this.#responseEnd();
      this.#markClosed();
      return;
    }
    if (id !== -1 && this.#reading !== "done") {
      // nothing of a response came: the server may have closed a connection it thought idle (the stream
      // retries on a fresh connection if this one was reused)
      const err = this.#reading === "head" && this.#responseBytes === 0
        ? new ProtocolError(
          "server-closed-idle",
          "Server closed the connection without sending a response",
          502,
        )
        : new ProtocolError(
          "server-closed",
          `Response body incomplete: connection closed after ${this.#body?.describeProgress() ?? "the head"}`,
          502,
        );
      this.#markClosed();
      this.onHttp(new ResponseProtocolError(id, err));
      return;
    }
    this.#markClosed();
  }

  #fail(err: ProtocolError): void {
    const id = this.#streamId;
    this.#reusable = false;
    this.#reading = "done";
    this.#close();
    if (id !== -1) this.onHttp(new ResponseProtocolError(id, err));
  }

  /** The peer closed: no more use, and our side closes too. */
  #markClosed(): void {
    this.#close();
  }

  /** Close the connection. */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reusable = false;
    this.emit(new CloseConnection(this.conn));
  }

  /** Stop reading HTTP (after a 101): the connection belongs to the next protocol. */
  upgrade(): void {
    this.#reading = "done";
    this.#reusable = false;
  }
}
