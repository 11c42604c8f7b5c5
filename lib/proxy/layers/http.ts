/**
 * One HTTP exchange (mitmproxy's HttpStream): raises `requestheaders`, `request`, `responseheaders`,
 * `response` or `error` at their precise points, buffers or streams bodies, opens the server connection
 * only when a response is really needed, and relays the result to the client through a {@link ClientCodec}.
 */
import { type Context, isProxyItself, type Limits } from "../context.ts";
import type { HTTPFlow } from "../../flow/flow.ts";
import { FlowError } from "../../flow/flow.ts";
import { Response } from "../../http/message.ts";
import type { StreamTransformer } from "../../http/message.ts";
import { concat } from "../../http/bytes.ts";
import { bodyFraming, type Framing, HttpSyntaxError, parseResponseHead } from "../../http1/parse.ts";
import { chunk as encodeChunk, lastChunk, requestHead } from "../../http1/serialize.ts";
import { Headers } from "../../http/headers.ts";
import { endToEndFields, hasConnectionToken, isUpgrade, placeContentLength } from "../../http1/hop.ts";
import { bodyChunks, type BodyEnd, collectionPacer, readBody, readFixedBody } from "../body.ts";
import { ProtocolError } from "../errors.ts";
import { HeadTimeoutError, TimeoutError } from "../stream.ts";
import { ServerConnection } from "../server_conn.ts";
import { relay } from "./tcp.ts";

/** What the exchange needs from the client-side protocol (HTTP/1 now, HTTP/2 later). */
export interface ClientCodec {
  /** Tell the client to send its body (`100 Continue`). */
  sendContinue(): Promise<void>;
  /** The request body's chunks, per its framing. */
  requestBody(framing: Framing, end: BodyEnd): AsyncGenerator<Uint8Array>;
  /** Send a complete response; returns whether the client connection can stay open. */
  sendResponse(flow: HTTPFlow, keepAlive: boolean): Promise<boolean>;
  /** Start a streamed response (head only); `length` is known or null. Returns a body writer. */
  startResponse(flow: HTTPFlow, length: number | null, keepAlive: boolean): Promise<ResponseWriter>;
  /** Answer with a proxy-generated error page (if nothing was sent yet) and close. */
  sendError(status: number, reason: string): Promise<void>;
  /** Whether any response bytes were sent for the current exchange. */
  readonly responseStarted: boolean;
}

/** Writes a streamed response body to the client. */
export interface ResponseWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Finish the body; returns whether the client connection can stay open. */
  end(trailers: [string, string][] | null): Promise<boolean>;
}

const now = () => Date.now() / 1000;
const EMPTY = new Uint8Array(0);
/**
 * Whether a body streams instead of being buffered for hooks: when an addon asked for it, or its declared
 * size is over stream_large_bodies. A declared size over body_size_limit is refused with `status`.
 */
