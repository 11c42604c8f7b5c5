/**
 * The TCP layer (mitmproxy's `layers/tcp.py`) between the client and the context's server, for ignored hosts,
 * `tcp_hosts`, and protocols that are neither HTTP nor TLS. Two ways:
 *
 * - a raw relay, natively in the driver (no events, no copies in JS): for ignored hosts (passthrough), and
 *   whenever no addon has a TCP hook;
 * - a TCP flow ({@link TCPFlow}): every read becomes a message, recorded, `tcp_message` runs before it is
 *   sent on; `tcp_start` first, `tcp_end` (or `tcp_error`) last; addons may change messages and inject
 *   their own (`inject.tcp`). A half-close of one side is passed to the other; the flow ends when both
 *   sides are done.
 *
 * Bytes the layers before it had received go first.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, Event, Start } from "../events.ts";
import { CloseConnection, OpenConnection, Relay, SendData, StartHook } from "../commands.ts";
import type { Context } from "../context.ts";
import type { Connection } from "../../flow/connection.ts";
import { FlowError } from "../../flow/flow.ts";
import { TCPFlow, TCPMessage } from "../../flow/tcp.ts";
import { concat } from "../../http/bytes.ts";

/** The TCP hooks: an addon with any of them gets TCP flows. */
const TCP_HOOKS = ["tcp_start", "tcp_message", "tcp_end", "tcp_error"] as const;

/** An addon injected a message (see `TCPFlow.inject`). */
export class TcpMessageInjected extends Event {
  constructor(readonly message: TCPMessage) {
    super();
  }
}

/** Relays (or records) a TCP connection between the client and the context's server. */
export class TcpLayer extends Layer {
  #client: Uint8Array[] = [];
  #server: Uint8Array[] = [];
  #clientEnded = false;
  #relaying = false;
  readonly #ignore: boolean;
  /** The flow, in message mode. */
  flow: TCPFlow | null = null;
  #open = false;
  #ended = false;
  /** Sides that stopped sending. */
  readonly #done = new Set<Connection>();

  /**
   * `clientInitial`/`serverInitial`: bytes received before this layer (they are relayed first). Pass them
   * here rather than as events: the relay starts as soon as the server connection is open. `ignore`: a
   * passthrough (no flow, whatever the addons).
   */
  constructor(
    context: Context,
    clientInitial: Uint8Array | null = null,
    serverInitial: Uint8Array | null = null,
    ignore = false,
  ) {
    super(context);
    if (clientInitial && clientInitial.length) this.#client.push(clientInitial);
    if (serverInitial && serverInitial.length) this.#server.push(serverInitial);
    this.#ignore = ignore;
  }

