/**
 * The addon manager: keeps the addon chain and dispatches events (mitmproxy's `addonmanager.py`).
 *
 * Handlers run in chain order, each addon before its children (`addon.addons`), depth first.
 * A handler may be async; it is awaited before the next one runs. A throwing handler is logged with its
 * file:line and the next addon still runs; {@link AddonHalt} stops the event for the rest of the chain.
 */
import { describeError, type Logger } from "./log.ts";
import { OptionsError, type OptionSpec, type OptionType } from "./options.ts";
import type { Options } from "./options.ts";
import type { Flow } from "../flow/flow.ts";

/** Every event an addon can handle, with mitmproxy's names. */
export const EVENTS = [
  "load",
  "running",
  "configure",
  "done",
  "client_connected",
  "client_disconnected",
  "server_connect",
  "server_connected",
  "server_disconnected",
  "server_connect_error",
  "requestheaders",
  "request",
  "responseheaders",
  "response",
  "error",
  "http_connect",
  "http_connect_upstream",
  "http_connected",
  "http_connect_error",
  "tcp_start",
  "tcp_message",
  "tcp_end",
  "tcp_error",
  "tls_clienthello",
  "tls_start_client",
  "tls_start_server",
  "tls_established_client",
  "tls_established_server",
  "tls_failed_client",
  "tls_failed_server",
  "websocket_start",
  "websocket_message",
  "websocket_end",
  "socks5_auth",
  "next_layer",
  "update",
] as const;

/**
 * mitmproxy events that mitmdeno never fires (it has no DNS or UDP mode yet); a script handling one is told so
 * when it loads.
 */
export const UNFIRED_MITMPROXY_EVENTS: readonly string[] = [
  "dns_request",
  "dns_response",
  "dns_error",
  "udp_start",
  "udp_message",
  "udp_end",
  "udp_error",
];

/** An event name. */
export type EventName = typeof EVENTS[number];

/** Throw this from a handler to stop the event reaching the addons after it. */
export class AddonHalt extends Error {
  constructor() {
    super("addon halt");
    this.name = "AddonHalt";
  }
}

/** Raised for misuse of the manager (duplicate names, non-callable handlers). */
export class AddonManagerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddonManagerError";
  }
}

/** An addon: any object with handler methods named after events, optionally `name` and child `addons`. */
export type Addon = Record<string, any>;

/** A command handler. */
export type CommandFn = (...args: any[]) => unknown;

/** What `load(loader)` receives: declare options and commands. */
export interface Loader {
  /**
   * Declare an option.
   * `flags.secret` marks a credential: its value is never sent to sandboxed scripts.
   * @example loader.addOption("addheader", "bool", false, "Add a count header to responses")
   */
  addOption(
    name: string,
    type: OptionType,
    defaultValue: unknown,
    help: string,
    choices?: readonly string[],
    flags?: { secret?: boolean },
  ): void;
  /** Declare a command, e.g. `loader.addCommand("myaddon.clear", () => ...)`. */
  addCommand(path: string, fn: CommandFn, help?: string): void;
}

/** Names given to nameless plain-object addons when "addon" was taken ("addon-2", ...). */
const assignedNames = new WeakMap<Addon, string>();

/** The name of an addon: its `name`, else its lower-cased class name, else "addon". */
export function addonName(addon: Addon): string {
  if (typeof addon.name === "string" && addon.name) return addon.name;
  const ctor = Object.getPrototypeOf(addon)?.constructor;
  if (ctor && ctor !== Object && ctor.name) return ctor.name.toLowerCase();
  return assignedNames.get(addon) ?? "addon";
}

function isNameless(addon: Addon): boolean {
  return addonName(addon) === "addon" && !(typeof addon.name === "string" && addon.name);
}

const LEGACY = ["clientconnect", "clientdisconnect", "serverconnect", "serverdisconnect", "add_log"];

/** An addon and one of its event handlers. */
export type Handler = [Addon, (...args: unknown[]) => unknown];

/** Host services the manager needs. */
export interface ManagerHost {
  /** The options addons declare into. */
  options: Options;
  /** The log addons write to. */
  log: Logger;
  /** Where addons' commands are registered. */
  commands: { add(path: string, fn: CommandFn, help?: string): void };
}

/** The addon chain and event dispatch. */
export class AddonManager {
  /** The addons, in the order events reach them. */
  readonly chain: Addon[] = [];
  readonly #byName = new Map<string, Addon>();
  readonly #host: ManagerHost;
  #cache = new Map<string, Handler[]>();

