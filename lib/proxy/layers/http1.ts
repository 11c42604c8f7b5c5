/**
 * The HTTP/1 layer on the client side: reads requests one after the other (pipelined requests are
 * answered in order), hands each to an {@link HttpStream}, writes responses, and handles CONNECT.
 */
import type { Context, Layer } from "../context.ts";
import { Request } from "../../http/message.ts";
import { Headers } from "../../http/headers.ts";
import { FlowError, HTTPFlow } from "../../flow/flow.ts";
import { Server } from "../../flow/connection.ts";
import {
  bodyFraming,
  type Framing,
  HttpSyntaxError,
  parseAuthority,
  parseRequestHead,
  parseTarget,
  requestHost,
} from "../../http1/parse.ts";
import { chunk as encodeChunk, lastChunk, responseHead } from "../../http1/serialize.ts";
import { clientWantsKeepAlive, endToEndFields, placeContentLength } from "../../http1/hop.ts";
import { fromLatin1 } from "../../http/bytes.ts";
import { bodyChunks, type BodyEnd } from "../body.ts";
import { errorResponse, ProtocolError } from "../errors.ts";
import { HeadTimeoutError, TimeoutError } from "../stream.ts";
import { type ClientCodec, HttpStream, type ResponseWriter } from "./http.ts";
import { nextLayer } from "../next_layer.ts";
import type { Response } from "../../http/message.ts";

/** Where requests go when the request line does not say (transparent/reverse, or inside CONNECT). */
export interface Destination {
  scheme: "http" | "https";
  host: string;
  port: number;
}

/** How the HTTP layer interprets request targets (mitmproxy's HTTPMode). */
export type HttpMode = "regular" | "transparent";

const CONTINUE = fromLatin1("HTTP/1.1 100 Continue\r\n\r\n");
const BODYLESS = (status: number, method: string) =>
  method === "HEAD" || (status >= 100 && status < 200) || status === 204 || status === 304;

/** The HTTP/1 client-side layer. */
export class Http1Layer implements Layer, ClientCodec {
  readonly name = "http1";
  readonly #ctx: Context;
  readonly #mode: HttpMode;
  readonly #dest: Destination | null;
  /** Reverse proxy: rewrite the Host header to the target unless keep_host_header. */
  readonly #rewriteHost: boolean;
  #started = false;
  #requestMethod = "GET";
  #clientVersion = "HTTP/1.1";

  constructor(ctx: Context, mode: HttpMode, dest: Destination | null = null, rewriteHost = false) {
    this.#ctx = ctx;
    this.#mode = mode;
    this.#dest = dest;
    this.#rewriteHost = rewriteHost;
  }

  get responseStarted(): boolean {
    return this.#started;
  }

  async run(): Promise<void> {
    const ctx = this.#ctx;
    const s = ctx.clientStream;
    // the first request's head must arrive within http_header_timeout of the connection's start
    let since: number | undefined = Date.now();
    for (;;) {
      this.#started = false;
      let head: Uint8Array | null;
      try {
        head = await s.readHead(
          ctx.limits.maxHeadSize,
          ctx.limits.idleTimeout,
          ctx.limits.headerTimeout,
          since,
        );
      } catch (e) {
        if (e instanceof HttpSyntaxError) await this.#badRequest(e.message, e.status);
        else if (e instanceof HeadTimeoutError) {
          const why = `request head not complete after ${
            ctx.limits.headerTimeout / 1000
          }s (http_header_timeout)`;
          ctx.master.log.info(`${ctx.client}: ${why}`);
          if (e.partial) await this.sendError(408, why);
          else s.destroy();
        } else if (!(e instanceof TimeoutError)) ctx.debug(`client read failed: ${(e as Error).message}`);
        return;
      }
      since = undefined;
      if (head === null) return;
      let flow: HTTPFlow;
      let framing: Framing;
      try {
        [flow, framing] = this.#makeFlow(head);
      } catch (e) {
        if (e instanceof HttpSyntaxError) {
          await this.#badRequest(e.message, e.status);
          return;
        }
        throw e;
      }
      this.#requestMethod = flow.request.method;
      this.#clientVersion = flow.request.httpVersion;
      if (flow.request.method === "CONNECT") {
        await this.#connect(flow);
        return;
      }
      const keepAlive = clientWantsKeepAlive(flow.request.httpVersion, flow.request.headers);
      const again = await new HttpStream(ctx, this, flow, framing, keepAlive).run();
      if (!again || s.isClosed) return;
    }
  }

