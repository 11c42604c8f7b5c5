/**
 * One HTTP exchange: the flow logic (mitmproxy's `HttpStream`), the same for every HTTP version. It raises
 * `requestheaders`, `request`, `responseheaders`, `response` or `error` at their precise points, buffers
 * bodies for hooks or streams them (`stream_large_bodies`, `flow.request.stream`/`flow.response.stream`),
 * asks for a server connection only when a response is really needed (so a `request` hook that answers
 * means no connection at all), and relays the result to the client.
 *
 * Events in (from the HTTP layer): the request events of its stream from the client connection, the
 * response events from its server connection. Commands out: SendHttp (to either side), GetHttpConnection,
 * ReleaseHttpConnection, HoldStream, StartHook, RequestWakeup, Log.
 *
 * @module
 */
import { Layer } from "../../layer.ts";
import type { Event } from "../../events.ts";
import { StartHook } from "../../commands.ts";
import { ProtocolError } from "../../errors.ts";
import type { Context } from "../../context.ts";
import { FlowError, HTTPFlow, KILLED_MESSAGE } from "../../../flow/flow.ts";
import { Server } from "../../../flow/connection.ts";
import { concat } from "../../../http/bytes.ts";
import { collectionPacer } from "../../../http1/body.ts";
import { Response, type StreamTransformer } from "../../../http/message.ts";
import type { Headers } from "../../../http/headers.ts";
import type { EventName } from "../../../addons/manager.ts";
import { WebSocketData } from "../../../flow/websocket.ts";
import { isWebSocketUpgrade } from "../websocket.ts";
import {
  GetHttpConnection,
  HoldStream,
  ReleaseHttpConnection,
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
  SendHttp,
} from "./events.ts";

/** How request targets are read (mitmproxy's HTTPMode). */
export type HttpMode = "regular" | "transparent" | "upstream";

/** How a stream works, from its HTTP layer. */
export interface StreamOptions {
  mode: HttpMode;
  /** Upstream mode: the proxy every server connection goes through ([scheme, [host, port]]). */
  via?: [string, [string, number]] | null;
  /** Reverse proxy: set Host to the destination unless `keep_host_header`. */
  rewriteHost: boolean;
}

/** What the HTTP layer does once a CONNECT was answered (it takes the client connection over). */
export type ConnectHandler = (flow: HTTPFlow) => void;

/** What the HTTP layer does after a 101 went out (it takes both connections over). */
export type UpgradeHandler = (flow: HTTPFlow, server: Server) => void;

const EMPTY = new Uint8Array(0);
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const now = () => Date.now() / 1000;

function applyTransformer(fn: StreamTransformer, chunk: Uint8Array): Uint8Array[] {
  const r = fn(chunk);
  return r instanceof Uint8Array ? [r] : [...r];
}

/** One request/response exchange. */
export class HttpStream extends Layer {
  readonly streamId: number;
  readonly #opts: StreamOptions;
  readonly #onConnect: ConnectHandler;
  readonly #onUpgrade: UpgradeHandler;
  readonly #onDone: (stream: HttpStream) => void;
  readonly #watch: (stream: HttpStream, waiting: boolean) => void;
  /** Told when the stream is over, its last hook included. */
  onSettled: (stream: HttpStream) => void = () => {};
  flow: HTTPFlow | null = null;
  /** The server connection serving this stream, once there is one. */
  #server: Server | null = null;
  #state:
    | "request-headers"
    | "request-body"
    | "early-body"
    | "request-hooks"
    | "connecting"
    | "response-headers"
    | "response-body"
    | "response-hooks"
    | "done" = "request-headers";
  #reqChunks: Uint8Array[] = [];
  #reqSize = 0;
  #reqStreaming = false;
  #reqEnded = false;
  #reqTrailers: Headers | null = null;
  #reqTransformer: StreamTransformer | null = null;
  #reqKept: Uint8Array[] | null = null;
  #respChunks: Uint8Array[] = [];
  #respSize = 0;
  #respStreaming = false;
  #respTransformer: StreamTransformer | null = null;
  #respKept: Uint8Array[] | null = null;
  #respTrailers: Headers | null = null;
  /** Whether response headers went to the client. */
  #clientStarted = false;
  #retried = false;
  /** Young-generation collections paced by the bytes this stream streams (see body.ts). */
  readonly #pace = collectionPacer();
  #failed = false;
  /** Whether the server connection carried requests before this one (a retry candidate). */
  #reused = false;

