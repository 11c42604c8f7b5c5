/**
 * Mode layers: the first layer of every client connection, chosen by the proxy mode (mitmproxy's
 * `layers/modes.py`). Each decides what comes next. The modes themselves are registered on the master's
 * proxy core (core.ts) by {@link registerBuiltinModes}.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { type Event, Start } from "../events.ts";
import type { Context } from "../context.ts";
import type { ProxyCore } from "../core.ts";
import { REVERSE_SCHEMES } from "../mode.ts";
import { UpstreamMode } from "./upstream.ts";
import { Socks5Mode } from "./socks5.ts";
import { TransparentMode } from "./transparent.ts";
import { type OriginalDst, OriginalDstLookup } from "../conns/original_dst.ts";
import { HttpLayer } from "./http/layer.ts";
import { NextLayer } from "./next_layer.ts";
import { ReverseMode } from "./reverse.ts";

export { ReverseMode };

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
  const odst = new OriginalDstLookup();
  const notice = { warned: false };
  core.addMode({
    name: "transparent",
    syntax: "transparent",
    description: "connections redirected by the firewall (Linux iptables REDIRECT; else by SNI/Host)",
    label: () => "Transparent Proxy",
    defaultPort: 8080,
    layer: (ctx) => {
      const { sockname, peername } = ctx.client;
      let dst: OriginalDst = sockname && peername
        ? odst.lookup(sockname, peername)
        : { address: null, reason: "no socket addresses" };
      if (dst.address && sockname && dst.address[0] === sockname[0] && dst.address[1] === sockname[1]) {
        dst = { address: null, reason: "the connection was made to the proxy itself, not redirected" };
      }
      return new TransparentMode(ctx, dst, notice);
    },
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
