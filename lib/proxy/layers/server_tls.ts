/**
 * The TLS handshake with a server (mitmproxy's `ServerTLSLayer`, as a routine any layer runs on a server
 * connection it has opened): `tls_start_server`, the handshake (done natively by the driver), then
 * `tls_established_server` or `tls_failed_server`. The learned certificate names go to the connection
 * manager, so later client connections to the same server get their forged certificate without waiting for
 * an upstream handshake.
 *
 * @module
 */
import { type BlockingCommand, StartHook, StartTls, type TlsInfo } from "../commands.ts";
import { ProtocolError } from "../errors.ts";
import type { Context } from "../context.ts";
import type { Connection, Server } from "../../flow/connection.ts";

/** What the tls_* hooks receive, as mitmproxy's TlsData. */
export interface TlsData {
  /** The client or server connection record the handshake is for. */
  conn: Connection;
  /** The layer context. */
  context: Context;
  /** The TLS connection object: null in mitmdeno (the handshake runs natively in the driver). */
  sslConn: null;
  /** Always false (no DTLS). */
  isDtls: false;
}

/** How a layer sends commands for the handshake (its `request`: no pause of the layer). */
export type Requester = <R>(command: BlockingCommand<R>, then: (reply: R) => void) => void;

/** Fill a connection record from a finished handshake. */
export function applyTlsInfo(conn: Connection, info: TlsInfo): void {
  conn.alpn = info.alpn;
  conn.tlsVersion = info.tlsVersion;
  conn.cipher = info.cipher;
  if (info.certificateList.length) conn.certificateList = info.certificateList;
  conn.timestampTlsSetup = Date.now() / 1000;
}

/**
 * Decide what a TLS connection to `server` sends: SNI (`server.sni`, else the host unless it is an IP
 * literal) and ALPN (`server.alpnOffers`, else the defaults). Call before opening it: an idle connection
 * from the pool must match both.
 */
export function prepareServerTls(ctx: Context, server: Server): void {
  server.tls = true;
  server.sni = ctx.core.conns.sniFor(server.address![0], server.sni ?? undefined);
  if (!server.alpnOffers.length) server.alpnOffers = [...ctx.core.conns.tlsConfig.alpn];
}

/**
 * Shake hands with `server` (open, TCP). SNI: `server.sni` (the host unless it is an IP literal, when no
 * layer set one); ALPN: `server.alpnOffers` (the defaults when empty). `done` gets null or the failure (a
 * ProtocolError 502/504 naming the reason; `server.error` is set too).
 */
export function establishServerTls(
  request: Requester,
  ctx: Context,
  server: Server,
  done: (err: ProtocolError | null, names?: { cn?: string; sans: string[]; o?: string }) => void,
): void {
  const conns = ctx.core.conns;
  const cfg = conns.tlsConfig;
  prepareServerTls(ctx, server);
  const data: TlsData = { conn: server, context: ctx, sslConn: null, isDtls: false };
  request(new StartHook("tls_start_server", data), () => {
    const cmd = new StartTls(server, {
      sni: server.sni,
      alpn: server.alpnOffers,
      insecure: cfg.insecure,
      ca: cfg.ca,
      timeoutMs: ctx.core.limits.connectTimeout,
      minVersion: cfg.minVersion,
      maxVersion: cfg.maxVersion,
      clientCert: cfg.clientCert?.(server.sni ?? server.address![0]) ?? null,
      ciphers: cfg.ciphers,
    });
    request(cmd, (r) => {
      if (r instanceof ProtocolError) {
        const err = new ProtocolError(r.kind, r.message, r.kind === "timeout" ? 504 : 502);
        server.error = err.message;
        request(new StartHook("tls_failed_server", data), () => done(err));
        return;
      }
      applyTlsInfo(server, r);
      if (r.peerNames) conns.learn(server, r.peerNames);
      request(new StartHook("tls_established_server", data), () => done(null, r.peerNames));
    });
  });
}
