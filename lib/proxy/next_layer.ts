/**
 * Choosing the next layer (mitmproxy's NextLayer addon): after a CONNECT, peek at the client's first
 * bytes without consuming them and decide: TLS, HTTP, or raw TCP; ignore/allow hosts force a
 * passthrough. Addons can decide first through the `next_layer` hook by setting `data.layer`.
 */
import type { Context, Layer } from "./context.ts";
import type { ServerConnection } from "./server_conn.ts";
import { TcpLayer } from "./layers/tcp.ts";
import { Http1Layer } from "./layers/http1.ts";
import { TimeoutError } from "./stream.ts";
import { hostPort } from "../http/message.ts";

/** What the `next_layer` hook receives. Set `layer` to decide. */
export interface NextLayerData {
  context: Context;
  /** Host and port the tunnel leads to. */
  destination: { host: string; port: number };
  /** Client bytes received so far (not consumed). */
  dataClient: Uint8Array;
  layer: Layer | null;
}

/** Factories for layers provided by later stages (e.g. TLS interception). */
export const layerFactories: {
  /** Build a TLS interception layer, if available. */
  tls?: (ctx: Context, dest: { host: string; port: number }, conn: ServerConnection | null) => Layer;
} = {};

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
export function isIgnored(ctx: Context, host: string, port: number): boolean {
  const ignore: string[] = ctx.options.ignore_hosts;
  const allow: string[] = ctx.options.allow_hosts;
  if (!ignore.length && !allow.length) return false;
  const candidates = [hostPort(host, port), `${host}:${port}`];
  const match = (patterns: string[]) =>
    patterns.some((p) => candidates.some((c) => new RegExp(p, "i").test(c)));
  if (ignore.length && match(ignore)) return true;
  if (allow.length && !match(allow)) return true;
  return false;
}

/** How long to wait for the client to speak first before treating the tunnel as server-first TCP. */
const CLIENT_FIRST_WAIT_MS = 3000;

/** Decide the layer for a tunnel to `dest`. Returns null if the client went away. */
export async function nextLayer(
  ctx: Context,
  dest: { host: string; port: number },
  conn: ServerConnection | null,
): Promise<Layer | null> {
  const address: [string, number] = [dest.host, dest.port];
  if (isIgnored(ctx, dest.host, dest.port)) return new TcpLayer(ctx, address, conn);
  let first: Uint8Array;
  try {
    first = await ctx.clientStream.peek(3, CLIENT_FIRST_WAIT_MS);
  } catch (e) {
    if (e instanceof TimeoutError) return new TcpLayer(ctx, address, conn);
    return null;
  }
  if (first.length === 0) return null;
  const addons = ctx.master.addons;
  if (addons.has("next_layer")) {
    const data: NextLayerData = { context: ctx, destination: dest, dataClient: first, layer: null };
    await addons.trigger("next_layer", data);
    if (data.layer) return data.layer;
  }
  if (looksLikeTls(first)) {
    if (layerFactories.tls) return layerFactories.tls(ctx, dest, conn);
    return new TcpLayer(ctx, address, conn);
  }
  const tcpHosts: string[] = ctx.options.tcp_hosts;
  if (tcpHosts.some((p) => new RegExp(p, "i").test(hostPort(dest.host, dest.port)))) {
    return new TcpLayer(ctx, address, conn);
  }
  if (ctx.options.rawtcp && probablyNotHttp(first)) return new TcpLayer(ctx, address, conn);
  return new Http1Layer(ctx, "transparent", { scheme: "http", host: dest.host, port: dest.port });
}
