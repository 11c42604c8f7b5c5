/**
 * Mode layers: the outermost layer of every connection, chosen by the proxy mode. Each decides the
 * first protocol layer on top of it.
 */
import type { Context, Layer } from "../context.ts";
import { Http1Layer } from "./http1.ts";
import { peekBytes } from "./tls.ts";
import { layerFactories, looksLikeTls } from "../next_layer.ts";

/** Regular (explicit) proxy: absolute-form requests and CONNECT. */
export class RegularProxy implements Layer {
  readonly name = "regular";
  readonly #ctx: Context;
  constructor(ctx: Context) {
    this.#ctx = ctx;
  }
  async run(): Promise<void> {
    await this.#ctx.runLayer(new Http1Layer(this.#ctx, "regular"));
  }
}

/** Reverse proxy: every request goes to the one target; Host is rewritten unless keep_host_header. */
export class ReverseProxy implements Layer {
  readonly name = "reverse";
  readonly #ctx: Context;
  constructor(ctx: Context) {
    this.#ctx = ctx;
  }
  async run(): Promise<void> {
    const ctx = this.#ctx;
    const t = ctx.mode.target!;
    const dest = { scheme: t.scheme as "http" | "https", host: t.host, port: t.port };
    const http = (c: Context) => new Http1Layer(c, "transparent", dest, true);
    // clients may speak TLS to the reverse proxy itself (mitmproxy: "optional ClientTLS")
    let first: Uint8Array;
    try {
      first = await peekBytes(ctx.clientStream, 3, ctx.limits.idleTimeout);
    } catch (e) {
      ctx.debug(`client sent nothing: ${(e as Error).message}`);
      return;
    }
    if (first.length === 0) return;
    if (looksLikeTls(first) && layerFactories.tls) {
      await ctx.runLayer(
        layerFactories.tls(ctx, { host: t.host, port: t.port }, null, {
          serverTls: dest.scheme === "https",
          child: http,
        }),
      );
      return;
    }
    await ctx.runLayer(http(ctx));
  }
}

/** The mode layer for a context's mode. */
export function modeLayer(ctx: Context): Layer {
  switch (ctx.mode.kind) {
    case "regular":
      return new RegularProxy(ctx);
    case "reverse":
      return new ReverseProxy(ctx);
    default:
      throw new Error(`mode ${ctx.mode.kind} is not supported yet`);
  }
}
