/**
 * Server connections: opened as late as possible by whoever first needs one, announced through the
 * `server_connect` / `server_connected` / `server_connect_error` / `server_disconnected` hooks, and kept
 * per client connection for reuse (keep-alive).
 */
import net from "node:net";
import { Server } from "../flow/connection.ts";
import type { Client } from "../flow/connection.ts";
import { Stream } from "./stream.ts";
import { describeConnectError, ProtocolError } from "./errors.ts";
import type { Master } from "../master.ts";
import { hostPort } from "../http/message.ts";

/** What the server_* hooks receive, as mitmproxy's ServerConnectionHookData. */
export interface ServerConnectionHookData {
  server: Server;
  client: Client;
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

  /** Connect, firing the hooks. Throws ProtocolError (502/504) with a readable reason. */
  async open(timeoutMs: number): Promise<void> {
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
  #master: Master;
  #client: Client;

  constructor(master: Master, client: Client) {
    this.#master = master;
    this.#client = client;
  }

  /** A live connection to `address` (opened if needed). */
  async get(address: [string, number], timeoutMs: number, tls = false): Promise<ServerConnection> {
    const key = connKey(address, tls);
    const existing = this.#conns.get(key);
    if (existing) {
      if (existing.alive && existing.reusable) return existing;
      this.#conns.delete(key);
      await existing.close();
    }
    const server = new Server(address);
    server.tls = tls;
    const conn = new ServerConnection(this.#master, this.#client, server);
    await conn.open(timeoutMs);
    this.#conns.set(key, conn);
    return conn;
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
