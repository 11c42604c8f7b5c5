/**
 * Choosing the layer of a tunnel (mitmproxy's NextLayer): after a CONNECT (or any mode that leads to one
 * server) look at the client's first bytes, without consuming them, and decide: TLS, HTTP, or raw TCP;
 * ignore/allow hosts force a passthrough before any byte. Addons decide first through the `next_layer` hook
 * by setting `data.layer`. The bytes looked at are handed to the chosen layer.
 *
 * A client that says nothing for {@link CLIENT_FIRST_WAIT_MS} while the server is silent too (or not
 * connected) is taken for a server-first protocol: TCP. A server that speaks first makes it TCP at once.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../events.ts";
import { CloseConnection, type RequestWakeup, StartHook } from "../commands.ts";
import type { Context } from "../context.ts";
import { concat } from "../../http/bytes.ts";
import { hostPort } from "../../http/message.ts";
import { TcpLayer } from "./tcp.ts";
import { HttpLayer } from "./http/layer.ts";

/** What the `next_layer` hook receives. Set `layer` to decide. */
export interface NextLayerData {
  /** The layer context (connections, options). */
  context: Context;
  /** Host and port the tunnel leads to. */
  destination: { host: string; port: number };
  /** Client bytes received so far (not consumed). */
  dataClient: Uint8Array;
  /** Server bytes received so far. */
  dataServer: Uint8Array;
  /** The layer to use next: leave null for the default choice.
   * @ignore */
  layer: Layer | null;
}

/** How long a silent client is waited for before the tunnel is taken for a server-first protocol. */
export const CLIENT_FIRST_WAIT_MS = 3000;

/** Whether the first bytes look like a TLS handshake record. */
export function looksLikeTls(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0x16 && b[1] === 0x03 && b[2] <= 0x04;
}

/** mitmproxy's "probably not HTTP" check. */
export function probablyNotHttp(b: Uint8Array): boolean {
  if (b.length < 3) return true;
  const text = String.fromCharCode(...b.subarray(0, Math.min(b.length, 200)));
  const sp = text.indexOf(" ");
  const nl = text.indexOf("\n");
  if (sp === -1) return true;
  if (nl !== -1 && sp > nl) return true;
  if (!/^[A-Za-z]{3}/.test(text)) return true;
  if (text.startsWith("SSH")) return true;
  return false;
}

/** Whether host:port is excluded from interception by ignore_hosts / allow_hosts. */
export function isIgnored(ignore: string[], allow: string[], host: string, port: number): boolean {
  if (!ignore.length && !allow.length) return false;
  const candidates = [hostPort(host, port), `${host}:${port}`];
  const match = (patterns: string[]) =>
    patterns.some((p) => candidates.some((c) => new RegExp(p, "i").test(c)));
  if (ignore.length && match(ignore)) return true;
  if (allow.length && !match(allow)) return true;
  return false;
}

/** Enough bytes to decide: 3, unless they are only the start of an HTTP method ("GET" before its space). */
function enough(b: Uint8Array): boolean {
  if (b.length < 3) return false;
  if (b.length >= 32) return true;
  for (let i = 0; i < b.length; i++) {
    const c = b[i] | 0x20;
    if (c < 0x61 || c > 0x7a) return true;
  }
  return false;
}

/** Decides the layer of a tunnel to the context's server. */
export class NextLayer extends Layer {
  #client: Uint8Array[] = [];
  #server: Uint8Array[] = [];
  #clientEnded = false;
  #child: Layer | null = null;
  #timer: RequestWakeup | null = null;
  #deciding = false;

  /** `initial`: client bytes received before this layer (e.g. after the CONNECT head). */
  constructor(context: Context, initial: Uint8Array | null = null) {
    super(context);
    if (initial && initial.length) this.#client.push(initial);
  }

  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    if (e instanceof Start) return this.#start();
    if (e instanceof DataReceived) {
      if (e.conn === this.context.client) {
        this.#client.push(e.data);
        this.#maybeDecide();
      } else {
        this.#server.push(e.data);
        if (!this.#client.length) this.#decideWith("server-first");
      }
      return;
    }
    if (e instanceof ConnectionClosed) {
      if (e.conn === this.context.client) {
        this.#clientEnded = true;
        if (!this.#client.length) {
          this.#timer?.cancel();
          this.emit(new CloseConnection(this.context.client));
          if (this.context.server.timestampStart !== null) {
            this.emit(new CloseConnection(this.context.server));
          }
          return;
        }
        this.#decideWith("bytes");
      }
    }
  }