function streams(
  forced: boolean,
  declared: number | null,
  limits: Limits,
  what: string,
  status: number,
): boolean {
  if (forced) return true;
  if (declared === null) return false;
  if (limits.streamLargeBodies !== null && declared > limits.streamLargeBodies) return true;
  if (limits.bodySizeLimit !== null && declared > limits.bodySizeLimit) {
    throw new ProtocolError(`${what} body exceeds mitmdeno's body_size_limit.`, status);
  }
  return false;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** Whether `e` says the server closed (or reset) the connection before sending any response byte. */
function closedBeforeResponse(e: unknown): boolean {
  if (e instanceof ProtocolError) return e.message.startsWith("Server closed the connection without");
  const code = (e as { code?: string })?.code;
  return code === "ECONNRESET" || code === "EPIPE";
}

function applyTransformer(fn: StreamTransformer, chunk: Uint8Array): Uint8Array[] {
  const r = fn(chunk);
  return r instanceof Uint8Array ? [r] : [...r];
}

/** Runs one request/response exchange. */
export class HttpStream {
  readonly #ctx: Context;
  readonly #client: ClientCodec;
  readonly flow: HTTPFlow;
  readonly #framing: Framing;
  readonly #keepAlive: boolean;
  #server: ServerConnection | null = null;

  constructor(ctx: Context, client: ClientCodec, flow: HTTPFlow, framing: Framing, keepAlive: boolean) {
    this.#ctx = ctx;
    this.#client = client;
    this.flow = flow;
    this.#framing = framing;
    this.#keepAlive = keepAlive;
  }

  /** Run the exchange. Returns whether the client connection may carry another request. */
  async run(): Promise<boolean> {
    try {
      const again = await this.#run();
      if (this.flow.killed) {
        // mitmproxy: a killed flow ends with the `error` hook ("Connection killed.") and no response
        if (this.#server) await this.#ctx.pool.discard(this.#server);
        await this.#ctx.master.addons.handleLifecycle("error", this.flow);
        return false;
      }
      return again;
    } catch (e) {
      await this.#fail(e);
      return false;
    }
  }

  async #fail(e: unknown): Promise<void> {
    const flow = this.flow;
    const ctx = this.#ctx;
    let status: number | null = 502;
    let msg: string;
    if (e instanceof ProtocolError) {
      status = e.status;
      msg = e.message;
    } else if (e instanceof HttpSyntaxError) {
      status = e.status === 431 ? 502 : 502;
      msg = `Invalid response from server: ${e.message}`;
    } else if (e instanceof TimeoutError) {
      status = 504;
      msg = `Server timed out: ${e.message}`;
    } else {
      msg = (e as Error)?.message ?? String(e);
      if ((e as { code?: string })?.code === "ECONNRESET" || /closed|reset|EPIPE/i.test(msg)) status = null;
    }
    if (this.#server) await ctx.pool.discard(this.#server);
    if (!flow.error) flow.error = new FlowError(msg);
    if (!flow.killed) {
      await ctx.master.addons.handleLifecycle("error", flow);
      if (status !== null && !this.#client.responseStarted) await this.#client.sendError(status, msg);
    }
  }

  async #run(): Promise<boolean> {
    const flow = this.flow;
    const ctx = this.#ctx;
    const addons = ctx.master.addons;
    const limits = ctx.limits;
    const req = flow.request;

    const hooked = addons.runHook("requestheaders", flow);
    if (hooked) await hooked;
    if (flow.killed) return false;

    // An addon answered already: drain a small body so the connection stays in sync, else close.
    if (flow.response) {
      return await this.#answerEarly();
    }

    const declared = this.#framing.kind === "length" ? this.#framing.length : null;
    let streamRequest = streams(!!req.stream, declared, limits, "Request", 413);

    if (this.#framing.kind !== "none" && /100-continue/i.test(req.headers.get("expect") ?? "")) {
      req.headers.delete("expect");
      await this.#client.sendContinue();
    }

    const reqEnd: BodyEnd = { trailers: null };
    let prefix: Uint8Array[] = [];
    let reqChunks: AsyncGenerator<Uint8Array> | null = null;
    if (!streamRequest) {
      if (this.#framing.kind === "none") req.rawContent = EMPTY; // most GETs: no chunk machinery
      else {
        reqChunks = this.#client.requestBody(this.#framing, reqEnd);
        const r = await readBody(reqChunks, {
          maxSize: limits.bodySizeLimit,
          streamAbove: limits.streamLargeBodies,
          limitStatus: 413,
          what: "Request",
        });
        if (r.overflow) {
          streamRequest = true;
          prefix = r.chunks;
          reqChunks = r.rest!;
        } else {
          req.rawContent = concat(r.chunks);
          req.trailers = reqEnd.trailers ? new Headers(reqEnd.trailers) : null;
        }
      }
    }

    if (!streamRequest) {
      req.timestampEnd = now();
      const hooked = addons.runHook("request", flow);
      if (hooked) await hooked;
      if (flow.killed) return false;
      if (flow.response) return await this.#answerSynthetic();
      return await this.#exchangeBuffered();
    }
    req.rawContent = null;
    await this.#sendRequestStreamed(
      prefix,
      reqChunks ?? this.#client.requestBody(this.#framing, reqEnd),
      reqEnd,
    );
    req.timestampEnd = now();
    await addons.handleLifecycle("request", flow);
    if (flow.killed) return false;
    return await this.#handleResponse();
  }

  /** A response set in `requestheaders`: read (or refuse) the body, then answer. */
  async #answerEarly(): Promise<boolean> {
    const ctx = this.#ctx;
    let keepAlive = this.#keepAlive;
    if (
      this.#framing.kind === "length" && this.#framing.length <= 1 << 20 &&
      !this.flow.request.headers.has("expect")
    ) {
      const r = await readBody(this.#client.requestBody(this.#framing, { trailers: null }), {
        maxSize: null,
        streamAbove: null,
        limitStatus: 413,
        what: "Request",
      });
      this.flow.request.rawContent = concat(r.chunks);
    } else if (this.#framing.kind !== "none") keepAlive = false;
    this.flow.request.timestampEnd = now();
    void ctx;
    return await this.#answerSynthetic(keepAlive);
  }

  /** The response came from an addon: fire the response hooks and send it. */
  async #answerSynthetic(keepAlive = this.#keepAlive): Promise<boolean> {
    const flow = this.flow;
    const addons = this.#ctx.master.addons;
    await addons.handleLifecycle("responseheaders", flow);
    if (flow.killed) return false;
    await addons.handleLifecycle("response", flow);
    if (flow.killed || !flow.response) return false;
    return await this.#client.sendResponse(flow, keepAlive);
  }

  /** The server connection for this request: the client's live one (synchronously), else a new one. */
  #connect(fresh = false): ServerConnection | Promise<ServerConnection> {
    const req = this.flow.request;
    const ctx = this.#ctx;
    const address: [string, number] = [req.host, req.port];
    this.flow.serverConn.address = address;
    if (isProxyItself(req.host, req.port)) {
      throw new ProtocolError(
        `Request destination is this proxy itself (${req.host}:${req.port}): refusing to loop`,
        400,
      );
    }
    const tls = req.scheme === "https";
    const live = fresh ? null : ctx.pool.live(address, tls);
    if (live) return this.#attach(live);
    return ctx.pool.get(address, ctx.limits.connectTimeout, tls, null, fresh).then((c) => this.#attach(c));
  }

  #attach(conn: ServerConnection): ServerConnection {
    this.flow.serverConn = conn.server;
    this.#server = conn;
    conn.idle = false; // until the response is completely read
    return conn;
  }

  /**
   * The request head as it goes upstream (followed by `body` in the same buffer when given). A
   * Content-Length the request had keeps its name and place and gets the length actually sent.
   */
  #requestHeadBytes(length: number | null, chunked: boolean, body?: Uint8Array): Uint8Array {
    const req = this.flow.request;
    const out = endToEndFields(req.headers, isUpgrade(req.headers));
    const sendLength = chunked ? null : length;
    const hadLength = placeContentLength(out, sendLength);
    if (!out.some((f) => f[0].length === 4 && f[0].toLowerCase() === "host")) {
      const dp = req.scheme === "https" ? 443 : 80;
      out.unshift(["Host", req.port === dp ? req.host : `${req.host}:${req.port}`]);
    }
    if (chunked) out.push(["Transfer-Encoding", "chunked"]);
    else if (
      sendLength !== null && !hadLength && (sendLength > 0 || /^(POST|PUT|PATCH)$/.test(req.method))
    ) {
      out.push(["Content-Length", String(sendLength)]);
    }
    const target = req.path === "*" && req.method === "OPTIONS" ? "*" : (req.path || "/");
    const version = req.httpVersion === "HTTP/1.0" ? "HTTP/1.0" : "HTTP/1.1";
    return requestHead(req.method, target, version, out, body);
  }

  /**
   * Send a buffered request. A reused connection may have been closed by the server meanwhile: a
   * failed write is retried once on a fresh connection. Returns whether the connection was reused
   * (so a response that never starts may be retried too, see {@link #exchangeBuffered}).
   */
  async #sendRequestBuffered(fresh = false): Promise<boolean> {
    const req = this.flow.request;
    const body = req.rawContent ?? EMPTY;
    for (let attempt = 0;; attempt++) {
      let conn = this.#connect(fresh || attempt > 0);
      if (!(conn instanceof ServerConnection)) conn = await conn;
      const reused = conn.server.timestampStart !== null && conn.server.timestampStart < req.timestampStart;
      try {
        // head and body in one buffer (one write) unless the body is large
        const small = body.length <= 64 * 1024;
        const head = this.#requestHeadBytes(body.length, false, small ? body : undefined);
        const w = small ? conn.stream!.write(head) : conn.stream!.writev([head, body]);
        if (w) await w;
        return reused && attempt === 0;
      } catch (e) {
        await this.#ctx.pool.discard(conn);
        this.#server = null;
        if (!reused || attempt > 0 || fresh) throw e;
      }
    }
  }

  /**
   * Send a buffered request and handle the response. When a reused connection ends (or resets)
   * before any byte of the response, the server most likely closed it while idle: the request is
   * sent once more on a fresh connection, as browsers do, but only for idempotent methods
   * (RFC 9110 §9.2.2): a POST the server may have processed is never sent twice.
   */
  async #exchangeBuffered(): Promise<boolean> {
    const reused = await this.#sendRequestBuffered();
    try {
      return await this.#handleResponse();
    } catch (e) {
      const idempotent = IDEMPOTENT.has(this.flow.request.method);
      if (!reused || !idempotent || this.flow.response || !this.#server || !closedBeforeResponse(e)) throw e;
      this.#ctx.debug(`server closed a reused connection before responding: retrying on a fresh one`);
      await this.#ctx.pool.discard(this.#server);
      this.#server = null;
      await this.#sendRequestBuffered(true);
      return await this.#handleResponse();
    }
  }

  async #sendRequestStreamed(
    prefix: Uint8Array[],
    rest: AsyncGenerator<Uint8Array>,
    end: BodyEnd,
  ): Promise<void> {
    const req = this.flow.request;
    const conn = await this.#connect();
    const s = conn.stream!;
    const known = this.#framing.kind === "length" && typeof req.stream !== "function"
      ? this.#framing.length
      : null;
    const chunked = known === null && this.#framing.kind !== "none";
    await s.write(this.#requestHeadBytes(known, chunked));
    const fn = typeof req.stream === "function" ? req.stream : null;
    const store = this.#ctx.options.store_streamed_bodies as boolean;
    const kept: Uint8Array[] = [];
    const write = async (p: Uint8Array) => {
      if (p.length === 0) return;
      if (store) kept.push(p);
      if (chunked) await s.writev(encodeChunk(p));
      else await s.write(p);
    };
    const pace = collectionPacer();
    const send = async (chunk: Uint8Array) => {
      pace(chunk.length);
      for (const p of fn ? applyTransformer(fn, chunk) : [chunk]) await write(p);
    };
    for (const c of prefix) await send(c);
    for await (const c of rest) await send(c);
    if (fn) { for (const p of applyTransformer(fn, new Uint8Array(0))) await write(p); }
    if (chunked) await s.write(lastChunk(end.trailers));
    if (store) req.rawContent = concat(kept);
  }

  async #readResponseHead(conn: ServerConnection): Promise<Response> {
    const ctx = this.#ctx;
    const s = conn.stream!;
    const limit = ctx.limits.responseTimeout;
    for (;;) {
      let head: Uint8Array | null;
      try {
        head = await s.readHead(ctx.limits.maxHeadSize, ctx.limits.idleTimeout, limit, Date.now());
      } catch (e) {
        if (!(e instanceof HeadTimeoutError)) throw e;
        throw new ProtocolError(
          `Server did not respond within ${limit / 1000}s (http_response_timeout)`,
          504,
        );
      }
      if (head === null) {
        throw new ProtocolError("Server closed the connection without sending a response", 502);
      }
      const p = parseResponseHead(head, ctx.limits);
      if (p.statusCode >= 100 && p.statusCode < 200 && p.statusCode !== 101) continue; // informational
      return new Response({
        statusCode: p.statusCode,
        reason: p.reason,
        httpVersion: p.httpVersion,
        headers: Headers.adopt(p.headers),
        rawContent: null,
        timestampStart: now(),
      });
    }
  }

  async #handleResponse(): Promise<boolean> {
    const flow = this.flow;
    const ctx = this.#ctx;
    const addons = ctx.master.addons;
    const limits = ctx.limits;
    const conn = this.#server!;
    const resp = await this.#readResponseHead(conn);
    flow.response = resp;
    const framing = bodyFraming(resp.headers.fields, {
      request: false,
      httpVersion: resp.httpVersion,
      statusCode: resp.statusCode,
      requestMethod: flow.request.method,
    });
    if (
      framing.kind === "close" || hasConnectionToken(resp.headers, "close") ||
      (resp.httpVersion === "HTTP/1.0" && !hasConnectionToken(resp.headers, "keep-alive"))
    ) conn.reusable = false;

    const hooked = addons.runHook("responseheaders", flow);
    if (hooked) await hooked;
    if (flow.killed) {
      await ctx.pool.discard(conn);
      return false;
    }
    const response = flow.response ?? resp;

    if (resp.statusCode === 101) {
      return await this.#upgrade(conn);
    }

    const declared = framing.kind === "length" ? framing.length : null;
    const streamResponse = streams(!!response.stream, declared, limits, "Response", 502);
    const end: BodyEnd = { trailers: null };
    let chunks: AsyncGenerator<Uint8Array> | null = null;
    let prefix: Uint8Array[] = [];
    if (!streamResponse) {
      if (framing.kind === "none") return await this.#finishBuffered(conn, response, EMPTY, null);
      if (declared !== null) {
        // a body of known size within the limits: no chunk machinery
        const body = conn.stream!.takeBuffered(declared) ?? await readFixedBody(conn.stream!, declared, {
          timeoutMs: limits.idleTimeout,
          truncatedStatus: 502,
          what: "Response",
        });
        return await this.#finishBuffered(conn, response, body, null);
      }
      chunks = this.#responseChunks(conn, framing, end);
      const r = await readBody(chunks, {
        maxSize: limits.bodySizeLimit,
        streamAbove: limits.streamLargeBodies,
        limitStatus: 502,
        what: "Response",
      });
      if (!r.overflow) return await this.#finishBuffered(conn, response, concat(r.chunks), end.trailers);
      prefix = r.chunks;
      chunks = r.rest!;
    }
    chunks ??= this.#responseChunks(conn, framing, end);
    // streamed response
    const fn = typeof response.stream === "function" ? response.stream : null;
    const length = fn ? null : declared;
    const writer = await this.#client.startResponse(flow, length, this.#keepAlive);
    const store = ctx.options.store_streamed_bodies as boolean;
    const kept: Uint8Array[] = [];
    const write = async (p: Uint8Array) => {
      if (!p.length) return;
      if (store) kept.push(p);
      await writer.write(p);
    };
    const pace = collectionPacer();
    const send = async (chunk: Uint8Array) => {
      pace(chunk.length);
      for (const p of fn ? applyTransformer(fn, chunk) : [chunk]) await write(p);
    };
    response.rawContent = null;
    for (const c of prefix) await send(c);
    for await (const c of chunks) await send(c);
    if (fn) { for (const p of applyTransformer(fn, new Uint8Array(0))) await write(p); }
    if (store) response.rawContent = concat(kept);
    response.timestampEnd = now();
    conn.idle = true;
    const keep = await writer.end(end.trailers);
    if (!conn.reusable) await ctx.pool.discard(conn);
    await addons.handleLifecycle("response", flow);
    return keep && !flow.killed;
  }

  #responseChunks(conn: ServerConnection, framing: Framing, end: BodyEnd): AsyncGenerator<Uint8Array> {
    const limits = this.#ctx.limits;
    return bodyChunks(conn.stream!, framing, {
      timeoutMs: limits.idleTimeout,
      limits,
      end,
      truncatedStatus: 502,
      what: "Response",
    });
  }

  /** A buffered response body is complete: fire `response` and send it. */
  async #finishBuffered(
    conn: ServerConnection,
    response: Response,
    body: Uint8Array,
    trailers: [string, string][] | null,
  ): Promise<boolean> {
    const flow = this.flow;
    response.rawContent = body;
    if (trailers) response.trailers = new Headers(trailers);
    response.timestampEnd = now();
    conn.idle = true;
    if (!conn.reusable) await this.#ctx.pool.discard(conn);
    const hooked = this.#ctx.master.addons.runHook("response", flow);
    if (hooked) await hooked;
    if (flow.killed || !flow.response) return false;
    return this.#client.sendResponse(flow, this.#keepAlive);
  }

  /** 101 Switching Protocols: send it, then relay raw bytes both ways (WebSocket interception comes later). */
  async #upgrade(conn: ServerConnection): Promise<boolean> {
    const flow = this.flow;
    const addons = this.#ctx.master.addons;
    flow.response!.rawContent = new Uint8Array(0);
    flow.response!.timestampEnd = now();
    await addons.handleLifecycle("response", flow);
    if (flow.killed || !flow.response) return false;
    await this.#client.sendResponse(flow, true);
    conn.reusable = false;
    await relay(this.#ctx.clientStream, conn.stream!);
    await this.#ctx.pool.discard(conn);
    return false;
  }
}