  constructor(
    context: Context,
    streamId: number,
    opts: StreamOptions,
    onConnect: ConnectHandler,
    onUpgrade: UpgradeHandler,
    onDone: (stream: HttpStream) => void = () => {},
    watch: (stream: HttpStream, waiting: boolean) => void = () => {},
  ) {
    super(context);
    this.streamId = streamId;
    this.#opts = opts;
    this.#onConnect = onConnect;
    this.#onUpgrade = onUpgrade;
    this.#onDone = onDone;
    this.#watch = watch;
  }

  /** Whether the exchange is over. */
  get done(): boolean {
    return this.#state === "done";
  }

  /** The server connection serving this stream, if any. */
  get server(): Server | null {
    return this.#server;
  }

  /** Body bytes pile up while the stream waits (a slow hook or connection): stop reading its sources. */
  protected override onBacklog(held: boolean): void {
    this.emit(new HoldStream(this.streamId, held));
  }

  protected onEvent(e: Event): void {
    if (this.#state === "done") return;
    // most frequent first
    if (e instanceof RequestHeaders) return this.#requestHeaders(e);
    if (e instanceof RequestEndOfMessage) return this.#requestEnd();
    if (e instanceof ResponseHeaders) return this.#responseHeaders(e);
    if (e instanceof ResponseData) return this.#responseData(e.data);
    if (e instanceof ResponseEndOfMessage) return this.#responseEnd();
    if (e instanceof RequestData) return this.#requestData(e.data);
    if (e instanceof RequestTrailers) {
      this.#reqTrailers = e.trailers;
      return;
    }
    if (e instanceof ResponseTrailers) {
      this.#respTrailers = e.trailers;
      return;
    }
    if (e instanceof RequestProtocolError) return this.#clientError(e.error);
    if (e instanceof ResponseProtocolError) return this.#serverError(e.error);
  }

  // ---- helpers ----

  #hook(name: EventName, then: () => void): void {
    const flow = this.flow!;
    this.call(new StartHook(name, flow, flow), () => {
      if (this.#state === "done") return;
      if (flow.killed) return this.#kill();
      then();
    });
  }

  #toClient(
    ev:
      | RequestProtocolError
      | ResponseHeaders
      | ResponseData
      | ResponseEndOfMessage
      | ResponseTrailers
      | ResponseProtocolError,
  ): void {
    this.emit(new SendHttp(ev, this.context.client));
  }