  #start(): void {
    const ctx = this.context;
    const [host, port] = ctx.server.address!;
    if (isIgnored(ctx.options.ignore_hosts, ctx.options.allow_hosts, host, port)) {
      return this.#set(this.#tcp(true));
    }
    this.#timer = this.wakeup(CLIENT_FIRST_WAIT_MS, () => {
      if (this.#child || this.#deciding) return;
      if (this.#client.length) return this.#decideWith("bytes");
      const connected = ctx.server.timestampStart !== null;
      // a connected server that stays silent too: keep waiting (until tcp_timeout)
      if (!connected) this.#decideWith("server-first");
    });
    const idle = ctx.core.limits.idleTimeout;
    if (idle > 0) {
      this.wakeup(idle, () => {
        if (this.#child || this.#deciding || this.#client.length) return;
        ctx.client.error = `client sent nothing for ${idle / 1000}s after CONNECT ${hostPort(host, port)}`;
        this.log(`${ctx.client}: ${ctx.client.error}: closing`);
        this.#timer?.cancel();
        this.emit(new CloseConnection(ctx.client));
        if (ctx.server.timestampStart !== null) this.emit(new CloseConnection(ctx.server));
      });
    }
    this.#maybeDecide();
  }

  #maybeDecide(): void {
    if (this.#deciding || this.#child) return;
    const b = concat(this.#client);
    this.#client = b.length ? [b] : [];
    if (enough(b)) return this.#decideWith("bytes");
    if (b.length) {
      // only the start of a method: a little longer for the rest
      this.#timer?.cancel();
      this.#timer = this.wakeup(200, () => this.#decideWith("bytes"));
    }
  }

  /** A TCP layer with every byte received so far (`ignore`: a passthrough, never a TCP flow). */
  #tcp(ignore = false): TcpLayer {
    const a = concat(this.#client);
    const b = concat(this.#server);
    this.#client = [];
    this.#server = [];
    return new TcpLayer(this.context.fork(), a, b, ignore);
  }

  #decideWith(why: "bytes" | "server-first"): void {
    if (this.#deciding || this.#child) return;
    this.#deciding = true;
    this.#timer?.cancel();
    const ctx = this.context;
    const [host, port] = ctx.server.address!;
    if (why === "server-first") return this.#set(this.#tcp());
    const first = concat(this.#client);
    this.#client = first.length ? [first] : [];
    const data: NextLayerData = {
      context: ctx,
      destination: { host, port },
      dataClient: first,
      dataServer: concat(this.#server),
      layer: null,
    };
    this.call(new StartHook("next_layer", data), () => {
      if (data.layer) return this.#set(data.layer);
      const o = ctx.options;
      if (looksLikeTls(first)) {
        const tls = ctx.core.layers.tls;
        return this.#set(tls ? tls(ctx.fork(), { serverTls: true }) : this.#tcp());
      }
      const tcpHosts: string[] = o.tcp_hosts;
      if (tcpHosts.some((p) => new RegExp(p, "i").test(hostPort(host, port)))) {
        return this.#set(this.#tcp());
      }
      if (o.rawtcp && probablyNotHttp(first)) return this.#set(this.#tcp());
      return this.#set(new HttpLayer(ctx.fork(), { mode: "transparent", rewriteHost: false }));
    });
  }

  /** Make `layer` the child: Start, then every byte received so far, then what comes. */
  #set(layer: Layer): void {
    this.#timer?.cancel();
    this.#child = this.adopt(layer);
    layer.handle(new Start());
    const client = this.#client;
    const server = this.#server;
    this.#client = [];
    this.#server = [];
    for (const d of client) layer.handle(new DataReceived(this.context.client, d));
    for (const d of server) layer.handle(new DataReceived(this.context.server, d));
    if (this.#clientEnded) layer.handle(new ConnectionClosed(this.context.client));
  }
}
