/**
 * The proxy core's per-master services, in one place (no module globals): the registry of proxy modes and of
 * layers provided by addons (the TLS layer, registered by the tlsconfig addon), the connection manager, the
 * ports the proxy listens on (to refuse requests that would loop back), the limits read from the options,
 * and one coarse timer for all the wakeups layers ask for.
 *
 * @module
 */
import type { Master } from "../master.ts";
import { ConnectionManager } from "./conns/manager.ts";
import { Timers } from "./timers.ts";
import { type Limits, readLimits } from "./limits.ts";
import type { Layer } from "./layer.ts";
import type { Context } from "./context.ts";
import type { ModeSpec } from "./mode.ts";

/** A proxy mode: how to parse its spec's data and which layer starts a connection that comes in through it. */
export interface ModeDefinition {
  /** The mode's name, as in `--mode NAME[:DATA]`. */
  name: string;
  /** How the mode is written, e.g. `upstream:URL` (for --help and errors). */
  syntax: string;
  /** Short description for --help and errors. */
  description: string;
  /** What a listener in this mode is, for the start-up line ("HTTP(S) proxy", "SOCKS v5 proxy", ...). */
  label(spec: ModeSpec): string;
  /** The port it listens on when neither the spec nor `listen_port` says (mitmproxy's default_port). */
  defaultPort: number;
  /** The first layer of a client connection. */
  layer(ctx: Context, spec: ModeSpec): Layer;
}

/** Options of a TLS layer (see layers/tls.ts). */
export interface TlsLayerOptions {
  /** Whether the server side speaks TLS too (a reverse proxy to http:// says false). */
  serverTls: boolean;
  /** The layer over the decrypted client stream (default: HTTP towards the context's server). */
  child?: (ctx: Context) => Layer;
}

/** Layers that addons provide. */
export interface LayerFactories {
  /** TLS interception (the tlsconfig addon: it has the CA). */
  tls?: (ctx: Context, opts: TlsLayerOptions) => Layer;
}

/** The per-master services of the proxy core. */
export class ProxyCore {
  readonly master: Master;
  readonly modes: Map<string, ModeDefinition> = new Map();
  readonly layers: LayerFactories = {};
  readonly conns: ConnectionManager;
  readonly timers: Timers = new Timers();
  /** Ports this process's proxy listeners are bound to. */
  readonly listeningPorts: Set<number> = new Set();
  #limits: Limits | null = null;
  #limitsVersion = -1;

  constructor(master: Master) {
    this.master = master;
    this.conns = new ConnectionManager(master);
  }

  /** Register a proxy mode. */
  addMode(def: ModeDefinition): void {
    this.modes.set(def.name, def);
  }

  /** The limits of the current options (re-read when options change). */
  get limits(): Limits {
    const v = this.master.options.version;
    if (this.#limits === null || v !== this.#limitsVersion) {
      this.#limits = readLimits(this.master.options);
      this.#limitsVersion = v;
    }
    return this.#limits;
  }

  /** Whether host:port is this proxy itself (a request there would loop forever). */
  isProxyItself(host: string, port: number): boolean {
    return this.listeningPorts.has(port) && LOCAL.test(host);
  }
}

const LOCAL = /^(127\.\d+\.\d+\.\d+|localhost|::1|0\.0\.0\.0|::|::ffff:127\.\d+\.\d+\.\d+)$/i;
