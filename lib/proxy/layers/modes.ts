/**
 * Mode layers: the first layer of every client connection, chosen by the proxy mode (mitmproxy's
 * `layers/modes.py`). Each decides what comes next. The modes themselves are registered on the master's
 * proxy core (core.ts) by {@link registerBuiltinModes}.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { DataReceived, type Event, Start } from "../events.ts";
import type { Context } from "../context.ts";
import type { ProxyCore } from "../core.ts";
import { type ModeSpec, REVERSE_SCHEMES } from "../mode.ts";
import { UpstreamMode } from "./upstream.ts";
import { Socks5Mode } from "./socks5.ts";
import { Server } from "../../flow/connection.ts";
import { HttpLayer } from "./http/layer.ts";
import { looksLikeTls, NextLayer } from "./next_layer.ts";

/** The HTTP layer of a regular proxy: absolute-form requests and CONNECT (tunnels get a NextLayer). */
export function regularHttp(ctx: Context): HttpLayer {
  return new HttpLayer(
    ctx,
    { mode: "regular", rewriteHost: false },
    (tctx, initial) => new NextLayer(tctx, initial),
  );
}

/** Regular (explicit) proxy mode. */
export class RegularMode extends Layer {
  #child: Layer | null = null;
  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    if (e instanceof Start) {
      this.#child = this.adopt(regularHttp(this.context));
      this.#child.handle(e);
    }
  }
}

/** Reverse proxy mode: every request goes to the one target; clients may speak TLS to the proxy itself. */
export class ReverseMode extends Layer {
  #child: Layer | null = null;
  #buf: Uint8Array[] = [];
  readonly #spec: ModeSpec;

  constructor(ctx: Context, spec: ModeSpec) {
    super(ctx);
    this.#spec = spec;
  }

  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    if (e instanceof Start) {
      const t = this.#spec.target!;
      this.context.server = new Server([t.host, t.port]);
      this.context.server.tls = t.scheme === "https";
      return;
    }
    if (e instanceof DataReceived && e.conn === this.context.client) {
      this.#buf.push(e.data);
      let n = 0;
      for (const b of this.#buf) n += b.length;
      if (n >= 3) this.#decide();
      return;
    }
    // the client closed before 3 bytes: nothing to do
  }

  #decide(): void {
    const ctx = this.context;
    const first = this.#buf[0].length >= 3 ? this.#buf[0] : new Uint8Array(this.#buf.flatMap((b) => [...b]));
    const http = (c: Context) => new HttpLayer(c, { mode: "transparent", rewriteHost: true });
    const tls = ctx.core.layers.tls;
    const layer = looksLikeTls(first) && tls
      ? tls(ctx.fork(), { serverTls: ctx.server.tls, child: http })
      : http(ctx.fork());
    this.#child = this.adopt(layer);
    layer.handle(new Start());
    const buf = this.#buf;
    this.#buf = [];
    for (const b of buf) layer.handle(new DataReceived(ctx.client, b));
  }
}

/** Register the modes this core implements. */
export function registerBuiltinModes(core: ProxyCore): void {
  core.addMode({
    name: "regular",
    syntax: "regular",
    description: "an explicit HTTP(S) proxy, clients are configured to use it",
    label: () => "HTTP(S) proxy",
    defaultPort: 8080,
    layer: (ctx) => new RegularMode(ctx),
  });
  core.addMode({
    name: "upstream",
    syntax: "upstream:URL",
    description: "like regular, but every server connection goes through the HTTP(S) proxy at URL",
    label: (spec) => `HTTP(S) proxy (upstream mode) to ${spec.data}`,
    defaultPort: 8080,
    layer: (ctx, spec) => new UpstreamMode(ctx, spec),
  });
  core.addMode({
    name: "socks5",
    syntax: "socks5",
    description: "a SOCKS v5 proxy (RFC 1928; username/password from proxyauth)",
    label: () => "SOCKS v5 proxy",
    defaultPort: 1080,
    layer: (ctx) => new Socks5Mode(ctx),
  });
  core.addMode({
    name: "reverse",
    syntax: "reverse:URL",
    description: `every connection goes to URL (${REVERSE_SCHEMES.join(", ")}://host[:port])`,
    label: (spec) => `reverse proxy to ${spec.data}`,
    defaultPort: 8080,
    layer: (ctx, spec) => new ReverseMode(ctx, spec),
  });
}
