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
import { concat } from "../http/bytes.ts";

/** What the `next_layer` hook receives. Set `layer` to decide. */
export interface NextLayerData {
  context: Context;
  /** Host and port the tunnel leads to. */
  destination: { host: string; port: number };
  /** Client bytes received so far (not consumed). */
  dataClient: Uint8Array;
  layer: Layer | null;
}

/** Options a TLS layer factory accepts (see lib/proxy/layers/tls.ts TlsLayerOptions). */
export interface TlsFactoryOptions {
  /** Whether the server side speaks TLS (default true). */
  serverTls?: boolean;
  /** The layer to run over the decrypted client stream (default: HTTP/1 to https://dest). */
  child?: (ctx: Context) => Layer;
}

/** Factories for layers provided by later stages (the tlsconfig addon registers `tls`). */
export const layerFactories: {
  /** Build a TLS interception layer, if available. */
  tls?: (
    ctx: Context,
    dest: { host: string; port: number },
    conn: ServerConnection | null,
    opts?: TlsFactoryOptions,
  ) => Layer;
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

/**
 * Wait for the client's first bytes (at least 3, or whatever it sent before a pause) without consuming
 * them. Returns "server-first" when the client stays silent for CLIENT_FIRST_WAIT_MS and the server
 * has spoken (or there is no server connection to ask), and null (with a logged reason) when the client
 * went away or neither side said anything within the idle timeout (`tcp_timeout`).
 */
async function waitForFirstBytes(
  ctx: Context,
  dest: { host: string; port: number },
  conn: ServerConnection | null,
): Promise<Uint8Array | "server-first" | null> {
  const s = ctx.clientStream;
  const idle = ctx.limits.idleTimeout;
  const start = Date.now();
  const parts: Uint8Array[] = [];
  let n = 0;
  // Enough to decide: 3 bytes, unless they are only the start of an HTTP method ("GET" before its space).
  const needMore = () => {
    if (n < 3) return true;
    if (n >= 32) return false;
    const head = concat(parts);
    for (let i = 0; i < head.length; i++) {
      const c = head[i] | 0x20;
      if (c < 0x61 || c > 0x7a) return false;
    }
    return true;
  };
  try {
    while (needMore()) {
      const elapsed = Date.now() - start;
      const step = n > 0 ? 200 : Math.min(250, idle > 0 ? Math.max(1, idle - elapsed) : 250);
      let b: Uint8Array | null;
      try {
        b = await s.read(step);
      } catch (e) {
        if (!(e instanceof TimeoutError)) throw e;
        if (n > 0) break; // the client paused after a few bytes: decide with what we have
        const waited = Date.now() - start;
        if (conn && conn.stream && conn.stream.buffered > 0) return "server-first";
        if (idle > 0 && waited >= idle) {
          ctx.client.error = `client sent nothing for ${idle / 1000}s after CONNECT ${
            hostPort(dest.host, dest.port)
          }`;
          ctx.master.log.info(`${ctx.client}: ${ctx.client.error}: closing`);
          return null;
        }
        if (!conn && waited >= CLIENT_FIRST_WAIT_MS) return "server-first";
        continue;
      }
      if (b === null) break;
      parts.push(b);
      n += b.length;
    }
  } catch (e) {
    ctx.debug(`client read failed: ${(e as Error).message}`);
    return null;
  } finally {
    s.unread(concat(parts));
  }
  return concat(parts);
}

/** Decide the layer for a tunnel to `dest`. Returns null if the client went away. */
export async function nextLayer(
  ctx: Context,
  dest: { host: string; port: number },
  conn: ServerConnection | null,
): Promise<Layer | null> {
  const address: [string, number] = [dest.host, dest.port];
  if (isIgnored(ctx, dest.host, dest.port)) return new TcpLayer(ctx, address, conn);
  const first = await waitForFirstBytes(ctx, dest, conn);
  if (first === "server-first") return new TcpLayer(ctx, address, conn);
  if (first === null || first.length === 0) return null;
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
