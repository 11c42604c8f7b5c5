/**
 * The driver of one client connection (mitmproxy's `ConnectionHandler` in `proxy/server.py`): it owns the
 * sockets, turns their activity into events for the root layer, and carries out the commands that reach it
 * (send, open, close, TLS, hooks, timers, relays). All I/O of a connection happens here; layers own none.
 *
 * Flow control: when a socket's write buffer is full, reading stops on the connection's other sockets until
 * it drains, so a slow reader on either side throttles the other and memory stays bounded. For a server
 * connection a layer watches (`WatchWrites`: an HTTP/1 server fed by one stream of an HTTP/2 client) the
 * root is told instead (`WritesBlocked`), and that layer holds back only what feeds it.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { Client, type Connection, Server } from "../flow/connection.ts";
import { describeError } from "../addons/log.ts";
import { hostPort } from "../http/message.ts";
import {
  CloseConnection,
  type Command,
  Log,
  OpenConnection,
  Relay,
  RequestWakeup,
  SendData,
  SetReading,
  StartHook,
  StartTls,
  type TlsInfo,
  WatchWrites,
} from "./commands.ts";
import { ConnectionClosed, DataReceived, Start, WritesBlocked } from "./events.ts";
import type { Layer } from "./layer.ts";
import { Context } from "./context.ts";
import type { ProxyCore } from "./core.ts";
import type { Deadline } from "./timers.ts";
import { Transport } from "./conns/transport.ts";
import { clientTls, connectTcp, describeTlsError, tlsInfoOf } from "./conns/connect.ts";
import { connectError, ProtocolError } from "./errors.ts";
import { upgradeToServerTls } from "../tls/upgrade.ts";
import { cipherAllowed } from "../tls/ciphers.ts";
import type { SecureContext } from "node:tls";
import type { ModeSpec } from "./mode.ts";

/** Fields of a connection record copied from an idle connection taken from the pool. */
const ADOPTED = [
  "id",
  "peername",
  "sockname",
  "alpn",
  "tlsVersion",
  "cipher",
  "certificateList",
  "timestampStart",
  "timestampTcpSetup",
  "timestampTlsSetup",
] as const;

/** TLS alerts (and node error codes) of a peer that rejected our certificate. */
const UNTRUSTED =
  /unknown ca|certificate unknown|bad certificate|unsupported certificate|UNKNOWN_CA|CERTIFICATE_UNKNOWN|BAD_CERTIFICATE/i;

/** The driver of one client connection. */
export class Driver {
  readonly core: ProxyCore;
  readonly client: Client;
  readonly context: Context;
  #root: Layer | null = null;
  readonly #transports = new Map<Connection, Transport>();
  /** Transports whose write buffer is full (the others do not read meanwhile, unless watched). */
  readonly #blocked = new Set<Transport>();
  /** Connections whose write backpressure a layer handles (see WatchWrites). */
  readonly #watched = new Set<Connection>();
  /** Blocked transports of watched connections: their layer was told, nobody was paused. */
  readonly #blockedWatched = new Map<Transport, Connection>();
  readonly #debug: boolean;
  #activity = 0;
  #done!: () => void;
  readonly #finished: Promise<void>;
  #ending = false;
  /**
   * Pending deadlines of this connection (`tcp_timeout`, its layers' wakeups), forgotten when it ends: each
   * holds the driver or a layer, and with them the connection's flows, for as long as it is scheduled (up to
   * `tcp_timeout`, 10 minutes by default).
   */
  readonly #deadlines = new Set<Deadline>();

  /** A driver for an accepted socket (`socket` null: a connection without a client socket, e.g. replay). */
  constructor(core: ProxyCore, client: Client, socket: Socket | null) {
    this.core = core;
    this.client = client;
    this.context = new Context(client, new Server(null), core);
    this.#debug = !!core.master.options.proxy_debug;
    this.#finished = new Promise((r) => (this.#done = r));
    if (socket) this.#register(client, new Transport(socket));
  }

  /** A driver for a socket accepted in `mode` (the client record is made from the socket). */
  static accept(core: ProxyCore, socket: Socket, mode: ModeSpec): Driver {
    const client = new Client({
      peername: [socket.remoteAddress ?? "", socket.remotePort ?? 0],
      sockname: [socket.localAddress ?? "", socket.localPort ?? 0],
      proxyMode: mode.full,
    });
    return new Driver(core, client, socket);
  }

