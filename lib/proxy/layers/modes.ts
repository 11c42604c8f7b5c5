/**
 * Mode layers: the outermost layer of every connection, chosen by the proxy mode. Each decides the
 * first protocol layer on top of it.
 */
import type { Context, Layer } from "../context.ts";
import { Http1Layer } from "./http1.ts";

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
    const t = this.#ctx.mode.target!;
    const dest = { scheme: t.scheme as "http" | "https", host: t.host, port: t.port };
    await this.#ctx.runLayer(new Http1Layer(this.#ctx, "transparent", dest, true));
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