  #toServer(
    ev: RequestHeaders | RequestData | RequestEndOfMessage | RequestTrailers | RequestProtocolError,
  ): void {
    if (this.#server) this.emit(new SendHttp(ev, this.#server));
  }

  #finish(): void {
    this.#state = "done";
    if (this.waitingSince !== 0) {
      this.waitingSince = 0;
      this.#watch(this, false);
    }
    this.#onDone(this);
  }

  /** Give the server connection back to the HTTP layer. */
  #release(reusable: boolean): void {
    const s = this.#server;
    if (s === null) return;
    this.#server = null;
    this.emit(new ReleaseHttpConnection(s, reusable));
  }

  // ---- the request ----

  #requestHeaders(ev: RequestHeaders): void {
    const req = ev.request;
    const ctx = this.context;
    if (ev.flow) {
      this.flow = ev.flow;
      this.flow.request = req;
    } else {
      this.flow = new HTTPFlow(ctx.client, new Server(null), req);
    }
    const flow = this.flow;
    this.#reqEnded = ev.endStream;
    // where the request goes, by mode (mitmproxy's HttpStream.state_wait_for_request_headers)
    if (req.method === "CONNECT") {
      if (this.#opts.mode === "transparent") {
        return this.#refuse(400, "CONNECT is only allowed in regular and upstream proxy mode");
      }
      return this.#connect();
    }
    if (this.#opts.mode !== "transparent" && !req.host) {
      return this.#refuse(
        400,
        `Invalid request target for a proxy: ${JSON.stringify(req.path.slice(0, 80))} ` +
          `(expected an absolute URL like http://host/path, or CONNECT host:port)`,
      );
    }
    // HTTP/2 inside a tunnel or reverse proxy: like the origin form, the destination is the context's
    // server, whatever :authority says (it stays as the client sent it, as a Host field would)
    const h2Tunnel = req.httpVersion === "HTTP/2.0" && this.#opts.mode !== "regular" && !!ctx.server.address;
    if (!req.host || h2Tunnel) {
      // origin form: the destination of the tunnel or reverse proxy, else the Host header; the Host header
      // stays as the client sent it (setDestination, unlike the host/port setters, leaves it alone)
      const dest = ctx.server.address;
      if (dest) {
        req.setDestination(ctx.server.tls ? "https" : "http", dest[0], dest[1]);
      } else {
        const hh = req.headers.get("host");
        if (!hh) return this.#refuse(400, "Request destination unknown: no Host header");
        try {
          const u = new URL(`http://${hh}`);
          const port = u.port ? Number(u.port) : (ctx.client.tls ? 443 : 80);
          req.setDestination(ctx.client.tls ? "https" : "http", u.hostname.replace(/^\[|\]$/g, ""), port);
        } catch {
          return this.#refuse(400, `invalid Host header: ${JSON.stringify(hh.slice(0, 100))}`);
        }
      }
    } else {
      // absolute form: RFC 9112 §3.2.2, the target's authority wins over a Host field that says otherwise
      const hf = req.headers.get("host");
      if (hf !== undefined && hf !== null) {
        const dp = req.scheme === "https" ? 443 : 80;
        const h = req.host.includes(":") ? `[${req.host}]` : req.host;
        const authority = req.port === dp ? h : `${h}:${req.port}`;
        if (hf !== authority) req.headers.set("Host", authority);
      }
    }
    if (this.#opts.rewriteHost && ctx.server.address && !ctx.options.keep_host_header) {
      const [h, p] = ctx.server.address;
      const dp = ctx.server.tls ? 443 : 80;
      const host = h.includes(":") ? `[${h}]` : h;
      req.headers.set("Host", p === dp ? host : `${host}:${p}`);
    }
    flow.serverConn.address = [req.host, req.port];
    this.#state = "request-hooks";
    this.#hook("requestheaders", () => this.#afterRequestHeaders());
  }

  #afterRequestHeaders(): void {
    const flow = this.flow!;
    const req = flow.request;
    const limits = this.context.core.limits;
    if (flow.response) {
      // an addon answered in requestheaders: a small body is read first (the flow keeps it, the connection
      // stays in step), a large one or one the client waits for (Expect) is not: the connection closes after
      const declared = this.#declaredLength(req.headers);
      if (!this.#reqEnded && declared !== null && declared <= 1 << 20 && !req.headers.has("expect")) {
        this.#state = "early-body";
        return;
      }
      return this.#answerSynthetic();
    }
    const declared = this.#declaredLength(req.headers);
    if (
      declared !== null && limits.bodySizeLimit !== null && declared > limits.bodySizeLimit && !req.stream
    ) {
      return this.#refuse(413, "Request body exceeds mitmdeno's body_size_limit.");
    }
    this.#reqStreaming = !!req.stream ||
      (declared !== null && limits.streamLargeBodies !== null && declared > limits.streamLargeBodies);
    if (!this.#reqEnded && /100-continue/i.test(req.headers.get("expect") ?? "")) {
      req.headers.delete("expect");
      this.#toClient(new ResponseHeaders(this.streamId, Response.make(100, ""), false));
    }
    if (this.#reqStreaming) return this.#startStreamingRequest([]);
    this.#state = "request-body";
    if (this.#reqEnded) return this.#requestComplete();
  }

  #declaredLength(headers: Headers): number | null {
    const cl = headers.get("content-length");
    if (cl === undefined || cl === null) return null;
    const n = Number(cl);
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  }

  #requestData(d: Uint8Array): void {
    if (this.#state === "early-body") {
      this.#reqChunks.push(d);
      return;
    }
    if (this.#reqStreaming) {
      if (this.#state === "done") return;
      return this.#sendRequestChunk(d);
    }
    this.#reqChunks.push(d);
    this.#reqSize += d.length;
    const limits = this.context.core.limits;
    if (limits.bodySizeLimit !== null && this.#reqSize > limits.bodySizeLimit) {
      return this.#refuse(413, "Request body exceeds mitmdeno's body_size_limit.");
    }
    if (limits.streamLargeBodies !== null && this.#reqSize > limits.streamLargeBodies) {
      // too big to buffer: from now on it streams
      const prefix = this.#reqChunks;
      this.#reqChunks = [];
      this.#reqStreaming = true;
      this.#startStreamingRequest(prefix);
    }
  }

  #requestEnd(): void {
    this.#reqEnded = true;
    if (this.#reqStreaming) {
      if (this.#state === "connecting") return; // sent once the connection is there
      return this.#finishStreamingRequest();
    }
    if (this.#state === "request-body") return this.#requestComplete();
    if (this.#state === "early-body") {
      const req = this.flow!.request;
      req.rawContent = concat(this.#reqChunks);
      this.#reqChunks = [];
      req.timestampEnd = now();
      this.#answerSynthetic();
    }
  }

  /** A buffered request is complete: `request`, then an answer or the server. */
  #requestComplete(): void {
    const flow = this.flow!;
    const req = flow.request;
    const chunks = this.#reqChunks;
    req.rawContent = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : concat(chunks);
    this.#reqChunks = [];
    req.trailers = this.#reqTrailers;
    req.timestampEnd = now();
    this.#state = "request-hooks";
    this.#hook("request", () => {
      if (flow.response) return this.#answerSynthetic();
      this.#sendBuffered(false);
    });
  }

  // ---- server connection ----

  #getConnection(fresh: boolean, then: () => void): void {
    const req = this.flow!.request;
    const flow = this.flow!;
    if (this.context.core.isProxyItself(req.host, req.port)) {
      return this.#refuse(
        400,
        `Request destination is this proxy itself (${req.host}:${req.port}): refusing to loop`,
      );
    }
    this.#state = "connecting";
    flow.serverConn.address = [req.host, req.port];
    this.call(new GetHttpConnection([req.host, req.port], req.scheme === "https", fresh), (r) => {
      if (this.#state === "done") {
        if (!(r instanceof ProtocolError)) this.emit(new ReleaseHttpConnection(r, false));
        return;
      }
      if (r instanceof ProtocolError) return this.#fail(r);
      this.#server = r;
      flow.serverConn = r;
      this.#reused = r.timestampStart !== null && r.timestampStart < req.timestampStart;
      then();
    });
  }

  #sendBuffered(fresh: boolean): void {
    this.#getConnection(fresh, () => {
      const req = this.flow!.request;
      const body = req.rawContent ?? EMPTY;
      const id = this.streamId;
      this.#state = "response-headers";
      const trailers = req.trailers && req.trailers.size ? req.trailers : null;
      // trailers need a framing that carries them (HTTP/1: chunked), so no length is given with them
      this.#toServer(
        new RequestHeaders(id, req, body.length === 0 && !trailers, trailers ? null : body.length),
      );
      if (body.length || trailers) {
        if (body.length) this.#toServer(new RequestData(id, body));
        if (trailers) this.#toServer(new RequestTrailers(id, trailers));
        this.#toServer(new RequestEndOfMessage(id));
      }
      this.#waitForResponse();
    });
  }

  #startStreamingRequest(prefix: Uint8Array[]): void {
    const flow = this.flow!;
    const req = flow.request;
    req.rawContent = null;
    this.#reqTransformer = typeof req.stream === "function" ? req.stream : null;
    if (this.context.options.store_streamed_bodies) this.#reqKept = [];
    this.#getConnection(false, () => {
      const declared = this.#reqTransformer ? null : this.#declaredLength(req.headers);
      this.#state = "request-body";
      this.#toServer(new RequestHeaders(this.streamId, req, false, declared));
      for (const c of prefix) this.#sendRequestChunk(c);
      if (this.#reqEnded) this.#finishStreamingRequest();
    });
  }

  #sendRequestChunk(d: Uint8Array): void {
    if (this.#state === "connecting") {
      this.#reqChunks.push(d); // before the connection is there
      return;
    }
    this.#pace(d.length);
    const parts = this.#reqTransformer ? applyTransformer(this.#reqTransformer, d) : [d];
    for (const p of parts) {
      if (!p.length) continue;
      this.#reqKept?.push(p);
      this.#toServer(new RequestData(this.streamId, p));
    }
  }

  #finishStreamingRequest(): void {
    const flow = this.flow!;
    if (this.#reqChunks.length) {
      const pending = this.#reqChunks;
      this.#reqChunks = [];
      for (const c of pending) this.#sendRequestChunk(c);
    }
    if (this.#reqTransformer) {
      for (const p of applyTransformer(this.#reqTransformer, EMPTY)) {
        if (p.length) this.#toServer(new RequestData(this.streamId, p));
      }
    }
    if (this.#reqTrailers) this.#toServer(new RequestTrailers(this.streamId, this.#reqTrailers));
    this.#toServer(new RequestEndOfMessage(this.streamId));
    if (this.#reqKept) flow.request.rawContent = concat(this.#reqKept);
    flow.request.timestampEnd = now();
    this.#state = "response-headers";
    this.#hook("request", () => {
      this.#state = "response-headers";
      this.#waitForResponse();
    });
  }

  /** Wait for the response head: the HTTP layer watches the time (see {@link checkResponseTimeout}). */
  #waitForResponse(): void {
    this.waitingSince = Date.now();
    this.#watch(this, true);
  }

  /** Since when the stream waits for a response head (0: it does not). */
  waitingSince = 0;

  /**
   * Called by the HTTP layer's timer while the stream waits: fail it once it waited longer than
   * http_response_timeout, or tcp_timeout if that is shorter. Returns whether it is still waiting.
   */
  checkResponseTimeout(now: number): boolean {
    if (this.#state !== "response-headers" || this.waitingSince === 0) return false;
    const limits = this.context.core.limits;
    const response = limits.responseTimeout;
    const idle = limits.idleTimeout;
    const byIdle = idle > 0 && (response <= 0 || idle < response);
    const ms = byIdle ? idle : response;
    if (ms <= 0 || now - this.waitingSince < ms - 100) return true;
    this.waitingSince = 0;
    this.#toServer(new RequestProtocolError(this.streamId, new ProtocolError("timeout", "timeout", null)));
    this.#release(false);
    const why = byIdle
      ? `Server timed out: no data for ${ms / 1000}s (tcp_timeout)`
      : `Server did not respond within ${ms / 1000}s (http_response_timeout)`;
    this.#fail(new ProtocolError("timeout", why, 504));
    return false;
  }

  // ---- the response ----

  #responseHeaders(ev: ResponseHeaders): void {
    if (this.#state !== "response-headers" && this.#state !== "request-body") return;
    if (this.waitingSince !== 0) {
      this.waitingSince = 0;
      this.#watch(this, false);
    }
    const flow = this.flow!;
    flow.response = ev.response;
    const resp = ev.response;
    this.#state = "response-body";
    this.#hook("responseheaders", () => {
      const response = flow.response ?? resp;
      if (resp.statusCode === 101) return this.#upgrade();
      const declared = ev.endStream ? 0 : this.#declaredLength(resp.headers);
      const limits = this.context.core.limits;
      if (
        !response.stream && declared !== null && limits.bodySizeLimit !== null &&
        declared > limits.bodySizeLimit &&
        !(limits.streamLargeBodies !== null && declared > limits.streamLargeBodies)
      ) {
        this.#toServer(new RequestProtocolError(this.streamId, new ProtocolError("limit", "limit", null)));
        this.#release(false);
        return this.#fail(
          new ProtocolError("limit", "Response body exceeds mitmdeno's body_size_limit.", 502),
        );
      }
      this.#respStreaming = !!response.stream ||
        (declared !== null && limits.streamLargeBodies !== null && declared > limits.streamLargeBodies);
      if (this.#respStreaming) this.#startStreamingResponse(declared, []);
    });
  }

  #responseData(d: Uint8Array): void {
    if (this.#state !== "response-body") return;
    if (this.#respStreaming) return this.#sendResponseChunk(d);
    this.#respChunks.push(d);
    this.#respSize += d.length;
    const limits = this.context.core.limits;
    if (limits.streamLargeBodies !== null && this.#respSize > limits.streamLargeBodies) {
      const prefix = this.#respChunks;
      this.#respChunks = [];
      this.#respStreaming = true;
      this.#startStreamingResponse(null, prefix);
      return;
    }
    if (limits.bodySizeLimit !== null && this.#respSize > limits.bodySizeLimit) {
      this.#toServer(new RequestProtocolError(this.streamId, new ProtocolError("limit", "limit", null)));
      this.#release(false);
      this.#fail(new ProtocolError("limit", "Response body exceeds mitmdeno's body_size_limit.", 502));
    }
  }

  #startStreamingResponse(declared: number | null, prefix: Uint8Array[]): void {
    const flow = this.flow!;
    const response = flow.response!;
    this.#respTransformer = typeof response.stream === "function" ? response.stream : null;
    if (this.context.options.store_streamed_bodies) this.#respKept = [];
    response.rawContent = null;
    const length = this.#respTransformer ? null : declared;
    this.#clientStarted = true;
    this.#toClient(new ResponseHeaders(this.streamId, response, false, length));
    for (const c of prefix) this.#sendResponseChunk(c);
  }

  #sendResponseChunk(d: Uint8Array): void {
    this.#pace(d.length);
    const parts = this.#respTransformer ? applyTransformer(this.#respTransformer, d) : [d];
    for (const p of parts) {
      if (!p.length) continue;
      this.#respKept?.push(p);
      this.#toClient(new ResponseData(this.streamId, p));
    }
  }

  #responseEnd(): void {
    if (this.#state !== "response-body") return;
    const flow = this.flow!;
    const response = flow.response!;
    const reusable = true;
    if (this.#respStreaming) {
      if (this.#respTransformer) {
        for (const p of applyTransformer(this.#respTransformer, EMPTY)) {
          if (p.length) this.#toClient(new ResponseData(this.streamId, p));
        }
      }
      if (this.#respKept) response.rawContent = concat(this.#respKept);
      response.timestampEnd = now();
      if (this.#respTrailers) this.#toClient(new ResponseTrailers(this.streamId, this.#respTrailers));
      this.#toClient(new ResponseEndOfMessage(this.streamId));
      this.#release(reusable);
      this.#state = "response-hooks";
      this.call(new StartHook("response", flow, flow), () => {
        this.#finish();
        this.#settle();
      });
      return;
    }
    const chunks = this.#respChunks;
    response.rawContent = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : concat(chunks);
    this.#respChunks = [];
    if (this.#respTrailers) response.trailers = this.#respTrailers;
    response.timestampEnd = now();
    this.#release(reusable);
    this.#state = "response-body";
    this.call(new StartHook("response", flow, flow), () => {
      if (flow.killed) return this.#kill();
      this.#sendResponse();
    });
  }

  /** Send the flow's (complete) response to the client. */
  #sendResponse(): void {
    const flow = this.flow!;
    const response = flow.response;
    if (!response) return this.#kill();
    const id = this.streamId;
    const body = response.rawContent ?? EMPTY;
    const trailers = response.trailers && response.trailers.size ? response.trailers : null;
    this.#clientStarted = true;
    const bodyless = body.length === 0 && !trailers;
    this.#toClient(new ResponseHeaders(id, response, bodyless, trailers ? null : body.length));
    if (!bodyless) {
      if (body.length) this.#toClient(new ResponseData(id, body));
      if (trailers) this.#toClient(new ResponseTrailers(id, trailers));
      this.#toClient(new ResponseEndOfMessage(id));
    }
    this.#finish();
    this.#settle();
  }

  /** The response came from an addon: `responseheaders`, `response`, then it goes out. */
  #answerSynthetic(): void {
    const flow = this.flow!;
    if (!flow.request.timestampEnd) flow.request.timestampEnd = now();
    this.#state = "response-body";
    this.#hook("responseheaders", () => {
      this.call(new StartHook("response", flow, flow), () => {
        if (flow.killed) return this.#kill();
        this.#sendResponse();
      });
    });
  }

  /** 101 Switching Protocols: `response`, send it, then the HTTP layer relays both connections. */
  #upgrade(): void {
    const flow = this.flow!;
    const server = this.#server!;
    flow.response!.rawContent = EMPTY;
    flow.response!.timestampEnd = now();
    // set before the response hook, so addons can tell that a WebSocket connection follows (as mitmproxy)
    if (isWebSocketUpgrade(flow, !!this.context.options.websocket)) flow.websocket = new WebSocketData();
    this.call(new StartHook("response", flow, flow), () => {
      if (flow.killed || !flow.response) return this.#kill();
      this.#clientStarted = true;
      this.#toClient(new ResponseHeaders(this.streamId, flow.response, true, 0));
      this.#server = null;
      this.#finish();
      this.#onUpgrade(flow, server);
      this.#settle();
    });
  }

  // ---- CONNECT ----

  #connect(): void {
    const flow = this.flow!;
    const req = flow.request;
    req.timestampEnd = now();
    this.#state = "request-hooks";
    this.#hook("http_connect", () => {
      if (flow.response && (flow.response.statusCode < 200 || flow.response.statusCode >= 300)) {
        return this.call(new StartHook("http_connect_error", flow, flow), () => this.#sendResponse());
      }
      this.#onConnect(flow);
    });
  }

  /**
   * The HTTP layer opened (or did not need) the server connection: answer the CONNECT (`200 Connection
   * established`, or the response an addon set), fire `http_connected`, then `then` (the tunnel's next layer)
   * unless the flow was killed.
   */
  connectEstablished(then: () => void): void {
    const flow = this.flow!;
    const resp = flow.response ??
      new Response({ statusCode: 200, reason: "Connection established", rawContent: EMPTY });
    this.#clientStarted = true;
    this.#toClient(new ResponseHeaders(this.streamId, resp, true, 0));
    this.#finish();
    this.call(new StartHook("http_connected", flow, flow), () => {
      if (flow.killed) {
        this.#failed = false;
        return this.#kill();
      }
      then();
      this.#settle();
    });
  }

  /** The server of a CONNECT could not be reached (eager connect). */
  connectFailed(err: ProtocolError): void {
    const flow = this.flow!;
    flow.error = new FlowError(err.message);
    this.call(new StartHook("http_connect_error", flow, flow), () => {
      this.#toClient(new ResponseProtocolError(this.streamId, err));
      this.#finish();
      this.#settle();
    });
  }

  // ---- errors ----

  /** Answer the client with an error page (nothing reached a server). */
  #refuse(status: number, reason: string): void {
    this.#fail(new ProtocolError("client-protocol", reason, status));
  }

  #clientError(err: ProtocolError): void {
    this.#toServer(new RequestProtocolError(this.streamId, err));
    this.#release(false);
    this.#fail(err);
  }

  #serverError(err: ProtocolError): void {
    const flow = this.flow!;
    // a reused connection the server closed while idle: send the request once more on a fresh one, as
    // browsers do, but only for idempotent methods (RFC 9110 §9.2.2)
    if (
      err.kind === "server-closed-idle" && this.#reused && !this.#retried && !this.#reqStreaming &&
      flow.response === null && IDEMPOTENT.has(flow.request.method)
    ) {
      this.#retried = true;
      this.#release(false);
      this.log(
        `${this.context.client}: server closed a reused connection before responding: retrying`,
        "debug",
      );
      return this.#sendBuffered(true);
    }
    this.#release(false);
    this.#fail(err);
  }

  /** The exchange failed: `error`, then an error page for the client if nothing was sent yet. */
  #fail(err: ProtocolError): void {
    if (this.#failed) return;
    const flow = this.flow;
    if (flow?.killed) return this.#kill();
    this.#failed = true;
    this.#finish();
    if (!flow) {
      this.#toClient(new ResponseProtocolError(this.streamId, err));
      return this.#settle();
    }
    if (!flow.error) flow.error = new FlowError(err.message);
    this.call(new StartHook("error", flow, flow), () => {
      // an error page only if nothing was sent yet; else the client connection is just closed
      const e = this.#clientStarted ? new ProtocolError(err.kind, err.message, null) : err;
      this.#toClient(new ResponseProtocolError(this.streamId, e));
      this.#settle();
    });
  }

  /** The stream is over, its last hook included: tell the HTTP layer (client replay waits for this). */
  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.onSettled(this);
  }

  #settled = false;

  /** A killed flow: both connections are closed, no response is sent; `error` fires ("Connection killed."). */
  #kill(): void {
    if (this.#failed) return;
    this.#failed = true;
    const flow = this.flow!;
    // killed by an addon that removed the response rather than calling kill(): the error hook still says so
    if (!flow.error) flow.error = new FlowError(KILLED_MESSAGE);
    const err = new ProtocolError("refused", "killed", null);
    this.#toServer(new RequestProtocolError(this.streamId, err));
    this.#release(false);
    this.#finish();
    this.call(new StartHook("error", flow, flow), () => {
      this.#toClient(new ResponseProtocolError(this.streamId, err));
      this.#settle();
    });
  }
}
