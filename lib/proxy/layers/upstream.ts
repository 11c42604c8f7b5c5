/**
 * Upstream proxy mode (mitmproxy's `upstream:URL` with its `HttpUpstreamProxy` tunnel layer): clients talk
 * to us as to a regular proxy; every server connection goes through the upstream proxy. Plain HTTP requests
 * go to it in absolute form (no CONNECT); anything else (HTTPS, TCP tunnels) gets one `CONNECT host:port`
 * per upstream connection, after the `http_connect_upstream` hook (where upstream_auth adds
 * Proxy-Authorization), and TLS to the server is ours on top of that tunnel, so interception works as in
 * regular mode. Idle TLS connections through the proxy are pooled like any other (the pool key has `via`).
 *
 * As the root layer this one sees every OpenConnection of the stack: one whose server has `via` becomes
 * TCP to the proxy (the driver connects to `via`), TLS to it for an https:// proxy, then the CONNECT
 * exchange, and only then is the layer that asked told the connection is open. A refusal (407, 502, ...),
 * a proxy that closes or answers garbage fails that OpenConnection with a message naming the proxy.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../events.ts";
import { CloseConnection, type Command, OpenConnection, SendData, StartHook, StartTls } from "../commands.ts";
import { ProtocolError } from "../errors.ts";
import type { Context } from "../context.ts";
import type { ModeSpec } from "../mode.ts";
import type { Server } from "../../flow/connection.ts";
import { HTTPFlow } from "../../flow/flow.ts";
import { Request } from "../../http/message.ts";
import { hostPort } from "../../http/message.ts";
import { concat } from "../../http/bytes.ts";
import { findHeadEnd, parseResponseHead } from "../../http1/parse.ts";
import { requestHead } from "../../http1/serialize.ts";
import { defaultSni } from "../conns/connect.ts";
import { HttpLayer } from "./http/layer.ts";
import { NextLayer } from "./next_layer.ts";

/** Longest CONNECT response head accepted from an upstream proxy. */
const MAX_CONNECT_RESPONSE = 64 * 1024;

/** A CONNECT to the upstream proxy waiting for its answer. */
interface PendingConnect {
  open: OpenConnection;
  buf: Uint8Array[];
  size: number;
}

/** The first layer of a connection in upstream mode. */
export class UpstreamMode extends Layer {
  #child: Layer | null = null;
  readonly #via: [string, [string, number]];
  readonly #pending = new Map<Server, PendingConnect>();

  constructor(ctx: Context, spec: ModeSpec) {
    super(ctx);
    const t = spec.target!;
    this.#via = [t.scheme, [t.host, t.port]];
  }

  /** The HTTP layer under this one, once started (client replay injects its flow there). */
  get http(): HttpLayer | null {
    return this.#child instanceof HttpLayer ? this.#child : null;
  }

  protected onEvent(e: Event): void {
    if (e instanceof Start) {
      this.#child = this.adopt(
        new HttpLayer(
          this.context,
          { mode: "upstream", rewriteHost: false, via: this.#via },
          (tctx, initial) => new NextLayer(tctx, initial),
        ),
      );
      return this.#child.handle(e);
    }
    if ((e instanceof DataReceived || e instanceof ConnectionClosed) && this.#pending.size) {
      const p = this.#pending.get(e.conn as Server);
      if (p) {
        return e instanceof DataReceived
          ? this.#connectResponse(e.conn as Server, p, e.data)
          : this.#proxyClosed(e.conn as Server, p);
      }
    }
    this.#child?.handle(e);
  }

  override childCommand(c: Command, from: Layer): void {
    if (c instanceof OpenConnection && c.conn.via) return this.#open(c);
    void from;
    this.emit(c);
  }