  /** A manager for `host`'s addons. */
  constructor(host: ManagerHost) {
    this.#host = host;
  }

  /** The addon called `name`, if loaded. */
  get(name: string): Addon | undefined {
    return this.#byName.get(name);
  }

  /** Every addon in dispatch order: each addon, then its children, depth first. */
  *walk(addons: Addon[] = this.chain): Generator<Addon> {
    for (const a of addons) {
      yield a;
      const kids = a.addons;
      if (Array.isArray(kids) && kids.length) yield* this.walk(kids);
    }
  }

  /** A loader that declares options/commands for `addon`. */
  loader(addon: Addon): Loader {
    const host = this.#host;
    return {
      addOption(name, type, defaultValue, help, choices, flags) {
        const spec: OptionSpec = { name, type, default: defaultValue, help, choices };
        if (flags?.secret) spec.secret = true;
        const old = host.options.spec(name);
        if (old && (old.type !== type || JSON.stringify(old.default) !== JSON.stringify(defaultValue))) {
          host.log.warn(`Over-riding existing option ${name} (from ${addonName(addon)})`);
        }
        host.options.add(spec, addonName(addon));
      },
      addCommand(path, fn, help) {
        host.commands.add(path, fn.bind(addon), help);
      },
    };
  }

  /**
   * Register an addon (and its children) without adding it to the chain: checks names, fires `load`.
   */
  async register(addon: Addon): Promise<void> {
    // check every name in the tree first, so a clash registers (and loads) none of it
    const seen = new Set<string>();
    for (const a of this.walk([addon])) {
      if (isNameless(a) && (this.#byName.has("addon") || seen.has("addon"))) {
        let n = 2;
        while (this.#byName.has(`addon-${n}`) || seen.has(`addon-${n}`)) n++;
        assignedNames.set(a, `addon-${n}`);
      }
      const name = addonName(a);
      if (this.#byName.has(name) || seen.has(name)) {
        throw new AddonManagerError(`An addon called '${name}' already exists.`);
      }
      seen.add(name);
    }
    for (const a of this.walk([addon])) {
      const name = addonName(a);
      for (const legacy of LEGACY) {
        if (typeof a[legacy] === "function") {
          this.#host.log.warn(`Addon ${name}: the "${legacy}" event has been removed, see the event table`);
        }
      }
      this.#byName.set(name, a);
      await this.#invoke(a, "load", [this.loader(a)]);
    }
    await this.#host.options.processDeferred();
    this.#cache.clear();
  }

  /** Register and append addons to the chain (fires `load` for each). */
  async add(...addons: Addon[]): Promise<void> {
    for (const a of addons) {
      await this.register(a);
      this.chain.push(a);
      this.#cache.clear();
    }
  }

  /** Remove an addon (fires `done` on it and its children). */
  async remove(addon: Addon): Promise<void> {
    const i = this.chain.indexOf(addon);
    if (i === -1) throw new AddonManagerError(`No such addon: ${addonName(addon)}`);
    for (const a of this.walk([addon])) {
      await this.#invoke(a, "done", []);
      this.#byName.delete(addonName(a));
    }
    this.chain.splice(i, 1);
    this.#cache.clear();
  }

  /** Replace `old` by `next` at the same chain position: `done` on the old, `load` on the new. */
  async replace(old: Addon, next: Addon): Promise<void> {
    const i = this.chain.indexOf(old);
    if (i === -1) throw new AddonManagerError(`No such addon: ${addonName(old)}`);
    for (const a of this.walk([old])) {
      await this.#invoke(a, "done", []);
      this.#byName.delete(addonName(a));
    }
    await this.register(next);
    this.chain[i] = next;
    this.#cache.clear();
  }

  /** Forget cached handler lists (call after changing an addon's children). */
  invalidate(): void {
    this.#cache.clear();
  }

  /** The handlers for `event`, in dispatch order. */
  handlers(event: string): Handler[] {
    let hs = this.#cache.get(event);
    if (hs) return hs;
    hs = [];
    for (const a of this.walk()) {
      const fn = a[event];
      if (fn === undefined || fn === null) continue;
      if (typeof fn !== "function") {
        throw new AddonManagerError(`Addon handler ${event} (${addonName(a)}) not callable`);
      }
      hs.push([a, fn]);
    }
    this.#cache.set(event, hs);
    return hs;
  }

  /** Whether any addon handles `event`. */
  has(event: string): boolean {
    return this.handlers(event).length > 0;
  }

  /**
   * Whether some addon needs the past messages of the open WebSocket `flow` (see the option
   * `websocket_keep_messages`): an addon with a `websocket_end` handler does (in mitmproxy it sees every
   * message there) unless it says otherwise with a `websocketHistory` member, `false` or a function of the
   * flow (e.g. the save addon needs them only while it records).
   */
  wantsWebSocketHistory(flow: Flow): boolean {
    for (const [a] of this.handlers("websocket_end")) {
      const w = a.websocketHistory;
      if (w === false) continue;
      if (typeof w !== "function") return true;
      try {
        if (w.call(a, flow)) return true;
      } catch {
        return true;
      }
    }
    return false;
  }

  /**
   * Fire `event` on every addon in order, awaiting async handlers. Errors are logged; OptionsError
   * from `configure` is re-thrown so option updates can roll back.
   */
  async trigger(event: string, ...args: unknown[]): Promise<void> {
    const p = this.#fire(event, args, this.handlers(event), 0);
    if (p) await p;
  }

  /**
   * Run handlers `hs[from..]` synchronously until one returns a thenable; only then continue
   * asynchronously (returns that promise). Returns undefined when every handler was synchronous, so a
   * chain of plain handlers costs no promise at all.
   */
  #fire(event: string, args: unknown[], hs: Handler[], from: number): Promise<void> | undefined {
    for (let i = from; i < hs.length; i++) {
      const h = hs[i];
      try {
        const r = h[1].apply(h[0], args);
        if (r && typeof (r as Promise<unknown>).then === "function") {
          return this.#fireAfter(event, args, hs, i, r as Promise<unknown>);
        }
      } catch (e) {
        if (this.#handlerFailed(e, h[0], event)) return undefined;
      }
    }
    return undefined;
  }

  async #fireAfter(
    event: string,
    args: unknown[],
    hs: Handler[],
    i: number,
    pending: Promise<unknown>,
  ): Promise<void> {
    try {
      await pending;
    } catch (e) {
      if (this.#handlerFailed(e, hs[i][0], event)) return;
    }
    const p = this.#fire(event, args, hs, i + 1);
    if (p) await p;
  }

  /** Handle a handler's error: true when the event stops (AddonHalt); OptionsError in configure re-thrown. */
  #handlerFailed(e: unknown, addon: Addon, event: string): boolean {
    if (e instanceof AddonHalt) return true;
    if (e instanceof OptionsError && event === "configure") throw e;
    this.#host.log.error(`Addon error in ${addonName(addon)}.${event}: ${describeError(e)}`);
    return false;
  }

  /** Fire an event on one addon (and its children) only. */
  async invokeAddon(addon: Addon, event: string, ...args: unknown[]): Promise<void> {
    for (const a of this.walk([addon])) await this.#invoke(a, event, args);
  }

  async #invoke(a: Addon, event: string, args: unknown[]): Promise<void> {
    const fn = a[event];
    if (typeof fn !== "function") return;
    try {
      await fn.apply(a, args);
    } catch (e) {
      if (e instanceof OptionsError || e instanceof AddonManagerError) throw e;
      this.#host.log.error(`Addon error in ${addonName(a)}.${event}: ${describeError(e)}`);
    }
  }

