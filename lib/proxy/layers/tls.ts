/**
 * The TLS layer (mitmproxy's ClientTLSLayer + ServerTLSLayer): peeks the client's ClientHello without
 * consuming it, fires `tls_clienthello` (an addon may pass the connection through, or decide whether the
 * server handshake comes first), does the server handshake (by default first, so the forged certificate
 * can copy the upstream certificate's CN and SANs, MITMPROXY.md §8.3; not when an earlier handshake
 * with the same server already taught us those names: then the server connection is made, or taken
 * from the idle pool, when the first request needs it), mints a leaf for the client,
 * upgrades the client socket to server-side TLS natively (lib/tls/upgrade.ts) and runs the HTTP layer
 * (or any child layer) over the decrypted stream.
 *
 * Hook order, as mitmproxy: tls_clienthello, tls_start_server, tls_established_server (or
 * tls_failed_server), tls_start_client, tls_established_client (or tls_failed_client).
 * @module
 */
import type { TLSSocket } from "node:tls";
import type { Context, Layer } from "../context.ts";
import { ProtocolError } from "../errors.ts";
import { Stream, TimeoutError } from "../stream.ts";
import type { ServerConnection, TlsData, UpstreamCertInfo } from "../server_conn.ts";
import { upstreamCertInfo } from "../server_conn.ts";
import { type ClientHello, MAX_CLIENT_HELLO, parseClientHello } from "../../tls/clienthello.ts";
import type { CertRequest, CertStore } from "../../tls/certs.ts";
import { upgradeToServerTls } from "../../tls/upgrade.ts";
import { concat } from "../../http/bytes.ts";
import { hostPort } from "../../http/message.ts";
import { describeError } from "../../addons/log.ts";
import { TcpLayer } from "./tcp.ts";
import { Http1Layer } from "./http1.ts";

/** What `tls_clienthello` receives (mitmproxy's ClientHelloData). */
export class ClientHelloData {
  /** The layer context of the connection. */
  readonly context: Context;
  /** The parsed ClientHello (sni, alpnProtocols, cipherSuites, extensions). */
  readonly clientHello: ClientHello;
  /** Set to true to pass the connection through untouched (raw TCP, no certificate of ours). */
  ignoreConnection = false;
  /** Set to true to do the server handshake before the client's (default: when upstream_cert is on). */
  establishServerTlsFirst: boolean;

  constructor(context: Context, clientHello: ClientHello, establishServerTlsFirst: boolean) {
    this.context = context;
    this.clientHello = clientHello;
    this.establishServerTlsFirst = establishServerTlsFirst;
  }
}

export type { UpstreamCertInfo };

/** What the TLS layer needs from the tlsconfig addon. */
export interface TlsLayerConfig {
  /** Mints (and caches) leaves signed by our CA. */
  certs: CertStore;
  /** Hosts whose clients were already reported as not trusting the CA (log once per host). */
  untrustedWarned: Set<string>;
  /** Where users get the CA (shown in the "does not trust" message). */
  onboardingUrl: string;
}

/** Options of a {@link TlsLayer}. */
export interface TlsLayerOptions {
  /** Whether the server side speaks TLS (default true; a reverse proxy to http:// says false). */
  serverTls?: boolean;
  /** The layer to run over the decrypted client stream (default: HTTP/1 transparent to https://dest). */
  child?: (ctx: Context) => Layer;
}

/**
 * Look at the first `min` bytes of `stream` without consuming them. Unlike Stream.peek, bytes read
 * before a timeout or error are pushed back too. Returns fewer bytes only at EOF.
 */
export async function peekBytes(stream: Stream, min: number, timeoutMs: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < min) {
      const b = await stream.read(timeoutMs);
      if (b === null) break;
      parts.push(b);
      n += b.length;
    }
  } finally {
    stream.unread(concat(parts));
  }
  return concat(parts);
}

