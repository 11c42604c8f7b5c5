/**
 * Server connections: opened as late as possible by whoever first needs one, announced through the
 * `server_connect` / `server_connected` / `server_connect_error` / `server_disconnected` hooks, and kept
 * per client connection for reuse (keep-alive). TLS to the server is `node:tls.connect` over the TCP
 * socket (it gives the peer certificate and a per-connection `rejectUnauthorized`), either right after
 * connecting (`tls` connections from the pool) or as an upgrade of an open TCP connection (the eager
 * CONNECT connection, see {@link ServerPool.upgradeToTls}), with the `tls_start_server`,
 * `tls_established_server` and `tls_failed_server` hooks.
 *
 * When the tlsconfig addon enables it ({@link UpstreamTlsConfig.reuse}), idle TLS connections outlive
 * the client connection that opened them: they wait in a per-master idle pool (keyed by host, port,
 * SNI, ALPN and how the server was verified; {@link IDLE_TIMEOUT_MS}, {@link IDLE_PER_KEY} per key)
 * for the next client connection to the same server. Hooks stay truthful: `server_connect(ed)` fire
 * when a connection is really opened, `server_disconnected` when it is really closed (by either side,
 * the idle timeout or shutdown). What was learned of a server's certificate is kept per
 * (verification, SNI, host, port) too ({@link upstreamCertInfo}), so the TLS layer can forge a
 * certificate without waiting for an upstream handshake.
 */
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { Server } from "../flow/connection.ts";
import type { Client, Connection } from "../flow/connection.ts";
import { Stream } from "./stream.ts";
import { describeConnectError, ProtocolError } from "./errors.ts";
import type { Master } from "../master.ts";
import { hostPort } from "../http/message.ts";

/** What the server_* hooks receive, as mitmproxy's ServerConnectionHookData. */
export interface ServerConnectionHookData {
  server: Server;
  client: Client;
}

/** What the tls_* hooks receive, as mitmproxy's TlsData. */
export interface TlsData {
  /** The client or server connection record the handshake is for. */
  conn: Connection;
  /** The layer context (null when a pooled server connection is opened outside a TLS layer). */
  context: unknown;
  /** The TLS socket, once it exists. */
  sslConn: tls.TLSSocket | null;
  isDtls: false;
}

/** How TLS to servers is verified: set per master by the tlsconfig addon. */
export interface UpstreamTlsConfig {
  /** Do not verify server certificates (`ssl_insecure`). */
  insecure: boolean;
  /** Trusted roots (PEM): the default store plus `ssl_verify_upstream_trusted_ca`; undefined = node's default. */
  ca?: string[];
  /** ALPN offered to servers. */
  alpn: string[];
  /** Keep idle TLS connections (and learned certificate names) for later client connections. */
  reuse?: boolean;
}

const upstreamTlsConfigs = new WeakMap<Master, UpstreamTlsConfig>();
/** A distinct number per configuration set: part of every reuse key (never reuse across them). */
const configGenerations = new WeakMap<UpstreamTlsConfig, number>();
let lastGeneration = 0;

/**
 * Set how `master`'s server TLS connections are verified. Idle connections and certificate names
 * learned under the previous settings are dropped (they were verified differently).
 */
export function setUpstreamTlsConfig(master: Master, cfg: UpstreamTlsConfig): void {
  upstreamTlsConfigs.set(master, cfg);
  configGenerations.set(cfg, ++lastGeneration);
  const state = reuseStates.get(master);
  if (state) {
    state.certInfo.clear();
    void state.idle.closeAll();
  }
  if (cfg.reuse) {
    if (!state) reuseStates.set(master, new ReuseState());
    else state.idle.reopen();
  }
}

/** The upstream TLS settings of `master` (defaults: verify against node's default roots, http/1.1). */
export function upstreamTlsConfig(master: Master): UpstreamTlsConfig {
  return upstreamTlsConfigs.get(master) ??
    { insecure: !!master.options.ssl_insecure, alpn: ["http/1.1"] };
}

