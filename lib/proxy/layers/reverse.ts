/**
 * Reverse proxy mode (mitmproxy's `ReverseProxy` and its next-layer rules for `reverse:SCHEME://`): every
 * connection goes to the one target. The client may speak TLS to the proxy itself in every scheme (we
 * terminate it with our certificate); the target's side follows the scheme:
 *
 * - `http`: HTTP to a plain server, `https`: HTTP to a TLS server (Host rewritten unless keep_host_header);
 * - `tcp`: raw bytes to a plain server, `tls`: raw bytes to a TLS server.
 *
 * For tcp and tls the proxy cannot wait for the client forever (server-first protocols): tcp connects at
 * once (connection_strategy eager) and a server that speaks first makes it a plain relay; a client silent
 * for {@link CLIENT_FIRST_WAIT_MS} is taken for a plain one too.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../events.ts";
import { CloseConnection, OpenConnection, type RequestWakeup } from "../commands.ts";
import type { Context } from "../context.ts";
import type { ModeSpec } from "../mode.ts";
import { Server } from "../../flow/connection.ts";
import { concat } from "../../http/bytes.ts";
import { HttpLayer } from "./http/layer.ts";
import { CLIENT_FIRST_WAIT_MS, looksLikeTls } from "./next_layer.ts";
import { TcpLayer } from "./tcp.ts";
import { establishServerTls } from "./server_tls.ts";

/** Reverse proxy mode. */
export class ReverseMode extends Layer {
  #child: Layer | null = null;
  #client: Uint8Array[] = [];
  #server: Uint8Array[] = [];
  #clientEnded = false;
  #timer: RequestWakeup | null = null;
  readonly #spec: ModeSpec;

  constructor(ctx: Context, spec: ModeSpec) {
    super(ctx);
    this.#spec = spec;
  }

  get #scheme(): string {
    return this.#spec.target!.scheme;
  }

  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    const ctx = this.context;
    if (e instanceof Start) {
      const t = this.#spec.target!;
      ctx.server = new Server([t.host, t.port]);
      ctx.server.tls = t.scheme === "https" || t.scheme === "tls";
      if (t.scheme !== "tcp" && t.scheme !== "tls") return;
      this.#timer = this.wakeup(CLIENT_FIRST_WAIT_MS, () => this.#decide());
      if (t.scheme === "tcp" && ctx.options.connection_strategy === "eager") {
        this.call(new OpenConnection(ctx.server), (err) => {
          if (!err) return;
          this.log(`${ctx.client}: ${err.message}`);
          this.#timer?.cancel();
          this.#child = new Closed(ctx);
          this.emit(new CloseConnection(ctx.client));
        });
      }
      return;
    }
    if (e instanceof DataReceived) {
      if (e.conn === ctx.client) {
        this.#client.push(e.data);
        let n = 0;
        for (const b of this.#client) n += b.length;
        if (n >= 3) this.#decide();
      } else {
        // the server spoke first: not TLS from the client, a plain relay
        this.#server.push(e.data);
        this.#decide();
      }
      return;
    }
    if (e instanceof ConnectionClosed && e.conn === ctx.client) {
      this.#clientEnded = true;
      if (!this.#client.length) {
        this.#timer?.cancel();
        this.#child = new Closed(ctx);
        this.emit(new CloseConnection(ctx.client));
        if (ctx.server.timestampStart !== null) this.emit(new CloseConnection(ctx.server));
        return;
      }
      this.#decide();
    }
  }

  #decide(): void {
    if (this.#child) return;
    this.#timer?.cancel();
    if (this.paused) {
      // still connecting (eager): decide once the connection is there
      this.#timer = this.wakeup(250, () => this.#decide());
      return;
    }
    const ctx = this.context;
    const first = concat(this.#client);
    const serverFirst = concat(this.#server);
    this.#client = [];
    this.#server = [];
    const tls = ctx.core.layers.tls;
    const clientTls = looksLikeTls(first) && !!tls && serverFirst.length === 0;
    const scheme = this.#scheme;
    let layer: Layer;
    if (scheme === "http" || scheme === "https") {
      const http = (c: Context) => new HttpLayer(c, { mode: "transparent", rewriteHost: true });
      layer = clientTls ? tls!(ctx.fork(), { serverTls: scheme === "https", child: http }) : http(ctx.fork());
    } else if (scheme === "tcp") {
      layer = clientTls
        ? tls!(ctx.fork(), { serverTls: false, child: (c) => new TcpLayer(c) })
        : new TcpLayer(ctx.fork(), first, serverFirst);
    } else {
      layer = clientTls
        ? tls!(ctx.fork(), { serverTls: true, child: (c) => new ServerTlsTcp(c) })
        : new ServerTlsTcp(ctx.fork(), first);
    }
    this.#child = this.adopt(layer);
    layer.handle(new Start());
    // bytes the TCP layers took in their constructor are not replayed
    if (!(layer instanceof TcpLayer) && !(layer instanceof ServerTlsTcp) && first.length) {
      layer.handle(new DataReceived(ctx.client, first));
    }
    if (this.#clientEnded) layer.handle(new ConnectionClosed(ctx.client));
  }
}

/** Nothing more to do on this connection (it is being closed). */
class Closed extends Layer {
  protected onEvent(): void {}
}

/**
 * A raw relay to a TLS server (`reverse:tls://`): connect and shake hands with the server first (unless a
 * TLS layer did already), then relay. Client bytes that come meanwhile are relayed first.
 */
export class ServerTlsTcp extends Layer {
  #pending: Uint8Array[] = [];
  #clientEnded = false;
  #child: Layer | null = null;

  constructor(ctx: Context, clientInitial: Uint8Array | null = null) {
    super(ctx);
    if (clientInitial && clientInitial.length) this.#pending.push(clientInitial);
  }

  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    if (e instanceof Start) return this.#start();
    if (e instanceof DataReceived && e.conn === this.context.client) this.#pending.push(e.data);
    if (e instanceof ConnectionClosed && e.conn === this.context.client) this.#clientEnded = true;
  }

  #start(): void {
    const ctx = this.context;
    const server = ctx.server;
    if (server.error) return this.#fail(server.error);
    const open = server.timestampStart !== null && server.timestampEnd === null;
    if (open && server.timestampTlsSetup !== null) return this.#relay();
    const handshake = () =>
      establishServerTls((c, then) => this.request(c, then), ctx, server, (err) => {
        if (err) return this.#fail(err.message);
        this.#relay();
      });
    if (open) return handshake();
    this.request(new OpenConnection(server), (err) => {
      if (err) return this.#fail(err.message);
      handshake();
    });
  }

  #fail(message: string): void {
    const ctx = this.context;
    this.log(`${ctx.client}: ${message}`);
    this.#child = new Closed(ctx);
    this.emit(new CloseConnection(ctx.client));
    if (ctx.server.timestampStart !== null && ctx.server.timestampEnd === null) {
      this.emit(new CloseConnection(ctx.server));
    }
  }

  #relay(): void {
    const tcp = new TcpLayer(this.context, this.#pending.length ? concat(this.#pending) : null);
    this.#pending = [];
    this.#child = this.adopt(tcp);
    tcp.handle(new Start());
    if (this.#clientEnded) tcp.handle(new ConnectionClosed(this.context.client));
  }
}
