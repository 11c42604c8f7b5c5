/**
 * Which application protocols TLS offers (mitmproxy's tlsconfig `alpn_select_callback` and
 * `tls_start_server`): to the client, `h2` and `http/1.1` when the `http2` option is on, unless the server
 * handshake came first (connection_strategy eager, upstream_cert) and the server chose HTTP/1 (then the
 * client speaks HTTP/1 too, mirroring the server); to servers, `h2` and `http/1.1`. Whatever each side
 * picks, the HTTP layer translates (any mix of HTTP/1 and HTTP/2 works).
 *
 * @module
 */
import type { Context } from "../context.ts";

/** The protocols the TLS server side (towards the client) offers, in order of preference. */
export function clientAlpn(ctx: Context): string[] {
  if (!ctx.options.http2) return ["http/1.1"];
  const s = ctx.server;
  if (s.tls && s.timestampTlsSetup !== null && s.timestampEnd === null && !s.error) {
    return s.alpn === "h2" ? ["h2", "http/1.1"] : ["http/1.1"];
  }
  return ["h2", "http/1.1"];
}

/** The protocols offered to a server: the configured ones, with `h2` first when `http2` is on. */
export function upstreamAlpn(ctx: Context): string[] {
  const base = ctx.core.conns.tlsConfig.alpn;
  if (!ctx.options.http2) return base.filter((p) => p !== "h2");
  return base.includes("h2") ? [...base] : ["h2", ...base];
}