/** A readable reason for a failed TLS handshake with a server. */
export function describeTlsError(e: unknown, where: string): string {
  const err = e as { code?: string; message?: string };
  const msg = err?.message ?? String(e);
  const code = err?.code && !msg.includes(err.code) ? ` (${err.code})` : "";
  const verify = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME|ISSUER|EXPIRED|NOT_YET_VALID/.test(
    err?.code ?? "",
  );
  return `TLS handshake with ${where} failed: ${verify ? "certificate verify failed: " : ""}${msg}${code}`;
}

function isIpLiteral(host: string): boolean {
  return net.isIP(host) !== 0;
}

/** Parse node's `subjectaltname` ("DNS:a, IP Address:1.2.3.4") into names. */
export function parseSubjectAltName(s: string | undefined): string[] {
  if (!s) return [];
  const out: string[] = [];
  for (const part of s.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.*)$/.exec(part.trim());
    if (m) out.push(m[2]);
  }
  return out;
}

/** Names learned from an upstream certificate, copied into forged ones. */
export interface UpstreamCertInfo {
  cn?: string;
  sans: string[];
  o?: string;
}

/** The verification part of reuse keys: settings generation and whether certificates are checked. */
function verifyKey(cfg: UpstreamTlsConfig): string {
  return `${configGenerations.get(cfg) ?? 0}${cfg.insecure ? "k" : "v"}`;
}

/** The SNI sent to `host` unless told otherwise: the host name, none for an IP literal. */
function defaultSni(host: string, sni: string | null | undefined): string | null {
  if (sni === undefined) sni = isIpLiteral(host) ? null : host;
  return sni !== null && isIpLiteral(sni) ? null : sni;
}

function reuseKey(cfg: UpstreamTlsConfig, host: string, port: number, sni: string | null, alpn: string[]) {
  return `${verifyKey(cfg)}|${sni ?? ""}|${hostPort(host, port)}|${alpn.join(",")}`;
}

/** How long an idle upstream TLS connection is kept for other client connections. */
export const IDLE_TIMEOUT_MS = 30_000;
/** At most this many idle connections per (server, SNI, ALPN, verification). */
export const IDLE_PER_KEY = 16;
/** At most this many idle connections in all. */
export const IDLE_TOTAL = 512;
const CERT_INFO_CAPACITY = 10_000;

/** Idle server connections shared by all client connections of one master. */
class IdlePool {
  #byKey = new Map<string, ServerConnection[]>();
  /** Idle count per "host:port" (whatever the SNI), for the eager CONNECT decision. */
  #perHost = new Map<string, number>();
  #total = 0;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | null = null;

