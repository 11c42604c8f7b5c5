/**
 * The TCP layer: relays raw bytes between the client and the context's server (passthrough for ignored
 * hosts, protocols that are neither HTTP nor TLS, `tcp_hosts`). The relay itself runs natively in the driver
 * (no events, no copies in JS); bytes the layers before it had received go first.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../events.ts";
import { CloseConnection, OpenConnection, Relay } from "../commands.ts";
import type { Context } from "../context.ts";
import { concat } from "../../http/bytes.ts";

/** A raw relay between the client and the context's server. */
export class TcpLayer extends Layer {
  #client: Uint8Array[] = [];
  #server: Uint8Array[] = [];
  #clientEnded = false;
  #relaying = false;

  /**
   * `clientInitial`/`serverInitial`: bytes received before this layer (they are relayed first). Pass them
   * here rather than as events: the relay starts as soon as the server connection is open.
   */
  constructor(
    context: Context,
    clientInitial: Uint8Array | null = null,
    serverInitial: Uint8Array | null = null,
  ) {
    super(context);
    if (clientInitial && clientInitial.length) this.#client.push(clientInitial);
    if (serverInitial && serverInitial.length) this.#server.push(serverInitial);
  }

  protected onEvent(e: Event): void {
    if (this.#relaying) return;
    if (e instanceof Start) return this.#start();
    if (e instanceof DataReceived) {
      (e.conn === this.context.client ? this.#client : this.#server).push(e.data);
      return;
    }
    if (e instanceof ConnectionClosed && e.conn === this.context.client) this.#clientEnded = true;
  }

  #start(): void {
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
}