  async #badRequest(reason: string, status: number): Promise<void> {
    this.#ctx.master.log.info(`${this.#ctx.client}: bad request: ${reason}`);
    await this.sendError(status, reason);
  }

  #makeFlow(head: Uint8Array): [HTTPFlow, Framing] {
    const ctx = this.#ctx;
    const p = parseRequestHead(head, ctx.limits);
    const t = parseTarget(p.method, p.target);
    const hostField = requestHost(p.headers, p.httpVersion, t.form);
    const framing = bodyFraming(p.headers, { request: true, httpVersion: p.httpVersion });
    let scheme: string;
    let host: string;
    let port: number;
    let path = "";
    let authority = "";
    if (t.form === "authority") {
      if (this.#mode !== "regular") {
        throw new HttpSyntaxError("CONNECT is only allowed in regular proxy mode");
      }
      scheme = "http";
      host = t.host!;
      port = t.port!;
      authority = p.target;
    } else if (this.#mode === "regular") {
      if (t.form !== "absolute") {
        throw new HttpSyntaxError(
          `Invalid request target for a proxy: ${JSON.stringify(p.target.slice(0, 80))} ` +
            `(expected an absolute URL like http://host/path, or CONNECT host:port)`,
        );
      }
      scheme = t.scheme!;
      host = t.host!;
      port = t.port!;
      path = t.path!;
    } else {
      const d = this.#dest;
      if (t.form === "absolute") {
        scheme = t.scheme!;
        host = t.host!;
        port = t.port!;
        path = t.path!;
      } else if (d) {
        scheme = d.scheme;
        host = d.host;
        port = d.port;
        path = t.form === "asterisk" ? "*" : t.path!;
      } else {
        if (!hostField) throw new HttpSyntaxError("Request destination unknown: no Host header");
        ({ host, port } = parseAuthority(hostField, 80));
        scheme = "http";
        path = t.form === "asterisk" ? "*" : t.path!;
      }
    }
    const request = new Request({
      method: p.method,
      scheme,
      host,
      port,
      path,
      authority,
      httpVersion: p.httpVersion,
      headers: Headers.adopt(p.headers),
      rawContent: null,
    });
    if (t.form === "absolute") {
      // RFC 9112 §3.2.2: the target's authority wins over a Host field that says otherwise
      const dp = scheme === "https" ? 443 : 80;
      const h = host.includes(":") ? `[${host}]` : host;
      const authority = port === dp ? h : `${h}:${port}`;
      if (hostField !== null && hostField !== authority) request.headers.set("Host", authority);
    }
    if (this.#rewriteHost && this.#dest && !ctx.options.keep_host_header) {
      const d = this.#dest;
      const dp = d.scheme === "https" ? 443 : 80;
      request.headers.set("Host", d.port === dp ? d.host : `${d.host}:${d.port}`);
    }
    const flow = new HTTPFlow(ctx.client, new Server([host, port]), request);
    return [flow, framing];
  }

  /** CONNECT host:port: hooks, `200 Connection established`, then the next layer on the tunnel. */
  async #connect(flow: HTTPFlow): Promise<void> {
    const ctx = this.#ctx;
    const addons = ctx.master.addons;
    const req = flow.request;
    req.timestampEnd = Date.now() / 1000;
    await addons.handleLifecycle("http_connect", flow);
    if (flow.killed) return;
    if (flow.response && (flow.response.statusCode < 200 || flow.response.statusCode >= 300)) {
      await addons.handleLifecycle("http_connect_error", flow);
      await this.sendResponse(flow, false);
      return;
    }
    const address: [string, number] = [req.host, req.port];
    let conn = null;
    // eager (mitmproxy's default): connect before the 200, so a dead server fails the CONNECT; not
    // needed when an idle TLS connection to that server waits in the pool (it will most likely be used)
    if (ctx.options.connection_strategy === "eager" && !ctx.pool.hasIdleTls(address)) {
      try {
        conn = await ctx.pool.get(address, ctx.limits.connectTimeout);
        flow.serverConn = conn.server;
      } catch (e) {
        const err = e instanceof ProtocolError ? e : new ProtocolError(String(e), 502);
        flow.error = new FlowError(err.message);
        await addons.handleLifecycle("http_connect_error", flow);
        await this.sendError(err.status ?? 502, err.message);
        return;
      }
    }
    // mitmproxy sends no headers here, for Android emulator compatibility.
    const resp = flow.response;
    if (resp) await this.sendResponse(flow, true);
    else await ctx.clientStream.write(fromLatin1("HTTP/1.1 200 Connection established\r\n\r\n"));
    await addons.handleLifecycle("http_connected", flow);
    if (flow.killed) return;
    const layer = await nextLayer(ctx, { host: req.host, port: req.port }, conn);
    if (layer) await ctx.runLayer(layer);
  }

  // ---- ClientCodec ----

  async sendContinue(): Promise<void> {
    await this.#ctx.clientStream.write(CONTINUE);
  }

  requestBody(framing: Framing, end: BodyEnd): AsyncGenerator<Uint8Array> {
    const ctx = this.#ctx;
    return bodyChunks(ctx.clientStream, framing, {
      timeoutMs: ctx.limits.idleTimeout,
      limits: ctx.limits,
      end,
      truncatedStatus: null,
      what: "Request",
    });
  }

  /** The response head's fields: end-to-end fields as they are, framed for what is sent. */
  #headFields(resp: Response, method: string, length: number | null, chunked: boolean, keepAlive: boolean) {
    const upgrade = resp.statusCode === 101;
    const bodyless = BODYLESS(resp.statusCode, method);
    const out = endToEndFields(resp.headers, upgrade);
    // HEAD and 304 answers keep the resource's Content-Length; others carry the length actually sent
    if (method !== "HEAD" && resp.statusCode !== 304) {
      const sendLength = bodyless || chunked ? null : length;
      if (!placeContentLength(out, sendLength) && sendLength !== null) {
        out.push(["Content-Length", String(sendLength)]);
      }
    }
    if (chunked && !bodyless) out.push(["Transfer-Encoding", "chunked"]);
    if (!upgrade) {
      if (!keepAlive) out.push(["Connection", "close"]);
      else if (this.#clientVersion === "HTTP/1.0") out.push(["Connection", "keep-alive"]);
    }
    return out;
  }

  async sendResponse(flow: HTTPFlow, keepAlive: boolean): Promise<boolean> {
    const resp = flow.response!;
    const method = flow.request.method;
    const body = BODYLESS(resp.statusCode, method) ? new Uint8Array(0) : resp.rawContent ?? new Uint8Array(0);
    const trailers = resp.trailers && resp.trailers.size && this.#clientVersion === "HTTP/1.1"
      ? resp.trailers
      : null;
    const keep = keepAlive && !/close/i.test(resp.headers.get("connection") ?? "") || resp.statusCode === 101;
    const fields = this.#headFields(resp, method, body.length, !!trailers, keep);
    const s = this.#ctx.clientStream;
    if (trailers) {
      const head = responseHead("HTTP/1.1", resp.statusCode, resp.reason || "", fields);
      this.#started = true;
      await s.writev([head, ...encodeChunk(body), lastChunk(trailers.fields)]);
    } else if (body.length <= 64 * 1024) {
      // head and body in one buffer: one write, no extra copy
      const wire = responseHead("HTTP/1.1", resp.statusCode, resp.reason || "", fields, body);
      this.#started = true;
      const w = s.write(wire);
      if (w) await w;
    } else {
      const head = responseHead("HTTP/1.1", resp.statusCode, resp.reason || "", fields);
      this.#started = true;
      await s.writev([head, body]);
    }
    if (!keep) s.end();
    return keep;
  }

  async startResponse(flow: HTTPFlow, length: number | null, keepAlive: boolean): Promise<ResponseWriter> {
    const resp = flow.response!;
    const method = flow.request.method;
    const s = this.#ctx.clientStream;
    const chunked = length === null && this.#clientVersion === "HTTP/1.1";
    const keep = keepAlive && (length !== null || chunked);
    this.#started = true;
    await s.write(
      responseHead(
        "HTTP/1.1",
        resp.statusCode,
        resp.reason || "",
        this.#headFields(resp, method, length, chunked, keep),
      ),
    );
    return {
      write: async (c) => {
        if (chunked) await s.writev(encodeChunk(c));
        else await s.write(c);
      },
      end: async (trailers) => {
        if (chunked) await s.write(lastChunk(trailers));
        if (!keep) s.end();
        return keep;
      },
    };
  }

  async sendError(status: number, reason: string): Promise<void> {
    const s = this.#ctx.clientStream;
    if (this.#started || s.isClosed) {
      s.destroy();
      return;
    }
    const r = errorResponse(status, reason);
    this.#started = true;
    try {
      await s.writev([responseHead("HTTP/1.1", r.statusCode, r.reason, r.headers.fields), r.rawContent!]);
    } catch { /* client already gone */ }
    s.end();
  }
}