  /**
   * Run the connection with `root` as its first layer: `client_connected`, the layer's Start, then events as
   * they come, until the client connection closes; then every server connection is closed and
   * `client_disconnected` fires. Never rejects.
   */
  async run(root: Layer, opts: { clientHooks?: boolean } = {}): Promise<void> {
    const addons = this.core.master.addons;
    const clientHooks = opts.clientHooks ?? true;
    try {
      if (clientHooks && addons.has("client_connected")) {
        await addons.trigger("client_connected", this.client);
      }
      if (this.client.error) {
        this.#transports.get(this.client)?.destroy();
        this.#finish();
      } else {
        this.#root = root.attach((c) => this.execute(c));
        this.#watchIdle();
        this.#deliver(() => root.handle(new Start()));
      }
      await this.#finished;
    } catch (e) {
      this.core.master.log.error(`${this.client}: proxy error: ${describeError(e)}`);
    } finally {
      for (const [conn, t] of [...this.#transports]) {
        this.#transports.delete(conn);
        t.destroy();
        if (conn instanceof Server) this.#serverClosed(conn);
      }
      if (clientHooks) this.client.timestampEnd = Date.now() / 1000;
      if (clientHooks && addons.has("client_disconnected")) {
        await addons.trigger("client_disconnected", this.client).catch(() => {});
      }
    }
  }

  /** Hand an event to the root layer, catching what escapes it. */
  #deliver(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#crashed(e);
    }
  }

  /** A layer threw: log it and close the connection. */
  #crashed(e: unknown): void {
    this.core.master.log.error(`${this.client}: proxy error: ${describeError(e)}`);
    this.#abort();
    if (!this.#transports.has(this.client)) this.#finish();
  }

  /** Close everything at once (after a bug in a layer). */
  #abort(): void {
    for (const t of this.#transports.values()) t.destroy();
  }

  #finish(): void {
    if (this.#ending) return;
    this.#ending = true;
    for (const d of this.#deadlines) this.core.timers.delete(d);
    this.#deadlines.clear();
    this.#done();
  }

  #register(conn: Connection, t: Transport): void {
    this.#transports.set(conn, t);
    t.listen({
      data: (d) => {
        this.#activity++;
        if (this.#debug) this.#trace(`>> DataReceived(${this.#name(conn)}, ${d.length}b)`);
        try {
          this.#root?.handle(new DataReceived(conn, d));
        } catch (e) {
          this.#crashed(e);
        }
      },
      end: (e) => {
        if (e && this.#debug) this.#trace(`${this.#name(conn)}: ${e.message}`);
        if (this.#debug) this.#trace(`>> ConnectionClosed(${this.#name(conn)})`);
        this.#deliver(() => this.#root?.handle(new ConnectionClosed(conn)));
      },
      closed: () => this.#closed(conn, t),
      drain: () => this.#unblock(t),
    });
  }

  #closed(conn: Connection, t: Transport): void {
    if (this.#transports.get(conn) !== t) return;
    this.#transports.delete(conn);
    this.#unblock(t);
    this.#watched.delete(conn);
    if (conn instanceof Server) this.#serverClosed(conn);
    if (conn === this.client) this.#finish();
  }

  #serverClosed(server: Server): void {
    if (server.timestampEnd !== null) return;
    server.timestampEnd = Date.now() / 1000;
    const addons = this.core.master.addons;
    if (addons.has("server_disconnected")) {
      addons.trigger("server_disconnected", { server, client: this.client }).catch(() => {});
    }
  }

  #name(conn: Connection): string {
    return conn === this.client ? "client" : `server ${conn}`;
  }

  #trace(msg: string): void {
    this.core.master.log.debug(`[${this.client}] ${msg}`);
  }

  /** Close the connection after `tcp_timeout` without traffic. */
  #watchIdle(): void {
    const ms = this.core.limits.idleTimeout;
    if (ms <= 0) return;
    let seen = this.#activity;
    let since = Date.now();
    const d: Deadline = {
      at: Date.now() + ms,
      fire: () => {
        if (this.#ending) return;
        const now = Date.now();
        if (this.#activity !== seen) {
          seen = this.#activity;
          since = now;
        } else if (now - since >= ms) {
          this.core.master.log.info(`${this.client}: no traffic for ${ms / 1000}s (tcp_timeout): closing`);
          this.#abort();
          return;
        }
        d.at = now + Math.min(ms, 5000);
        this.core.timers.add(d);
      },
    };
    this.#deadlines.add(d);
    this.core.timers.add(d);
  }

  // ---- commands ----

  /** Carry out a command from the root layer. */
  execute(c: Command): void {
    if (this.#debug && !(c instanceof Log)) this.#trace(`<< ${c}`);
    if (c instanceof SendData) return this.#send(c);
    if (c instanceof StartHook) return this.#hook(c);
    if (c instanceof OpenConnection) return void this.#open(c);
    if (c instanceof CloseConnection) return this.#close(c);
    if (c instanceof Log) return this.core.master.log.log(c.level, c.message);
    if (c instanceof RequestWakeup) {
      return this.#ending ? undefined : this.core.timers.wakeup(c, this.#deadlines);
    }
    if (c instanceof StartTls) return void this.#startTls(c);
    if (c instanceof Relay) return void this.#relay(c);
    if (c instanceof SetReading) {
      const t = this.#transports.get(c.conn);
      if (t) c.reading ? t.resume() : t.pause();
      return;
    }
    if (c instanceof WatchWrites) {
      if (this.#transports.has(c.conn)) this.#watched.add(c.conn);
      return;
    }
    throw new Error(`unknown command ${c}`);
  }

  #send(c: SendData): void {
    const t = this.#transports.get(c.conn);
    if (!t) return;
    if (!t.write(c.data) && !this.#blocked.has(t)) {
      this.#blocked.add(t);
      if (this.#watched.size && this.#watched.has(c.conn)) {
        this.#blockedWatched.set(t, c.conn);
        return this.#tellWrites(c.conn, true);
      }
      for (const other of this.#transports.values()) if (other !== t) other.pause();
    }
  }

  #unblock(t: Transport): void {
    if (!this.#blocked.delete(t)) return;
    const watched = this.#blockedWatched.get(t);
    if (watched) {
      this.#blockedWatched.delete(t);
      return this.#tellWrites(watched, false);
    }
    for (const other of this.#transports.values()) if (other !== t) other.resume();
  }

  /**
   * Tell the root that a watched connection's writes are blocked or drained, after the command being carried
   * out (this runs inside a layer's SendData or CloseConnection: no event may enter the layers meanwhile).
   */
  #tellWrites(conn: Connection, blocked: boolean): void {
    queueMicrotask(() => {
      if (!this.#ending) this.#deliver(() => this.#root?.handle(new WritesBlocked(conn, blocked)));
    });
  }

  #hook(c: StartHook): void {
    const addons = this.core.master.addons;
    let p: Promise<void> | undefined;
    try {
      if (c.flow) p = addons.runHook(c.name, c.flow);
      else if (addons.has(c.name)) p = addons.trigger(c.name, c.data);
    } catch (e) {
      this.core.master.log.error(`hook ${c.name} failed: ${describeError(e)}`);
    }
    if (p === undefined) c.complete();
    else {
      p.then(() => c.complete(), (e) => {
        this.core.master.log.error(`hook ${c.name} failed: ${describeError(e)}`);
        c.complete();
      });
    }
  }

  async #open(c: OpenConnection): Promise<void> {
    const server = c.conn;
    const addons = this.core.master.addons;
    if (!server.address) return c.complete(new ProtocolError("connect", "no server address", 502));
    // through an upstream proxy: the TCP connection goes to the proxy (the mode layer tunnels it)
    const [host, port] = server.via ? server.via[1] : server.address;
    const where = server.via ? `upstream proxy ${hostPort(host, port)}` : hostPort(host, port);
    // an idle TLS connection to the same server (same SNI, ALPN and verification) from another client
    const idle = this.core.conns.takeIdle(server, this.client);
    if (idle) {
      for (const k of ADOPTED) (server as unknown as Record<string, unknown>)[k] = idle.server[k];
      server.timestampEnd = null;
      this.#register(server, idle.transport);
      return c.complete(null);
    }
    const data = { server, client: this.client };
    // connect_addr: the local address, visible (and changeable) as server.sockname in server_connect
    if (server.timestampStart !== null) server.sockname = null; // a reconnect: the old one is stale
    const connectAddr = this.core.limits.connectAddr;
    if (connectAddr && server.sockname === null) server.sockname = [connectAddr, 0];
    try {
      if (addons.has("server_connect")) await addons.trigger("server_connect", data);
    } catch { /* logged by the manager */ }
    if (server.error) {
      return c.complete(
        new ProtocolError("refused", `Connection to ${where} refused by an addon: ${server.error}`, 502),
      );
    }
    let socket: Socket;
    try {
      socket = await connectTcp(host, port, this.core.limits.connectTimeout, server.sockname);
    } catch (e) {
      const err = connectError(e, where);
      server.error = err.message;
      if (addons.has("server_connect_error")) {
        await addons.trigger("server_connect_error", data).catch(() => {});
      }
      return c.complete(err);
    }
    if (this.#ending) {
      socket.destroy();
      return c.complete(new ProtocolError("client-closed", "client disconnected", null));
    }
    server.peername = [socket.remoteAddress ?? host, socket.remotePort ?? port];
    server.sockname = [socket.localAddress ?? "", socket.localPort ?? 0];
    server.timestampStart = Date.now() / 1000;
    server.timestampTcpSetup = server.timestampStart;
    server.timestampEnd = null;
    this.#register(server, new Transport(socket));
    if (addons.has("server_connected")) await addons.trigger("server_connected", data).catch(() => {});
    c.complete(null);
  }

  #close(c: CloseConnection): void {
    const t = this.#transports.get(c.conn);
    // a connection without a client socket (replay) ends when its layer closes the client
    if (!t) return c.conn === this.client ? this.#finish() : undefined;
    if (c.opts.reuse && c.conn instanceof Server && !t.ended) {
      this.#transports.delete(c.conn);
      this.#unblock(t);
      this.#watched.delete(c.conn);
      if (this.core.conns.park(c.conn, t, this.client)) return;
      this.#transports.set(c.conn, t);
    }
    if (c.opts.halfClose) t.end();
    else t.close();
  }

  async #startTls(c: StartTls): Promise<void> {
    const t = this.#transports.get(c.conn);
    if (!t) return c.complete(new ProtocolError("tls", "connection closed before the TLS handshake", null));
    const s = c.settings;
    const isClient = c.conn === this.client;
    const raw = t.detachForTls(isClient ? null : s.initialData ?? null);
    let sock: TLSSocket;
    let info: TlsInfo;
    try {
      if (isClient) {
        sock = await upgradeToServerTls(raw, s.initialData ?? new Uint8Array(0), {
          secureContext: s.secureContext as SecureContext,
          ALPNProtocols: s.alpn,
          handshakeTimeout: s.timeoutMs > 0 ? s.timeoutMs : undefined,
        });
        info = tlsInfoOf(sock, false);
      } else {
        const server = c.conn as Server;
        sock = await clientTls(raw, {
          host: s.verifyHost ?? server.address![0],
          sni: s.sni ?? null,
          alpn: s.alpn,
          insecure: !!s.insecure,
          ca: s.ca,
          timeoutMs: s.timeoutMs,
          minVersion: s.minVersion,
          maxVersion: s.maxVersion,
          clientCert: s.clientCert,
        });
        info = tlsInfoOf(sock, true);
      }
      if (!cipherAllowed(s.ciphers ?? null, info.tlsVersion, info.cipher)) {
        sock.destroy();
        const opt = isClient ? "ciphers_client" : "ciphers_server";
        throw Object.assign(
          new Error(`${info.tlsVersion} cipher ${info.cipher} is not allowed by ${opt} (${s.ciphers!.spec})`),
          { code: "ERR_CIPHER_NOT_ALLOWED" },
        );
      }
    } catch (e) {
      this.#transports.delete(c.conn);
      this.#unblock(t);
      t.destroy();
      if (c.conn instanceof Server) this.#serverClosed(c.conn);
      const where = isClient ? "the client" : hostPort(...(c.conn as Server).address!);
      const code = (e as { code?: string }).code ?? "";
      const msg = describeError(e);
      const timeout = code === "TIMEOUT" || /timed out/i.test(msg);
      // a client that rejects our certificate says so in a TLS alert; one that just hangs up may not trust it
      const detail = UNTRUSTED.test(`${msg} ${code}`)
        ? "untrusted"
        : /closed during the TLS handshake|ECONNRESET/i.test(msg)
        ? "closed"
        : null;
      return c.complete(
        new ProtocolError(
          timeout ? "timeout" : "tls",
          isClient ? msg : describeTlsError(e, where),
          null,
          detail,
        ),
      );
    }
    t.upgraded(sock);
    c.complete(info);
  }

  async #relay(c: Relay): Promise<void> {
    const ta = this.#transports.get(c.a);
    const tb = this.#transports.get(c.b);
    if (!ta || !tb) return c.complete();
    const a = ta.release();
    const b = tb.release();
    if (c.aPending?.length) b.write(c.aPending);
    if (c.bPending?.length) a.write(c.bPending);
    if (ta.ended) b.end();
    if (tb.ended) a.end();
    a.pipe(b);
    b.pipe(a);
    const swallow = () => {};
    a.on("error", swallow);
    b.on("error", swallow);
    const timers: ReturnType<typeof setTimeout>[] = [];
    // when one side is gone, give the other a moment to flush, then tear it down too
    a.once("close", () => timers.push(setTimeout(() => b.destroy(), 1000)));
    b.once("close", () => timers.push(setTimeout(() => a.destroy(), 1000)));
    await Promise.all([ta.closedPromise, tb.closedPromise]);
    for (const t of timers) clearTimeout(t);
    for (const [conn, t] of [[c.a, ta], [c.b, tb]] as const) this.#closed(conn, t);
    c.complete();
  }
}
