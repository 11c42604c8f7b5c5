/**
 * Transparent mode (mitmproxy's `TransparentProxy`): clients do not know about the proxy; the firewall
 * redirects their connections to it (iptables `REDIRECT`), and the destination is the connection's
 * original one (SO_ORIGINAL_DST, see conns/original_dst.ts). From there it is a tunnel to that server,
 * like after a CONNECT: NextLayer decides TLS, HTTP or TCP; with the eager strategy the server is
 * connected first (a refusal closes the client).
 *
 * Where the original destination cannot be had (not Linux, no FFI permission, a connection that was not
 * redirected), the destination comes from the client's first bytes, and a log line says so: the TLS SNI
 * (port 443), or for HTTP the Host header of each request (port 80 unless it names one).
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../events.ts";
import { CloseConnection, OpenConnection } from "../commands.ts";
import type { Context } from "../context.ts";
import { type Address, formatAddress, Server } from "../../flow/connection.ts";
import { concat } from "../../http/bytes.ts";
import { MAX_CLIENT_HELLO, parseClientHello } from "../../tls/clienthello.ts";
import { HttpLayer } from "./http/layer.ts";
import { looksLikeTls, NextLayer } from "./next_layer.ts";
import type { OriginalDst } from "../conns/original_dst.ts";

/** How the fallback is reported: the first time at "warn", later at "debug" (one per proxy core). */
export interface FallbackNotice {
  warned: boolean;
}

/** The first layer of a connection in transparent mode. */
export class TransparentMode extends Layer {
  readonly #dst: OriginalDst;
  readonly #notice: FallbackNotice;
  #child: Layer | null = null;
  #buf: Uint8Array[] = [];
  #size = 0;

  /** `dst`: the original destination of the connection, or why there is none. */
  constructor(ctx: Context, dst: OriginalDst, notice: FallbackNotice = { warned: false }) {
    super(ctx);
    this.#dst = dst;
    this.#notice = notice;
  }

  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    const ctx = this.context;
    if (e instanceof Start) {
      if (this.#dst.address) return this.#known(this.#dst.address);
      return;
    }
    if (e instanceof DataReceived && e.conn === ctx.client) {
      this.#buf.push(e.data);
      this.#size += e.data.length;
      return this.#fromBytes();
    }
    if (e instanceof ConnectionClosed && e.conn === ctx.client) {
      this.#child = new Idle(ctx);
      this.emit(new CloseConnection(ctx.client));
    }
  }

  #known(address: Address): void {
    const ctx = this.context;
    ctx.server = new Server([...address]);
    const start = () => {
      this.#child = this.adopt(new NextLayer(ctx));
      this.#child.handle(new Start());
    };
    if (ctx.options.connection_strategy !== "eager") return start();
    this.call(new OpenConnection(ctx.server), (err) => {
      if (err) {
        this.log(`${ctx.client}: ${err.message}`);
        this.#child = new Idle(ctx);
        this.emit(new CloseConnection(ctx.client));
        return;
      }
      start();
    });
  }

  /** No original destination: the TLS SNI or the Host header says where the client wants to go. */
  #fromBytes(): void {
    const ctx = this.context;
    const first = concat(this.#buf);
    this.#buf = [first];
    if (first.length < 3) return;
    let dest: Address | null = null;
    let how: string;
    if (looksLikeTls(first)) {
      let hello;
      try {
        hello = parseClientHello(first);
      } catch {
        hello = null;
      }
      if (hello === "need-more" && this.#size < MAX_CLIENT_HELLO) return;
      const sni = hello && hello !== "need-more" ? hello.sni : undefined;
      if (!sni) return this.#giveUp("a TLS ClientHello without SNI");
      dest = [sni, 443];
      how = `the TLS SNI (${formatAddress(dest)})`;
    } else {
      how = "the Host header of each request";
    }
    const level = this.#notice.warned ? "debug" : "warn";
    this.#notice.warned = true;
    this.log(
      `${ctx.client}: transparent mode without the original destination (${this.#dst.reason}): using ${how}`,
      level,
    );
    this.#buf = [];
    if (dest) {
      ctx.server = new Server(dest);
      this.#child = this.adopt(new NextLayer(ctx, first));
      this.#child.handle(new Start());
      return;
    }
    const http = new HttpLayer(ctx.fork(), { mode: "transparent", rewriteHost: false });
    this.#child = this.adopt(http);
    http.handle(new Start());
    http.handle(new DataReceived(ctx.client, first));
  }

  #giveUp(what: string): void {
    const ctx = this.context;
    this.log(
      `${ctx.client}: transparent mode without the original destination (${this.#dst.reason}) and ${what}: closing`,
      "warn",
    );
    this.#child = new Idle(ctx);
    this.emit(new CloseConnection(ctx.client));
  }
}

/** Nothing more to do (the connection is being closed). */
class Idle extends Layer {
  protected onEvent(): void {}
}