/** Read the whole ClientHello (possibly over several records) without consuming it. */
export async function peekClientHello(
  stream: Stream,
  timeoutMs: number,
): Promise<{ hello: ClientHello } | { error: string }> {
  let want = 5;
  for (;;) {
    let buf: Uint8Array;
    try {
      buf = await peekBytes(stream, want, timeoutMs);
    } catch (e) {
      if (e instanceof TimeoutError) {
        return { error: `client sent no complete TLS ClientHello within ${timeoutMs / 1000}s` };
      }
      return { error: `client connection failed while reading the ClientHello: ${describeError(e)}` };
    }
    let r: ClientHello | "need-more";
    try {
      r = parseClientHello(buf);
    } catch (e) {
      return { error: `invalid TLS ClientHello: ${(e as Error).message}` };
    }
    if (r !== "need-more") return { hello: r };
    if (buf.length < want) {
      return { error: `client closed the connection in the middle of the ClientHello (${buf.length} bytes)` };
    }
    if (buf.length >= MAX_CLIENT_HELLO) return { error: "TLS ClientHello too large" };
    want = buf.length + 1;
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

/** The leaf to present: upstream CN and SANs (if known), the SNI (or the client-side IP), the host. */
export function certRequestFor(
  upstream: UpstreamCertInfo | undefined,
  sni: string | null,
  fallbackIp: string | null,
  host: string,
): CertRequest {
  const names: string[] = [];
  if (upstream?.cn) names.push(upstream.cn);
  if (upstream) names.push(...upstream.sans);
  if (sni) names.push(sni);
  else if (fallbackIp) names.push(fallbackIp);
  names.push(host);
  const sans = [...new Set(names.filter((n) => n))];
  return { commonName: sans[0], sans, organization: upstream?.o };
}

/** The TLS interception layer. */
export class TlsLayer implements Layer {
  readonly name = "tls";
  readonly #ctx: Context;
  readonly #dest: { host: string; port: number };
  #conn: ServerConnection | null;
  readonly #cfg: TlsLayerConfig;
  readonly #opts: TlsLayerOptions;

  constructor(
    ctx: Context,
    dest: { host: string; port: number },
    conn: ServerConnection | null,
    cfg: TlsLayerConfig,
    opts: TlsLayerOptions = {},
  ) {
    this.#ctx = ctx;
    this.#dest = dest;
    this.#conn = conn;
    this.#cfg = cfg;
    this.#opts = opts;
  }

  async run(): Promise<void> {
    const ctx = this.#ctx;
    const addons = ctx.master.addons;
    const client = ctx.client;
    const log = ctx.master.log;
    const dest = this.#dest;
    const address: [string, number] = [dest.host, dest.port];
    const where = hostPort(dest.host, dest.port);
    const timeout = ctx.limits.idleTimeout;

    const peeked = await peekClientHello(ctx.clientStream, timeout);
    if ("error" in peeked) {
      client.error = peeked.error;
      log.info(`${client}: TLS to ${where}: ${peeked.error}`);
      await this.#dropServer();
      return;
    }
    const hello = peeked.hello;
    client.sni = hello.sni ?? null;
    client.alpnOffers = hello.alpnProtocols;

    const serverTls = this.#opts.serverTls ?? true;
    const sniKey = hostPort(dest.host, dest.port);
    // the server gets the client's SNI (a reverse proxy keeps the target's host name)
    if (serverTls && ctx.mode.kind !== "reverse") {
      ctx.pool.sniFor.set(sniKey, client.sni && !isIp(client.sni) ? client.sni : null);
    }
    // names learned from this server's certificate by an earlier handshake (same SNI, same verification)
    const known = serverTls && ctx.options.upstream_cert
      ? upstreamCertInfo(ctx.master, dest.host, dest.port, ctx.pool.sniFor.get(sniKey))
      : undefined;
    const data = new ClientHelloData(
      ctx,
      hello,
      serverTls && !known && (this.#conn !== null || !!ctx.options.upstream_cert),
    );
    if (addons.has("tls_clienthello")) await addons.trigger("tls_clienthello", data);
    if (data.ignoreConnection) {
      ctx.debug(`TLS passthrough to ${where} (tls_clienthello)`);
      await ctx.runLayer(new TcpLayer(ctx, address, this.#conn));
      return;
    }

    // the server handshake, first (so we know what to put in our certificate)
    let upstream: UpstreamCertInfo | undefined;
    if (serverTls && data.establishServerTlsFirst) {
      try {
        if (this.#conn && this.#conn.alive) {
          await ctx.pool.upgradeToTls(this.#conn, ctx.limits.connectTimeout, ctx);
        } else this.#conn = await ctx.pool.get(address, ctx.limits.connectTimeout, true, ctx);
        upstream = this.#conn.certInfo ?? undefined;
      } catch (e) {
        const err = e instanceof ProtocolError ? e : new ProtocolError(describeError(e), 502);
        log.warn(`${client}: server TLS handshake failed: ${err.message}`);
        // the client still gets TLS, then the HTTP layer answers its request with a 502 naming the reason
        ctx.pool.rememberFailure(address, true, err);
        this.#conn = null;
      }
    } else if (serverTls) {
      // later: the HTTP layer upgrades the eager TCP connection, or takes an idle TLS one, on first need
      upstream = known;
      if (this.#conn) ctx.pool.deferTls(this.#conn);
    }
    if (!ctx.options.upstream_cert) upstream = undefined;

    // the client handshake
    const req = certRequestFor(
      upstream,
      client.sni,
      ctx.mode.kind === "regular" ? null : client.sockname?.[0] ?? null,
      dest.host,
    );
    let leaf;
    try {
      leaf = this.#cfg.certs.getCert(req);
    } catch (e) {
      client.error = `cannot create a certificate for ${req.sans.join(", ")}: ${describeError(e)}`;
      log.error(`${client}: ${client.error}`);
      return;
    }
    const tlsData: TlsData = { conn: client, context: ctx, sslConn: null, isDtls: false };
    if (addons.has("tls_start_client")) await addons.trigger("tls_start_client", tlsData);
    const rawStream = ctx.clientStream;
    const rest = rawStream.detach();
    let sock: TLSSocket;
    try {
      sock = await upgradeToServerTls(rawStream.socket, rest, {
        secureContext: leaf.secureContext,
        ALPNProtocols: ["http/1.1"],
        handshakeTimeout: timeout > 0 ? timeout : undefined,
      });
    } catch (e) {
      await this.#clientFailed(e, tlsData);
      return;
    }
    tlsData.sslConn = sock;
    client.tls = true;
    client.alpn = sock.alpnProtocol || null;
    client.tlsVersion = sock.getProtocol() ?? null;
    client.cipher = sock.getCipher()?.name ?? null;
    client.mitmcert = leaf.certPem;
    client.timestampTlsSetup = Date.now() / 1000;
    if (addons.has("tls_established_client")) await addons.trigger("tls_established_client", tlsData);

    const tlsStream = new Stream(sock, rawStream.socket);
    ctx.clientStream = tlsStream;
    try {
      const child = this.#opts.child?.(ctx) ??
        new Http1Layer(ctx, "transparent", {
          scheme: serverTls ? "https" : "http",
          host: dest.host,
          port: dest.port,
        });
      await ctx.runLayer(child);
    } finally {
      tlsStream.close();
    }
  }

  async #dropServer(): Promise<void> {
    if (this.#conn) await this.#ctx.pool.discard(this.#conn);
  }

  async #clientFailed(e: unknown, tlsData: TlsData): Promise<void> {
    const ctx = this.#ctx;
    const client = ctx.client;
    const log = ctx.master.log;
    const host = client.sni ?? this.#dest.host;
    const msg = describeError(e);
    const rejected =
      /unknown ca|certificate unknown|bad certificate|unsupported certificate|UNKNOWN_CA|CERTIFICATE_UNKNOWN|BAD_CERTIFICATE/i
        .test(`${msg} ${(e as { code?: string })?.code ?? ""}`);
    const closed = /closed during the TLS handshake|ECONNRESET/i.test(msg);
    if (rejected || closed) {
      client.error = rejected
        ? `client does not trust the mitmdeno CA (TLS alert: ${msg}): see ${this.#cfg.onboardingUrl}`
        : `client closed the connection during the TLS handshake (it may not trust the mitmdeno CA: see ${this.#cfg.onboardingUrl})`;
      if (!this.#cfg.untrustedWarned.has(host)) {
        this.#cfg.untrustedWarned.add(host);
        log.warn(`${client}: TLS handshake with the client for ${host} failed: ${client.error}`);
      } else ctx.debug(`TLS handshake with the client for ${host} failed: ${client.error}`);
    } else {
      client.error = `TLS handshake with the client for ${host} failed: ${msg}`;
      log.info(`${client}: ${client.error}`);
    }
    const addons = ctx.master.addons;
    if (addons.has("tls_failed_client")) await addons.trigger("tls_failed_client", tlsData);
    await this.#dropServer();
  }
}
