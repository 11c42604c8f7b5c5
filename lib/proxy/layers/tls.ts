/**
 * The TLS layer (mitmproxy's ClientTLSLayer + ServerTLSLayer): it reads the client's ClientHello as it
 * arrives, fires `tls_clienthello` (an addon may pass the connection through, or decide whether the server
 * handshake comes first), does the server handshake (by default first, so the forged certificate copies the
 * upstream certificate's CN and SANs; not when an earlier handshake with the same server taught us those
 * names already: then the HTTP layer makes or takes the server connection when the first request needs it),
 * mints a leaf and has the driver do the client handshake natively, then runs the child layer (HTTP) over
 * the decrypted connection.
 *
 * Hook order, as mitmproxy: tls_clienthello, tls_start_server, tls_established_server (or
 * tls_failed_server), tls_start_client, tls_established_client (or tls_failed_client).
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../events.ts";
import { CloseConnection, OpenConnection, SendData, StartHook, StartTls } from "../commands.ts";
import { ProtocolError } from "../errors.ts";
import type { Context } from "../context.ts";
import type { TlsLayerOptions } from "../core.ts";
import type { UpstreamCertInfo } from "../conns/cert_cache.ts";
import { type ClientHello, MAX_CLIENT_HELLO, parseClientHello } from "../../tls/clienthello.ts";
import type { CertRequest, CertStore } from "../../tls/certs.ts";
import type { CipherPolicy } from "../../tls/ciphers.ts";
import type { SecureContext } from "node:tls";
import { cipherRefusal, clientContextFor, HANDSHAKE_FAILURE_ALERT } from "./tls_client_options.ts";
import { concat } from "../../http/bytes.ts";
import { hostPort } from "../../http/message.ts";
import { describeError } from "../../addons/log.ts";
import { TcpLayer } from "./tcp.ts";
import { HttpLayer } from "./http/layer.ts";
import { applyTlsInfo, establishServerTls, type TlsData } from "./server_tls.ts";
import { isIpLiteral } from "../conns/connect.ts";

export type { TlsData, UpstreamCertInfo };

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

  /** The data for one ClientHello of the connection of `context`. */
  constructor(context: Context, clientHello: ClientHello, establishServerTlsFirst: boolean) {
    this.context = context;
    this.clientHello = clientHello;
    this.establishServerTlsFirst = establishServerTlsFirst;
  }
}

/** What the TLS layer needs from the tlsconfig addon. */
export interface TlsLayerConfig {
  /** Mints (and caches) leaves signed by our CA. */
  certs: CertStore;
  /** Hosts whose clients were already reported as not trusting the CA (log once per host). */
  untrustedWarned: Set<string>;
  /** Where users get the CA (shown in the "does not trust" message). */
  onboardingUrl: string;
  /** TLS 1.2 suites allowed with clients (`ciphers_client`); null: any. */
  clientCiphers?: CipherPolicy | null;
  /** Append the server's certificates to the chain shown to the client (`add_upstream_certs_to_client_chain`). */
  addUpstreamCerts?: boolean;
  /** Whether TLS 1.3 is allowed with clients (`tls_version_client_max`). */
  clientTls13?: boolean;
  /** Contexts with the server's certificates appended, per leaf (filled by the layer). */
  chainContexts?: WeakMap<object, { chain: string; ctx: SecureContext }>;
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

/** The TLS interception layer of a connection whose server is the context's. */
export class TlsLayer extends Layer {
  readonly #cfg: TlsLayerConfig;
  readonly #opts: TlsLayerOptions;
  #buf: Uint8Array[] = [];
  #child: Layer | null = null;
  #started = false;
  #failed = false;