  /** Keep `conn` for reuse; false if it cannot be kept (the caller closes it). */
  park(conn: ServerConnection): boolean {
    const key = conn.reuseKey;
    if (this.#closed || key === null || this.#total >= IDLE_TOTAL) return false;
    let list = this.#byKey.get(key);
    if (!list) this.#byKey.set(key, list = []);
    if (list.length >= IDLE_PER_KEY) return false;
    list.push(conn);
    this.#count(conn, 1);
    conn.parkedAt = Date.now();
    // a server that closes (or talks on) an idle connection: forget it and close it at once
    conn.watchIdle(() => {
      if (this.#remove(conn)) void conn.close();
    });
    this.#timer ??= setInterval(() => this.#sweep(), 1000);
    (this.#timer as { unref?: () => void }).unref?.();
    return true;
  }

  /** The most recently parked live connection under `key` (dead ones on the way are closed). */
  take(key: string): ServerConnection | null {
    const list = this.#byKey.get(key);
    while (list && list.length) {
      const conn = list.pop()!;
      this.#count(conn, -1);
      conn.watchIdle(null);
      if (conn.alive && conn.stream!.buffered === 0) {
        if (!list.length) this.#byKey.delete(key);
        return conn;
      }
      void conn.close();
    }
    this.#byKey.delete(key);
    return null;
  }

  /** Whether some idle connection (any SNI) to host:port waits. */
  hasIdle(host: string, port: number): boolean {
    return (this.#perHost.get(hostPort(host, port)) ?? 0) > 0;
  }

  #count(conn: ServerConnection, d: number): void {
    const hp = hostPort(conn.server.address![0], conn.server.address![1]);
    const n = (this.#perHost.get(hp) ?? 0) + d;
    if (n > 0) this.#perHost.set(hp, n);
    else this.#perHost.delete(hp);
    this.#total += d;
  }

  #remove(conn: ServerConnection): boolean {
    const list = this.#byKey.get(conn.reuseKey ?? "");
    const i = list ? list.indexOf(conn) : -1;
    if (i === -1) return false;
    list!.splice(i, 1);
    if (!list!.length) this.#byKey.delete(conn.reuseKey!);
    conn.watchIdle(null);
    this.#count(conn, -1);
    return true;
  }

  /** Close connections idle too long; the (unref'd) timer stops once the pool is empty. */
  #sweep(): void {
    if (this.#total === 0) {
      clearInterval(this.#timer!);
      this.#timer = null;
      return;
    }
    const old = Date.now() - IDLE_TIMEOUT_MS;
    for (const list of [...this.#byKey.values()]) {
      for (const conn of list.filter((c) => c.parkedAt <= old)) {
        if (this.#remove(conn)) void conn.close();
      }
    }
  }

  /** Close every idle connection; connections parked later are closed at once (until reopened). */
  async closeAll(final = false): Promise<void> {
    if (final) this.#closed = true;
    const all = [...this.#byKey.values()].flat();
    for (const c of all) this.#remove(c);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.all(all.map((c) => c.close()));
  }

  reopen(): void {
    this.#closed = false;
  }
}

/** Per-master state for reuse across client connections. */
class ReuseState {
  readonly idle = new IdlePool();
  /** Upstream certificate names per reuse key without ALPN (verification|sni|host:port). */
  readonly certInfo = new Map<string, UpstreamCertInfo>();
}

const reuseStates = new WeakMap<Master, ReuseState>();

function certInfoKey(cfg: UpstreamTlsConfig, host: string, port: number, sni: string | null): string {
  return `${verifyKey(cfg)}|${sni ?? ""}|${hostPort(host, port)}`;
}

/**
 * What an earlier handshake with host:port (sending `sni`; null or undefined: the default SNI for the
 * host, as {@link ServerConnection.startTls} does) learned of the server's certificate under the current verification settings, if anything.
 */
export function upstreamCertInfo(
  master: Master,
  host: string,
  port: number,
  sni?: string | null,
): UpstreamCertInfo | undefined {
  const state = reuseStates.get(master);
  if (!state) return undefined;
  return state.certInfo.get(
    certInfoKey(upstreamTlsConfig(master), host, port, defaultSni(host, sni ?? undefined)),
  );
}

/**
 * Close `master`'s idle server connections and stop keeping new ones (shutdown). Certificate names
 * learned are kept.
 */
export async function closeIdleServerConnections(master: Master): Promise<void> {
  await reuseStates.get(master)?.idle.closeAll(true);
}

function certInfoFrom(peer: tls.DetailedPeerCertificate | undefined): UpstreamCertInfo {
  if (!peer || !peer.subject) return { sans: [] };
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  return {
    cn: one(peer.subject.CN),
    sans: parseSubjectAltName(peer.subjectaltname),
    o: one(peer.subject.O),
  };
}

/** An open (or opening) connection to a server. */
export class ServerConnection {
  readonly server: Server;
  stream: Stream | null = null;
  /** False once the connection must not carry another request. */
  reusable = true;
  /**
   * False while an exchange is under way (request sent, response not completely read): such a
   * connection is never handed to another client connection.
   */
  idle = true;
  /** Names from the server's certificate (after a TLS handshake). */
  certInfo: UpstreamCertInfo | null = null;
  /** Key in the idle pool (set once TLS is established and cross-client reuse is on). */
  reuseKey: string | null = null;
  /** When the connection was last parked in the idle pool (ms). */
  parkedAt = 0;
  #master: Master;
  #client: Client;
  #closed = false;
  #idleWatch: (() => void) | null = null;

  constructor(master: Master, client: Client, server: Server) {
    this.#master = master;
    this.#client = client;
    this.server = server;
  }

  get key(): string {
    return connKey(this.server.address!, this.server.tls);
  }

  /** The client connection this connection now serves (hook data names it). */
  adopt(client: Client): void {
    this.#client = client;
  }

  /** While idle in the pool: call `onGone` when the server closes, fails or sends anything. */
  watchIdle(onGone: (() => void) | null): void {
    const sock = this.stream?.socket;
    if (!sock) return;
    if (this.#idleWatch) {
      sock.off("end", this.#idleWatch);
      sock.off("close", this.#idleWatch);
      sock.off("error", this.#idleWatch);
      sock.off("data", this.#idleWatch);
      this.#idleWatch = null;
    }
    if (onGone) {
      const fn = () => onGone();
      this.#idleWatch = fn;
      sock.once("end", fn);
      sock.once("close", fn);
      sock.once("error", fn);
      sock.once("data", fn);
    }
  }

  /** Whether the socket is still usable. */
  get alive(): boolean {
    return !!this.stream && !this.stream.isClosed && !this.stream.eof;
  }

  /**
   * Connect, firing the hooks; for a `tls` server also do the TLS handshake. Throws ProtocolError
   * (502/504) with a readable reason.
   */
  async open(timeoutMs: number, context: unknown = null): Promise<void> {
    const addons = this.#master.addons;
    const data: ServerConnectionHookData = { server: this.server, client: this.#client };
    const [host, port] = this.server.address!;
    const where = hostPort(host, port);
    if (addons.has("server_connect")) await addons.trigger("server_connect", data);
    if (this.server.error) {
      throw new ProtocolError(`Connection to ${where} refused by an addon: ${this.server.error}`, 502);
    }
    try {
      const socket = await connect(host, port, timeoutMs);
      this.stream = new Stream(socket);
      this.server.peername = [socket.remoteAddress ?? host, socket.remotePort ?? port];
      this.server.sockname = [socket.localAddress ?? "", socket.localPort ?? 0];
      this.server.timestampStart = Date.now() / 1000;
      this.server.timestampTcpSetup = this.server.timestampStart;
    } catch (e) {
      const { reason, status } = describeConnectError(e, where);
      this.server.error = reason;
      if (addons.has("server_connect_error")) await addons.trigger("server_connect_error", data);
      throw new ProtocolError(reason, status);
    }
    if (addons.has("server_connected")) await addons.trigger("server_connected", data);
    if (this.server.tls) await this.startTls(timeoutMs, context);
  }

  /**
   * TLS handshake over the open TCP connection (as a client), firing tls_start_server then
   * tls_established_server or tls_failed_server. SNI: `server.sni`, else the host unless it is an IP
   * (an IP is verified against the certificate's IP SANs). Throws ProtocolError 502 naming the reason.
   */
  async startTls(timeoutMs: number, context: unknown = null): Promise<void> {
    const server = this.server;
    const addons = this.#master.addons;
    const [host, port] = server.address!;
    const where = hostPort(host, port);
    const cfg = upstreamTlsConfig(this.#master);
    server.tls = true;
    server.sni = defaultSni(host, server.sni ?? undefined);
    server.alpnOffers = cfg.alpn;
    const data: TlsData = { conn: server, context, sslConn: null, isDtls: false };
    if (addons.has("tls_start_server")) await addons.trigger("tls_start_server", data);
    const old = this.stream!;
    const raw = old.socket;
    const rest = old.detach();
    raw.pause();
    if (rest.length) raw.unshift(Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength));
    let sock: tls.TLSSocket;
    try {
      sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({
          socket: raw,
          host,
          servername: server.sni ?? undefined,
          ALPNProtocols: cfg.alpn,
          rejectUnauthorized: !cfg.insecure,
          ca: cfg.ca,
        });
        data.sslConn = s;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const fail = (e: Error) => {
          clearTimeout(timer);
          s.destroy();
          raw.destroy();
          reject(e);
        };
        if (timeoutMs > 0) {
          timer = setTimeout(
            () => fail(Object.assign(new Error(`timed out after ${timeoutMs / 1000}s`), { code: "TIMEOUT" })),
            timeoutMs,
          );
        }
        const onClose = () => fail(new Error("connection closed during the handshake"));
        s.once("error", fail);
        s.once("close", onClose);
        s.once("secureConnect", () => {
          clearTimeout(timer);
          s.off("error", fail);
          s.off("close", onClose);
          resolve(s);
        });
      });
    } catch (e) {
      const reason = describeTlsError(e, where);
      server.error = reason;
      this.reusable = false;
      if (addons.has("tls_failed_server")) await addons.trigger("tls_failed_server", data);
      throw new ProtocolError(reason, (e as { code?: string }).code === "TIMEOUT" ? 504 : 502);
    }
    this.stream = new Stream(sock, raw);
    server.alpn = sock.alpnProtocol || null;
    server.tlsVersion = sock.getProtocol() ?? null;
    server.cipher = sock.getCipher()?.name ?? null;
    const peer = sock.getPeerCertificate(true);
    const chain: string[] = [];
    for (let c = peer, i = 0; c && c.raw && i < 10; c = c.issuerCertificate, i++) {
      chain.push(derToPem(c.raw));
      if (c.issuerCertificate === c) break;
    }
    server.certificateList = chain;
    server.timestampTlsSetup = Date.now() / 1000;
    this.certInfo = certInfoFrom(peer);
    const state = cfg.reuse ? reuseStates.get(this.#master) : undefined;
    if (state) {
      // keyed by what was really negotiated (a tls_start_server hook may have changed SNI or ALPN)
      this.reuseKey = reuseKey(cfg, host, port, server.sni, server.alpnOffers);
      const infoKey = certInfoKey(cfg, host, port, server.sni);
      state.certInfo.delete(infoKey);
      state.certInfo.set(infoKey, this.certInfo);
      if (state.certInfo.size > CERT_INFO_CAPACITY) {
        state.certInfo.delete(state.certInfo.keys().next().value!);
      }
    }
    if (addons.has("tls_established_server")) await addons.trigger("tls_established_server", data);
  }

  /** Close the connection (fires server_disconnected once). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.reusable = false;
    if (!this.stream) return;
    this.stream.destroy();
    this.server.timestampEnd = Date.now() / 1000;
    const addons = this.#master.addons;
    if (addons.has("server_disconnected")) {
      await addons.trigger("server_disconnected", { server: this.server, client: this.#client });
    }
  }
}

function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

function connKey(a: [string, number], tls: boolean): string {
  return `${tls ? "tls" : "tcp"}:${hostPort(a[0], a[1])}`;
}

/** Open a TCP connection with a timeout. */
export function connect(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, allowHalfOpen: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => fail(Object.assign(new Error("connect timeout"), { code: "TIMEOUT" })),
        timeoutMs,
      );
    }
    socket.once("error", fail);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", fail);
      resolve(socket);
    });
  });
}

/** The server connections of one client connection, reused while they stay alive. */
export class ServerPool {
  #conns = new Map<string, ServerConnection>();
  #failed = new Map<string, ProtocolError>();
  /** Open TCP connections (eager CONNECT) to upgrade to TLS when a TLS connection is first asked for. */
  #deferredTls = new Map<string, ServerConnection>();
  #master: Master;
  #client: Client;
  /** SNI to send per "host:port" (a TLS layer records the client's SNI for its tunnel's server). */
  readonly sniFor = new Map<string, string | null>();

  constructor(master: Master, client: Client) {
    this.#master = master;
    this.#client = client;
  }

  /**
   * A live connection to `address`: this client connection's own, else (TLS) an idle one from the
   * master's idle pool, else a new one. `fresh` skips the idle pool (a retry after a stale one).
   */
  get(
    address: [string, number],
    timeoutMs: number,
    tls = false,
    context: unknown = null,
    fresh = false,
  ): Promise<ServerConnection> {
    const live = fresh ? null : this.live(address, tls);
    if (live) return Promise.resolve(live);
    return this.#get(address, timeoutMs, tls, context, fresh);
  }

  /** This client connection's own live, reusable connection to `address`, if any (keep-alive fast path). */
  live(address: [string, number], tls = false): ServerConnection | null {
    if (this.#failed.size !== 0) return null;
    const existing = this.#conns.get(connKey(address, tls));
    return existing && existing.alive && existing.reusable ? existing : null;
  }

  async #get(
    address: [string, number],
    timeoutMs: number,
    tls: boolean,
    context: unknown,
    fresh: boolean,
  ): Promise<ServerConnection> {
    const key = connKey(address, tls);
    const failed = this.#failed.get(key);
    if (failed) {
      this.#failed.delete(key);
      throw failed;
    }
    const existing = this.#conns.get(key);
    if (existing) {
      if (existing.alive && existing.reusable) return existing;
      this.#conns.delete(key);
      await existing.close();
    }
    const hp = hostPort(address[0], address[1]);
    const deferred = tls ? this.#deferredTls.get(hp) : undefined;
    if (deferred) this.#deferredTls.delete(hp);
    if (tls && !fresh) {
      const idle = this.#takeIdle(address, this.sniFor.get(hp));
      if (idle) {
        if (deferred) await this.discard(deferred);
        this.#conns.set(key, idle);
        return idle;
      }
    }
    if (deferred && deferred.alive) {
      await this.upgradeToTls(deferred, timeoutMs, context);
      return deferred;
    }
    const server = new Server(address);
    server.tls = tls;
    if (tls && this.sniFor.has(hp)) server.sni = this.sniFor.get(hp)!;
    const conn = new ServerConnection(this.#master, this.#client, server);
    try {
      await conn.open(timeoutMs, context);
    } catch (e) {
      await conn.close();
      throw e;
    }
    this.#conns.set(key, conn);
    return conn;
  }

  #takeIdle(address: [string, number], sni: string | null | undefined): ServerConnection | null {
    const state = reuseStates.get(this.#master);
    const cfg = upstreamTlsConfig(this.#master);
    if (!state || !cfg.reuse) return null;
    const [host, port] = address;
    const conn = state.idle.take(reuseKey(cfg, host, port, defaultSni(host, sni ?? undefined), cfg.alpn));
    conn?.adopt(this.#client);
    return conn;
  }

  /** Whether a TLS connection to `address` could come from the idle pool (any SNI). */
  hasIdleTls(address: [string, number]): boolean {
    const state = reuseStates.get(this.#master);
    return !!state && !!upstreamTlsConfig(this.#master).reuse && state.idle.hasIdle(address[0], address[1]);
  }

  /**
   * Upgrade an open TCP connection of this pool (e.g. the eager CONNECT's) to TLS, so it is reused
   * rather than a second connection opened; afterwards it is found under the `tls` key.
   */
  async upgradeToTls(conn: ServerConnection, timeoutMs: number, context: unknown = null): Promise<void> {
    if (this.#conns.get(conn.key) === conn) this.#conns.delete(conn.key);
    const hp = hostPort(conn.server.address![0], conn.server.address![1]);
    if (this.sniFor.has(hp) && conn.server.sni === null) conn.server.sni = this.sniFor.get(hp)!;
    try {
      await conn.startTls(timeoutMs, context);
    } catch (e) {
      await conn.close();
      throw e;
    }
    const old = this.#conns.get(conn.key);
    if (old && old !== conn) await old.close();
    this.#conns.set(conn.key, conn);
  }

  /**
   * The next `get` of a TLS connection to `conn`'s address upgrades `conn` (an open TCP connection of
   * this pool, e.g. the eager CONNECT's) unless an idle TLS connection can be reused instead.
   */
  deferTls(conn: ServerConnection): void {
    this.#deferredTls.set(hostPort(conn.server.address![0], conn.server.address![1]), conn);
  }

  /** Make the next `get` for (address, tls) fail with `err` once (a handshake that already failed). */
  rememberFailure(address: [string, number], tls: boolean, err: ProtocolError): void {
    this.#failed.set(connKey(address, tls), err);
  }

  /** Forget and close a connection. */
  async discard(conn: ServerConnection): Promise<void> {
    if (this.#conns.get(conn.key) === conn) this.#conns.delete(conn.key);
    await conn.close();
  }

  /**
   * End of the client connection: idle, healthy TLS connections go to the master's idle pool (when
   * reuse is on), everything else is closed.
   */
  async closeAll(): Promise<void> {
    const all = [...this.#conns.values()];
    this.#conns.clear();
    const state = reuseStates.get(this.#master);
    for (const c of all) {
      if (
        state && c.reuseKey !== null && c.idle && c.reusable && c.alive && c.stream!.buffered === 0 &&
        state.idle.park(c)
      ) continue;
      await c.close();
    }
  }
}