  /**
   * Run a flow hook as the proxy does: the event, then `update([flow])`, then wait while the flow is
   * intercepted. Fast when nobody listens, and without any promise of its own when every handler is
   * synchronous (it then returns an already resolved promise).
   */
  handleLifecycle(event: EventName, flow: Flow): Promise<void> {
    try {
      return this.runHook(event, flow) ?? RESOLVED;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@link handleLifecycle} for the proxy's hot path: returns undefined when everything ran synchronously,
   * so the caller skips an `await` (`const p = addons.runHook(e, flow); if (p) await p;`).
   */
  runHook(event: EventName, flow: Flow): Promise<void> | undefined {
    const hs = this.handlers(event);
    const p = hs.length ? this.#fire(event, [flow], hs, 0) : undefined;
    if (p) return p.then(() => this.#afterHook(flow));
    return this.#afterHook(flow);
  }

  /** `update([flow])`, then wait while the flow is intercepted. */
  #afterHook(flow: Flow): Promise<void> | undefined {
    const us = this.handlers("update");
    const p = us.length ? this.#fire("update", [[flow]], us, 0) : undefined;
    if (p) return p.then(() => flow.intercepted ? flow.waitForResume() : undefined);
    if (flow.intercepted) return flow.waitForResume();
    return undefined;
  }
}

const RESOLVED: Promise<void> = Promise.resolve();
