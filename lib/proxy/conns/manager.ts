/**
 * The connection manager of one master: how servers are verified (set by the tlsconfig addon), the idle pool
 * of TLS connections shared by client connections, and the certificate names learned from servers. The
 * drivers of all client connections use it; layers never see it.
 *
 * @module
 */
import type { Master } from "../../master.ts";
import type { Client, Server } from "../../flow/connection.ts";
import { hostPort } from "../../http/message.ts";
import { type IdleConnection, IdlePool } from "./idle_pool.ts";
import { CertInfoCache, type UpstreamCertInfo } from "./cert_cache.ts";
import type { Transport } from "./transport.ts";
import { defaultSni } from "./connect.ts";
import type { SecureVersion } from "node:tls";
import type { CipherPolicy } from "../../tls/ciphers.ts";
import type { ClientCert } from "../../tls/custom_certs.ts";

export type { UpstreamCertInfo };

/** How TLS to servers is verified and offered. */
export interface UpstreamTlsConfig {
  /** Do not verify server certificates (`ssl_insecure`). */
  insecure: boolean;
  /** Trusted roots (PEM) instead of node's default store; undefined = the default store. */
  ca?: string[];
  /** ALPN offered to servers by default. */
  alpn: string[];
  /** Keep idle TLS connections (and learned certificate names) for later client connections. */
  reuse?: boolean;
  /** TLS version bounds (`tls_version_server_min/max`, node:tls names); undefined: node's defaults. */
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** TLS 1.2 suites allowed (`ciphers_server`); null: any. */
  ciphers?: CipherPolicy | null;
  /** The client certificate for a server name (SNI, else the address), `client_certs`. */
  clientCert?: ((name: string) => ClientCert | null) | null;
}

/** What `server_*` hooks receive, as mitmproxy's ServerConnectionHookData. */
export interface ServerConnectionHookData {
  /** The server connection. */
  server: Server;
  /** The client connection it is for. */
  client: Client;
}

/** Per-master connection state. */
export class ConnectionManager {
  readonly #master: Master;
  #config: UpstreamTlsConfig | null = null;
  /** Bumped on every configuration change: part of every key, so nothing is reused across settings. */
  #generation = 0;
  readonly certs: CertInfoCache = new CertInfoCache();
  readonly idle: IdlePool;
  /** The client each idle connection last served (for its `server_disconnected`). */
  readonly #lastClient = new WeakMap<Server, Client>();

  constructor(master: Master) {
    this.#master = master;
    this.idle = new IdlePool((c) => this.#disconnected(c.server));
  }

  /** The settings (default: verify against the default roots unless `ssl_insecure`, offer http/1.1). */
  get tlsConfig(): UpstreamTlsConfig {
    return this.#config ?? { insecure: !!this.#master.options.ssl_insecure, alpn: ["http/1.1"] };
  }

  /** New settings: idle connections and names learned under the old ones are dropped. */
  setTlsConfig(cfg: UpstreamTlsConfig): void {
    this.#config = cfg;
    this.#generation++;
    this.certs.clear();
    this.idle.closeAll();
    this.idle.reopen();
  }

  #verifyKey(): string {
    return `${this.#generation}${this.tlsConfig.insecure ? "k" : "v"}`;
  }

  /** The SNI a connection to `host` sends when the layer set none (`undefined`). */
  sniFor(host: string, sni: string | null | undefined): string | null {
    return defaultSni(host, sni);
  }

  /** The idle-pool key of a TLS connection to `server` with its SNI and ALPN offers. */
  reuseKey(server: Server): string {
    const [host, port] = server.address!;
    const via = server.via ? `|via ${server.via[0]}://${hostPort(...server.via[1])}` : "";
    return `${this.#verifyKey()}|${server.sni ?? ""}|${hostPort(host, port)}|${
      server.alpnOffers.join(",")
    }${via}`;
  }

  #certKey(host: string, port: number, sni: string | null): string {
    return `${this.#verifyKey()}|${sni ?? ""}|${hostPort(host, port)}`;
  }

  /** Names an earlier handshake with host:port (sending `sni`) learned, under the current settings. */
  certInfo(host: string, port: number, sni: string | null): UpstreamCertInfo | undefined {
    if (!this.tlsConfig.reuse) return undefined;
    return this.certs.get(this.#certKey(host, port, sni));
  }

  /** Remember the names of `server`'s certificate. */
  learn(server: Server, info: UpstreamCertInfo): void {
    if (!this.tlsConfig.reuse) return;
    this.certs.set(this.#certKey(server.address![0], server.address![1], server.sni), info);
  }

  /** An idle connection for `server` (TLS, same SNI and ALPN offers), adopted by `client`, or null. */
  takeIdle(server: Server, client: Client): IdleConnection | null {
    if (!this.tlsConfig.reuse || !server.tls) return null;
    const c = this.idle.take(this.reuseKey(server));
    if (c) this.#lastClient.set(c.server, client);
    return c;
  }

  /** Whether an idle TLS connection to host:port (any SNI) waits. */
  hasIdleTls(host: string, port: number): boolean {
    return !!this.tlsConfig.reuse && this.idle.hasIdle(host, port);
  }

  /** Keep an idle, healthy TLS connection for later; false if it cannot be kept (close it). */
  park(server: Server, transport: Transport, client: Client): boolean {
    if (
      !this.tlsConfig.reuse || !server.tls || server.timestampTlsSetup === null || server.address === null
    ) {
      return false;
    }
    const ok = this.idle.park({ key: this.reuseKey(server), server, transport, parkedAt: 0 });
    if (ok) this.#lastClient.set(server, client);
    return ok;
  }

  #disconnected(server: Server): void {
    server.timestampEnd = Date.now() / 1000;
    const addons = this.#master.addons;
    const client = this.#lastClient.get(server);
    if (client && addons.has("server_disconnected")) {
      addons.trigger("server_disconnected", { server, client }).catch(() => {});
    }
  }

  /** Close the idle connections (shutdown: and keep no more). */
  closeIdle(final = false): void {
    this.idle.closeAll(final);
  }
}