  constructor(context: Context, cfg: TlsLayerConfig, opts: TlsLayerOptions) {
    super(context);
    this.#cfg = cfg;
    this.#opts = opts;
  }

  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    if (this.#failed) return;
    if (e instanceof Start) {
      const ms = this.context.core.limits.idleTimeout;
      if (ms > 0) {
        this.wakeup(ms, () => {
          if (!this.#started && !this.#failed) {
            this.#fail(`client sent no complete TLS ClientHello within ${ms / 1000}s`);
          }
        });
      }
      return;
    }
    if (e instanceof DataReceived && e.conn === this.context.client) {
      if (this.#started) return;
      this.#buf.push(e.data);
      return this.#readClientHello();
    }
    if (e instanceof ConnectionClosed && e.conn === this.context.client && !this.#started) {
      const n = concat(this.#buf).length;
      this.#fail(`client closed the connection in the middle of the ClientHello (${n} bytes)`);
    }
  }

  #readClientHello(): void {
    const buf = concat(this.#buf);
    this.#buf = [buf];
    let hello: ClientHello | "need-more";
    try {
      hello = parseClientHello(buf);
    } catch (e) {
      return this.#fail(`invalid TLS ClientHello: ${(e as Error).message}`);
    }
    if (hello === "need-more") {
      if (buf.length >= MAX_CLIENT_HELLO) this.#fail("TLS ClientHello too large");
      return;
    }
    this.#started = true;
    this.#hello = hello;
    this.#clientHello(hello, buf);
  }

  #hello: ClientHello | null = null;

  #fail(reason: string): void {
    const ctx = this.context;
    this.#failed = true;
    ctx.client.error = reason;
    const where = ctx.server.address ? hostPort(...ctx.server.address) : "?";
    this.log(`${ctx.client}: TLS to ${where}: ${reason}`);
    this.emit(new CloseConnection(ctx.client));
    if (ctx.server.timestampStart !== null && ctx.server.timestampEnd === null) {
      this.emit(new CloseConnection(ctx.server));
    }
  }

  #clientHello(hello: ClientHello, raw: Uint8Array): void {
    const ctx = this.context;
    const client = ctx.client;
    const server = ctx.server;
    const [host, port] = server.address!;
    client.sni = hello.sni ?? null;
    client.alpnOffers = hello.alpnProtocols;
    const serverTls = this.#opts.serverTls;
    if (serverTls) {
      server.tls = true;
      // the server gets the client's SNI (a reverse proxy keeps the target's host name)
      if (!client.proxyMode.startsWith("reverse")) {
        server.sni = client.sni && !isIpLiteral(client.sni) ? client.sni : null;
      }
    }
    // names learned from this server's certificate by an earlier handshake (same SNI, same verification)
    const sni = ctx.core.conns.sniFor(host, server.sni ?? undefined);
    const known = serverTls && ctx.options.upstream_cert
      ? ctx.core.conns.certInfo(host, port, sni)
      : undefined;
    const connected = server.timestampStart !== null && server.timestampEnd === null;
    const data = new ClientHelloData(
      ctx,
      hello,
      serverTls && (!!this.#cfg.addUpstreamCerts || (!known && (connected || !!ctx.options.upstream_cert))),
    );
    this.call(new StartHook("tls_clienthello", data), () => {
      if (data.ignoreConnection) {
        this.log(`${client}: TLS passthrough to ${hostPort(host, port)} (tls_clienthello)`, "debug");
        return this.#setChild(new TcpLayer(ctx.fork(), raw), false);
      }
      if (serverTls && data.establishServerTlsFirst) {
        return this.#serverFirst(() => this.#clientHandshake(raw, this.#upstreamNames()));
      }
      this.#clientHandshake(raw, known);
    });
  }

  /** What the server handshake (now, or of the idle connection taken) told of the server's certificate. */
  #upstreamNames(): UpstreamCertInfo | undefined {
    const s = this.context.server;
    if (s.timestampTlsSetup === null) return undefined;
    const [host, port] = s.address!;
    return this.#names ?? this.context.core.conns.certInfo(host, port, s.sni);
  }

  #names: UpstreamCertInfo | undefined;

  /** The server handshake first (connect if needed); a failure is remembered for the first request's 502. */
  #serverFirst(then: () => void): void {
    const ctx = this.context;
    const server = ctx.server;
    const handshake = () =>
      establishServerTls((c, t) => this.request(c, t), ctx, server, (err, names) => {
        this.#names = names;
        if (err) {
          this.log(`${ctx.client}: server TLS handshake failed: ${err.message}`, "warn");
          // the client still gets TLS, then the HTTP layer answers its request with a 502 naming the reason
          server.error = err.message;
        }
        then();
      });
    if (server.timestampStart !== null && server.timestampEnd === null) {
      if (server.timestampTlsSetup !== null) return then(); // an idle TLS connection from the pool
      return handshake();
    }
    this.call(new OpenConnection(server), (err) => {
      if (err) {
        this.log(`${ctx.client}: server TLS handshake failed: ${err.message}`, "warn");
        server.error = err.message;
        return then();
      }
      if (server.timestampTlsSetup !== null) return then();
      handshake();
    });
  }

