/**
 * Server connections: opened as late as possible by whoever first needs one, announced through the
 * `server_connect` / `server_connected` / `server_connect_error` / `server_disconnected` hooks, and kept
 * per client connection for reuse (keep-alive). TLS to the server is `node:tls.connect` over the TCP
 * socket (it gives the peer certificate and a per-connection `rejectUnauthorized`), either right after
 * connecting (`tls` connections from the pool) or as an upgrade of an open TCP connection (the eager
 * CONNECT connection, see {@link ServerPool.upgradeToTls}), with the `tls_start_server`,
 * `tls_established_server` and `tls_failed_server` hooks.
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
}

const upstreamTlsConfigs = new WeakMap<Master, UpstreamTlsConfig>();

/** Set how `master`'s server TLS connections are verified. */
export function setUpstreamTlsConfig(master: Master, cfg: UpstreamTlsConfig): void {
  upstreamTlsConfigs.set(master, cfg);
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

/** An open (or opening) connection to a server. */
export class ServerConnection {
  readonly server: Server;
  stream: Stream | null = null;
  /** False once the connection must not carry another request. */
  reusable = true;
  #master: Master;
  #client: Client;
  #closed = false;

  constructor(master: Master, client: Client, server: Server) {
    this.#master = master;
    this.#client = client;
    this.server = server;
  }

  get key(): string {
    return connKey(this.server.address!, this.server.tls);
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
    if (server.sni === null && !isIpLiteral(host)) server.sni = host;
    if (server.sni !== null && isIpLiteral(server.sni)) server.sni = null;
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
    this.stream = new Stream(sock);
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
  #master: Master;
  #client: Client;
  /** SNI to send per "host:port" (a TLS layer records the client's SNI for its tunnel's server). */
  readonly sniFor = new Map<string, string | null>();

  constructor(master: Master, client: Client) {
    this.#master = master;
    this.#client = client;
  }

  /** A live connection to `address` (opened if needed). */
  async get(
    address: [string, number],
    timeoutMs: number,
    tls = false,
    context: unknown = null,
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
    const server = new Server(address);
    server.tls = tls;
    const hp = hostPort(address[0], address[1]);
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

  /** Make the next `get` for (address, tls) fail with `err` once (a handshake that already failed). */
  rememberFailure(address: [string, number], tls: boolean, err: ProtocolError): void {
    this.#failed.set(connKey(address, tls), err);
  }

  /** Forget and close a connection. */
  async discard(conn: ServerConnection): Promise<void> {
    if (this.#conns.get(conn.key) === conn) this.#conns.delete(conn.key);
    await conn.close();
  }

  /** Close everything (end of the client connection). */
  async closeAll(): Promise<void> {
    const all = [...this.#conns.values()];
    this.#conns.clear();
    for (const c of all) await c.close();
  }
}