  protected onEvent(e: Event): void {
    if (e instanceof Start) return this.#start();
    if (this.flow) return this.#flowEvent(e);
    if (this.#relaying) return;
    if (e instanceof DataReceived) {
      (e.conn === this.context.client ? this.#client : this.#server).push(e.data);
      return;
    }
    if (e instanceof ConnectionClosed && e.conn === this.context.client) this.#clientEnded = true;
  }

  #start(): void {
    const addons = this.context.master.addons;
    if (!this.#ignore && TCP_HOOKS.some((h) => addons.has(h))) return this.#startFlow();
    const ctx = this.context;
    const server = ctx.server;
    const open = server.timestampStart !== null && server.timestampEnd === null;
    if (open) return this.#relay();
    // not paused while connecting: bytes and a half-close that come meanwhile are buffered for the relay
    this.request(new OpenConnection(server), (err) => {
      if (err) {
        this.log(`${ctx.client}: ${err.message}`);
        this.emit(new CloseConnection(ctx.client));
        return;
      }
      this.#relay();
    });
  }

  #relay(): void {
    const ctx = this.context;
    this.#relaying = true;
    this.log(`${ctx.client}: tcp relay to ${ctx.server}`, "debug");
    const a = this.#client.length ? concat(this.#client) : null;
    const b = this.#server.length ? concat(this.#server) : null;
    this.#client = [];
    this.#server = [];
    if (this.#clientEnded) this.emit(new CloseConnection(ctx.server, { halfClose: true }));
    this.call(new Relay(ctx.client, ctx.server, a, b), () => {});
  }

  // ---- TCP flows ----

  #startFlow(): void {
    const ctx = this.context;
    const flow = this.flow = new TCPFlow(ctx.client, ctx.server);
    flow.setInjector((m) => this.handle(new TcpMessageInjected(m)));
    this.call(new StartHook("tcp_start", flow, flow), () => {
      if (flow.killed) return this.#end();
      const server = ctx.server;
      if (server.timestampStart !== null && server.timestampEnd === null) return this.#opened();
      this.call(new OpenConnection(server), (err) => {
        if (err) {
          flow.error = new FlowError(err.message);
          return this.#end();
        }
        this.#opened();
      });
    });
  }

  /** The server connection is open: what came before goes first, as messages, then the events queued. */
  #opened(): void {
    const ctx = this.context;
    this.#open = true;
    const a = this.#client.length ? concat(this.#client) : null;
    const b = this.#server.length ? concat(this.#server) : null;
    this.#client = [];
    this.#server = [];
    if (a) this.handle(new DataReceived(ctx.client, a));
    if (b) this.handle(new DataReceived(ctx.server, b));
    if (this.#clientEnded) this.handle(new ConnectionClosed(ctx.client));
  }

  #other(conn: Connection): Connection {
    return conn === this.context.client ? this.context.server : this.context.client;
  }

  #flowEvent(e: Event): void {
    const ctx = this.context;
    if (this.#ended) {
      if (e instanceof ConnectionClosed) this.emit(new CloseConnection(e.conn));
      return;
    }
    if (!this.#open) {
      // before the server connection is open (tcp_start, OpenConnection): keep
      if (e instanceof DataReceived) (e.conn === ctx.client ? this.#client : this.#server).push(e.data);
      else if (e instanceof ConnectionClosed && e.conn === ctx.client) this.#clientEnded = true;
      else if (e instanceof TcpMessageInjected) this.#message(e.message);
      return;
    }
    if (e instanceof DataReceived) {
      if (e.conn !== ctx.client && e.conn !== ctx.server) return;
      return this.#message(new TCPMessage(e.conn === ctx.client, e.data));
    }
    if (e instanceof TcpMessageInjected) return this.#message(e.message);
    if (e instanceof ConnectionClosed) {
      if (e.conn !== ctx.client && e.conn !== ctx.server) return;
      this.#done.add(e.conn);
      if (this.#done.size === 2) return this.#end();
      this.emit(new CloseConnection(this.#other(e.conn), { halfClose: true }));
    }
  }

  /** Record `m`, run `tcp_message`, send its (possibly changed) content on. */
  #message(m: TCPMessage): void {
    const flow = this.flow!;
    flow.messages.push(m);
    this.call(new StartHook("tcp_message", flow, flow), () => {
      if (flow.killed) return this.#end();
      if (!this.#open) return;
      const to = m.fromClient ? this.context.server : this.context.client;
      const content = m.content instanceof Uint8Array
        ? m.content
        : new TextEncoder().encode(String(m.content));
      if (content.length) this.emit(new SendData(to, content));
    });
  }

  /** Close both connections, then `tcp_end` (or `tcp_error` when the flow has an error). */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const flow = this.flow!;
    flow.setInjector(null);
    const ctx = this.context;
    this.emit(new CloseConnection(ctx.client));
    if (ctx.server.timestampStart !== null) this.emit(new CloseConnection(ctx.server));
    const hook = flow.error && !flow.killed ? "tcp_error" : "tcp_end";
    this.request(new StartHook(hook, flow, flow), () => {});
  }
}