  #clientHandshake(raw: Uint8Array, upstream: UpstreamCertInfo | undefined): void {
    const ctx = this.context;
    const client = ctx.client;
    const [host] = ctx.server.address!;
    if (!ctx.options.upstream_cert) upstream = undefined;
    const req = certRequestFor(
      upstream,
      client.sni,
      client.proxyMode === "regular" ? null : client.sockname?.[0] ?? null,
      host,
    );
    let leaf;
    try {
      leaf = this.#cfg.certs.getCert(req);
    } catch (e) {
      client.error = `cannot create a certificate for ${req.sans.join(", ")}: ${describeError(e)}`;
      this.log(`${client}: ${client.error}`, "error");
      this.emit(new CloseConnection(client));
      return;
    }
    try {
      const shown = clientContextFor(this.#cfg, leaf, ctx.server.certificateList);
      if (shown !== leaf.secureContext) leaf = { ...leaf, secureContext: shown };
    } catch (e) {
      this.log(`${client}: cannot add the server's certificates to the chain: ${describeError(e)}`, "warn");
    }
    const tlsData: TlsData = { conn: client, context: ctx, sslConn: null, isDtls: false };
    this.call(new StartHook("tls_start_client", tlsData), () => {
      const refused = cipherRefusal(this.#cfg, this.#hello!);
      if (refused) {
        this.emit(new SendData(client, HANDSHAKE_FAILURE_ALERT)); // as OpenSSL, instead of a ServerHello
        return this.#clientFailed(new ProtocolError("tls", refused, null), tlsData);
      }
      const timeout = ctx.core.limits.idleTimeout;
      this.call(
        new StartTls(client, {
          secureContext: leaf.secureContext,
          alpn: ["http/1.1"],
          initialData: raw,
          timeoutMs: timeout,
          ciphers: this.#cfg.clientCiphers,
        }),
        (r) => {
          if (r instanceof ProtocolError) return this.#clientFailed(r, tlsData);
          client.tls = true;
          applyTlsInfo(client, r);
          client.certificateList = [];
          client.mitmcert = leaf.certPem;
          this.call(new StartHook("tls_established_client", tlsData), () => {
            const child = this.#opts.child?.(ctx.fork()) ??
              new HttpLayer(ctx.fork(), { mode: "transparent", rewriteHost: false });
            this.#setChild(child, true);
          });
        },
      );
    });
  }

  #clientFailed(err: ProtocolError, tlsData: TlsData): void {
    const ctx = this.context;
    const client = ctx.client;
    const host = client.sni ?? ctx.server.address![0];
    if (err.detail === "untrusted" || err.detail === "closed") {
      client.error = err.detail === "untrusted"
        ? `client does not trust the mitmdeno CA (TLS alert: ${err.message}): see ${this.#cfg.onboardingUrl}`
        : `client closed the connection during the TLS handshake (it may not trust the mitmdeno CA: see ${this.#cfg.onboardingUrl})`;
      if (!this.#cfg.untrustedWarned.has(host)) {
        this.#cfg.untrustedWarned.add(host);
        this.log(`${client}: TLS handshake with the client for ${host} failed: ${client.error}`, "warn");
      } else this.log(`TLS handshake with the client for ${host} failed: ${client.error}`, "debug");
    } else {
      client.error = `TLS handshake with the client for ${host} failed: ${err.message}`;
      this.log(`${client}: ${client.error}`);
    }
    this.#failed = true;
    this.call(new StartHook("tls_failed_client", tlsData), () => {
      this.emit(new CloseConnection(client));
      const s = ctx.server;
      if (s.timestampStart !== null && s.timestampEnd === null) this.emit(new CloseConnection(s));
    });
  }

  /** Run `layer` from now on (`replay`: none of the bytes so far belong to it: they were the handshake). */
  #setChild(layer: Layer, _decrypted: boolean): void {
    this.#buf = [];
    this.#child = this.adopt(layer);
    layer.handle(new Start());
  }
}
