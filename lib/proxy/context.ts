/**
 * The context of a layer (mitmproxy's `proxy/context.py`): the client connection, the server connection the
 * layer works towards (may not be open yet, or never), the proxy's services, and the stack of layers above
 * it. A layer that starts a new stack of children for another server forks it.
 *
 * @module
 */
import type { Client, Server } from "../flow/connection.ts";
import type { ProxyCore } from "./core.ts";
import type { Master } from "../master.ts";
import type { Options } from "../addons/options.ts";

/** Per-connection context shared by the layers of one stack. */
export class Context {
  /** The client connection of this stack. */
  readonly client: Client;
  /** The server this stack talks to (its address may be set later, e.g. after CONNECT). */
  server: Server;
  /** The per-master proxy core.
   * @ignore */
  readonly core: ProxyCore;
  /** Names of the layers of this stack, outermost first (for debugging). */
  readonly layers: string[];

  /** A context for a stack between `client` and `server`. */
  constructor(client: Client, server: Server, core: ProxyCore, layers: string[] = []) {
    this.client = client;
    this.server = server;
    this.core = core;
    this.layers = layers;
  }

  /** A copy for a new stack of layers below the current one (same connections). */
  fork(): Context {
    return new Context(this.client, this.server, this.core, [...this.layers]);
  }

  /** The master running the proxy. */
  get master(): Master {
    return this.core.master;
  }

  /** The master's options. */
  get options(): Options {
    return this.core.master.options;
  }
}