  /** The proxy as `host:port`. */
  #proxyName(server: Server): string {
    return hostPort(...server.via![1]);
  }

  #open(c: OpenConnection): void {
    const server = c.conn;
    this.request(new OpenConnection(server), (err) => {
      if (err) return c.complete(err);
      // an idle TLS connection from the pool: tunneled and encrypted already
      if (server.timestampTlsSetup !== null) return c.complete(null);
      if (server.via![0] !== "https") return this.#tunnel(c);
      const cfg = this.context.core.conns.tlsConfig;
      const proxyHost = server.via![1][0];
      this.request(
        new StartTls(server, {
          sni: defaultSni(proxyHost, undefined),
          verifyHost: proxyHost,
          alpn: ["http/1.1"],
          insecure: cfg.insecure,
          ca: cfg.ca,
          timeoutMs: this.context.core.limits.connectTimeout,
        }),
        (r) => {
          if (r instanceof ProtocolError) {
            return c.complete(
              new ProtocolError(
                r.kind,
                `TLS with upstream proxy ${this.#proxyName(server)}: ${r.message}`,
                502,
              ),
            );
          }
          this.#tunnel(c);
        },
      );
    });
  }

  /** Plain HTTP in absolute form needs nothing more; else CONNECT through the proxy. */
  #tunnel(c: OpenConnection): void {
    const server = c.conn;
    if (server.viaAbsoluteForm) return c.complete(null);
    const [host, port] = server.address!;
    const authority = hostPort(host, port);
    const now = Date.now() / 1000;
    const req = new Request({
      method: "CONNECT",
      scheme: "",
      host,
      port,
      path: "",
      authority,
      headers: [["Host", authority]],
      rawContent: new Uint8Array(0),
      timestampStart: now,
      timestampEnd: now,
    });
    const flow = new HTTPFlow(this.context.client, server, req);
    const pending: PendingConnect = { open: c, buf: [], size: 0 };
    this.#pending.set(server, pending);
    this.request(new StartHook("http_connect_upstream", flow, flow), () => {
      if (!this.#pending.has(server)) return;
      let head: Uint8Array;
      try {
        head = requestHead("CONNECT", flow.request.authority || authority, "HTTP/1.1", flow.request.headers);
      } catch (e) {
        return this.#fail(server, `CONNECT to upstream proxy: ${(e as Error).message}`);
      }
      this.emit(new SendData(server, head));
    });
  }

  #connectResponse(server: Server, p: PendingConnect, d: Uint8Array): void {
    p.buf.push(d);
    p.size += d.length;
    const buf = p.buf.length === 1 ? p.buf[0] : concat(p.buf);
    p.buf = [buf];
    const end = findHeadEnd(buf);
    const proxy = this.#proxyName(server);
    if (end === -1) {
      if (p.size > MAX_CONNECT_RESPONSE) {
        this.#fail(server, `Upstream proxy ${proxy} sent an oversized answer to CONNECT`);
      }
      return;
    }
    let status: number;
    let reason: string;
    try {
      const head = parseResponseHead(buf.subarray(0, end));
      status = head.statusCode;
      reason = head.reason;
    } catch (e) {
      return this.#fail(server, `Error connecting to upstream proxy ${proxy}: ${(e as Error).message}`);
    }
    if (status < 200 || status >= 300) {
      return this.#fail(server, `Upstream proxy ${proxy} refused HTTP CONNECT request: ${status} ${reason}`);
    }
    this.#pending.delete(server);
    p.open.complete(null);
    const rest = buf.subarray(end);
    if (rest.length) this.#child?.handle(new DataReceived(server, rest));
  }

  #proxyClosed(server: Server, p: PendingConnect): void {
    void p;
    this.#fail(
      server,
      `Upstream proxy ${this.#proxyName(server)} closed the connection before answering CONNECT`,
    );
  }

  #fail(server: Server, message: string): void {
    const p = this.#pending.get(server);
    if (!p) return;
    this.#pending.delete(server);
    this.log(`${this.context.client}: ${message}`, "warn");
    server.error = message;
    this.emit(new CloseConnection(server));
    p.open.complete(new ProtocolError("connect", message, 502));
  }
}
