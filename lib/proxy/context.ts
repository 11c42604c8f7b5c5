/**
 * The context a layer runs in: the root (client connection, master, mode) plus the stack of layers
 * above it. Layers read it; only the root decides the next layer (see next_layer.ts).
 */
import type { Master } from "../master.ts";
import type { Client } from "../flow/connection.ts";
import type { Stream } from "./stream.ts";
import type { ModeSpec } from "./mode.ts";
import type { ServerPool } from "./server_conn.ts";
import { parseSize } from "../http/bytes.ts";

/** A protocol layer: a small object that handles its part of a connection in `run()`. */
export interface Layer {
  readonly name: string;
  run(): Promise<void>;
}

/** Limits and timeouts read from options once per connection. */
export interface Limits {
  maxHeadSize: number;
  maxHeaders: number;
  bodySizeLimit: number | null;
  streamLargeBodies: number | null;
  /** Idle timeout in ms (0: none). */
  idleTimeout: number;
  connectTimeout: number;
  /** Time for a client to send a request head, in ms (0: none). */
  headerTimeout: number;
  /** Time for a server to start its response, in ms (0: none). */
  responseTimeout: number;
}

/** Read the limits from the options. */
export function readLimits(master: Master): Limits {
  const o = master.options;
  const size = (v: string | null) => (v ? parseSize(v) : null);
  return {
    maxHeadSize: o.max_header_size,
    maxHeaders: o.max_header_count,
    bodySizeLimit: size(o.body_size_limit),
    streamLargeBodies: size(o.stream_large_bodies),
    idleTimeout: o.tcp_timeout * 1000,
    connectTimeout: o.connect_timeout * 1000,
    headerTimeout: o.http_header_timeout * 1000,
    responseTimeout: o.http_response_timeout * 1000,
  };
}

/** Ports this process's proxy listeners are bound to (to refuse requests that would loop back). */
export const listeningPorts: Set<number> = new Set();

const LOCAL = /^(127\.\d+\.\d+\.\d+|localhost|::1|0\.0\.0\.0|::|::ffff:127\.\d+\.\d+\.\d+)$/i;

/** Whether host:port is this proxy itself (a request there would loop forever). */
export function isProxyItself(host: string, port: number): boolean {
  return listeningPorts.has(port) && LOCAL.test(host);
}

/** Per-connection state shared by all layers of one client connection. */
export class Context {
  readonly master: Master;
  readonly client: Client;
  /** The client byte stream as the current layer sees it (TLS layers replace it). */
  clientStream: Stream;
  readonly mode: ModeSpec;
  readonly layers: Layer[] = [];
  readonly pool: ServerPool;
  readonly limits: Limits;

  constructor(master: Master, client: Client, clientStream: Stream, mode: ModeSpec, pool: ServerPool) {
    this.master = master;
    this.client = client;
    this.clientStream = clientStream;
    this.mode = mode;
    this.pool = pool;
    this.limits = readLimits(master);
  }

  /** Push a layer on the stack and run it. */
  async runLayer(layer: Layer): Promise<void> {
    this.layers.push(layer);
    try {
      await layer.run();
    } finally {
      this.layers.pop();
    }
  }

  get options() {
    return this.master.options;
  }

  /** Debug log for the proxy core (only with proxy_debug). */
  debug(msg: string): void {
    if (this.master.options.proxy_debug) this.master.log.debug(`[${this.client}] ${msg}`);
  }
}
