/**
 * One loaded script: the addon the proxy's chain sees (a child of the ScriptLoader). It owns the script's
 * worker, forwards exactly the hooks the script defines, applies the changes they make, restarts the
 * worker after a timeout or crash, and reloads it when the script or a local module it imports changes.
 */
import { typecheckScript } from "./typecheck.ts";
import type { Master } from "../../master.ts";
import { type Loader, UNFIRED_MITMPROXY_EVENTS } from "../manager.ts";
import { describeError, type Logger, type LogLevel } from "../log.ts";
import { refusal } from "./refusal.ts";
import { OptionsError } from "../options.ts";

import type { HostMessage } from "./protocol.ts";
import { type FastLane, type Reply, ScriptCallError, WorkerHost } from "./host.ts";
import { type Capability, describePermissions, type ScriptSpec, type WorkerPermissions } from "./spec.ts";
import { HTTPFlow } from "../../flow/flow.ts";
import { Client, Server } from "../../flow/connection.ts";
import type { ReplayFlow } from "./protocol.ts";
import { requestIn, responseIn } from "./wire.ts";
import type { OptionSpec } from "../options.ts";
import {
  applyFlowChanges,
  attachBodies,
  CLIENT_HOOKS,
  copyBytes,
  EMPTY_METADATA,
  FLOW_HOOKS,
  type FlowChanges,
  flowMessageText,
  LIFECYCLE_HOOKS,
  packFlow,
  SERVER_HOOKS,
  TCP_HOOKS,
  TRANSFER_MIN,
  wsOut,
} from "./wire.ts";
import { applyTcpChanges, packTcpFlow } from "./tcpwire.ts";
import { wsDeltaText } from "./wsflows.ts";
import type { Flow } from "../../flow/flow.ts";
import type { TCPFlow } from "../../flow/tcp.ts";
import { moduleGraph, sandboxReads } from "./imports.ts";
import { FileWatcher } from "./watcher.ts";

/**
 * Loading (module graph + top-level code) may take longer than a hook: at least this long. Under
 * `deno test` each new worker is also type-checked, which alone takes about a second.
 */
const LOAD_TIMEOUT_MS = 15_000;

/** Crashes within this window count towards giving up on restarts. */
const CRASH_WINDOW_MS = 10_000;
const MAX_CRASHES = 3;

/** The runtime's own modules (and the `mitmdeno` API a script imports): a script worker must read them. */
const RUNTIME_ENTRIES = [
  new URL("./worker.ts", import.meta.url).pathname,
  new URL("../../../mod.ts", import.meta.url).pathname,
];

/** Valid command paths: dotted words. */
const COMMAND_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Option declarations a sandboxed script may see: all but secrets. */
function visibleSpecs(specs: OptionSpec[]): OptionSpec[] {
  return specs.filter((s) => !s.secret);
}

/** A script loaded from a `-s` specification. */
export class Script {
  /** The addon name, as mitmproxy's `scriptmanager:<path>`. */
  readonly name: string;
  readonly spec: ScriptSpec;
  /** The file name, used to tag its log lines. */
  readonly shortName: string;
  permissions: WorkerPermissions;
  /** Grants beyond Deno's permissions (`--script-allow shutdown`, `replay`). */
  caps: Capability[] = [];

  readonly #master: Master;
  readonly #log: Logger;
  #host: WorkerHost | null = null;
  /** Resolves to the worker once a (re)load finished (null if it failed). */
  #ready: Promise<WorkerHost | null> = Promise.resolve(null);
  #loading = false;
  #loader: Loader | null = null;
  /** Options and commands this script declared (it may declare them again when it reloads). */
  #declared = new Set<string>();
  #commands = new Set<string>();
  #installed = new Set<string>();
  #sentSpecs = new Set<string>();
  #watcher: FileWatcher | null;
  #ops: Promise<void> = Promise.resolve();
  #crashes: number[] = [];
  #stopped = false;
  /**
   * The live TCP flows this script's hooks were handed, by id: the only ones it may inject into after a
   * hook returned. Closed ones are swept out as the map grows.
   */
  #tcpFlows = new Map<string, TCPFlow>();
  #sweepAt = 64;
  /** Flows an injection was refused for (warned once each). */
  #refusedInjections = new Set<string>();

  constructor(master: Master, spec: ScriptSpec, permissions: WorkerPermissions, watch = true) {
    this.#master = master;
    this.spec = spec;
    this.permissions = permissions;
    this.shortName = spec.path.slice(spec.path.lastIndexOf("/") + 1);
    this.name = `scriptmanager:${spec.path}`;
    this.#log = master.log.child(this.shortName);
    this.#watcher = watch ? new FileWatcher((changed) => this.#onFilesChanged(changed)) : null;
  }

  /** The running worker, if the script is loaded. */
  get host(): WorkerHost | null {
    return this.#host;
  }

  /** Milliseconds a hook may run. */
  get #timeoutMs(): number {
    const s = this.#master.options.has("script_timeout")
      ? this.#master.options.get<number>("script_timeout")
      : 5;
    return Math.max(1, s) * 1000;
  }

  /** The worker's heap limit in MiB. */
  get #heapMb(): number {
    return this.#master.options.has("script_memory_limit")
      ? this.#master.options.get<number>("script_memory_limit")
      : 512;
  }

  /** The worker's permissions: the script's grants plus read access to exactly the modules it loads. */
  async #workerPermissions(): Promise<WorkerPermissions> {
    const p = this.permissions;
    if (p === "inherit" || p.read === true) return p;
    const reads = new Set(Array.isArray(p.read) ? p.read : []);
    for (const entry of RUNTIME_ENTRIES) for (const f of await moduleGraph(entry)) reads.add(f);
    for (const f of await sandboxReads(this.spec.path, p.read)) reads.add(f);
    return { ...p, read: [...reads] };
  }

  // -------------------------------------------------------------------------------------------------
  // lifecycle (called by the ScriptLoader and the addon chain)

  /** Load the script: start its worker and run its `load`, declaring its options and commands. */
  async load(loader: Loader): Promise<void> {
    this.#loader = loader;
    await this.#start();
  }

  /** Options changed: send the new values; run the script's `configure`. */
  async configure(updated: Set<string>): Promise<void> {
    let host = this.#host;
    if (!host || host.dead || this.#loading) host = await this.#ready;
    if (!host || host.dead) return;
    const opts = this.#master.options;
    const specs = [];
    const values: Record<string, unknown> = {};
    const visible = new Set<string>();
    for (const name of updated) {
      const spec = opts.spec(name);
      if (!spec || spec.secret) continue;
      visible.add(name);
      if (!this.#sentSpecs.has(name)) {
        specs.push(spec);
        this.#sentSpecs.add(name);
      }
      values[name] = opts.get(name);
    }
    const run = host.hooks.has("configure");
    const r = await this.#call(
      host,
      {
        t: "configure",
        id: host.nextId(),
        updated: [...visible],
        specs,
        values,
        run,
      },
      [],
      "configure",
    );
    // the location is the script's, where it threw: not this file
    if (r?.optionsError) {
      throw new OptionsError(
        r.optionsErrorAt ? `${r.optionsError} (at ${r.optionsErrorAt})` : r.optionsError,
      );
    }
  }

  /** The proxy is up. */
  async running(): Promise<void> {
    await this.#event("running");
  }

  /** Shutdown or removal: `done` on the script, then stop its worker and the watcher. */
  async done(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    await this.#ops;
    const host = this.#host;
    if (host && !host.dead) {
      if (host.hooks.has("done")) await this.#event("done");
      host.terminate();
    }
    this.#host = null;
    this.#setHooks([]);
  }

  /** Reload from disk: `done` on the old instance, then `load`, `configure`, `running` on the new one. */
  reload(): Promise<void> {
    const release = this.#closeGate();
    return this.#serialize(() => this.#reload(true, release));
  }

  /** New calls wait from now on until the queued (re)load releases them. */
  #closeGate(): (h: WorkerHost | null) => void {
    let release!: (h: WorkerHost | null) => void;
    this.#loading = true;
    this.#ready = new Promise((r) => (release = r));
    return release;
  }

  /** Restart after permissions changed (same sequence as a reload). */
  restart(): Promise<void> {
    return this.reload();
  }

  // -------------------------------------------------------------------------------------------------

  #serialize(op: () => Promise<void>): Promise<void> {
    const next = this.#ops.then(op, op);
    this.#ops = next.catch(() => {});
    return next;
  }

  async #reload(callDone: boolean, release: (h: WorkerHost | null) => void): Promise<void> {
    if (this.#stopped) {
      release(null);
      return;
    }
    const old = this.#host;
    this.#loading = true;
    try {
      if (old && !old.dead) {
        // let in-flight hooks finish (bounded), then `done` on the old instance
        const deadline = performance.now() + this.#timeoutMs;
        while (old.pendingCount > 0 && performance.now() < deadline && !old.dead) {
          await new Promise((r) => setTimeout(r, 10));
        }
        if (callDone && old.hooks.has("done") && !old.dead) {
          await this.#call(old, { t: "event", id: old.nextId(), event: "done" }, [], "done");
        }
        old.terminate();
      }
      this.#host = null;
      const ok = await this.#start(release);
      // open the gate before configure: configure (and processDeferred's configure) wait on it
      this.#loading = false;
      release(this.#host);
      if (!ok) return;
      try {
        await this.#master.options.processDeferred();
        await this.configure(new Set(this.#master.options.specs().map((s) => s.name)));
        if (this.#master.isRunning) await this.running();
      } catch (e) {
        this.#log.error(`error in script ${this.spec.path}: ${describeError(e)}`);
      }
    } finally {
      this.#loading = false;
      release(this.#host);
    }
  }

  /** Start a worker and run `load`. Returns whether the script loaded. */
  async #start(release?: (h: WorkerHost | null) => void): Promise<boolean> {
    let done = release;
    if (!done) {
      this.#loading = true;
      this.#ready = new Promise((r) => (done = r));
    }
    const finish = (h: WorkerHost | null) => {
      if (!release) {
        this.#loading = false;
        done!(h);
      }
    };
    const path = this.spec.path;
    const grants = this.caps.length ? `; grants: ${this.caps.join(", ")}` : "";
    this.#log.info(`Loading script ${path} (permissions: ${describePermissions(this.permissions)}${grants})`);
    let permissions: WorkerPermissions;
    try {
      permissions = await this.#workerPermissions();
    } catch (e) {
      this.#log.error(`error in script ${path}: ${(e as Error).message}`);
      this.#setHooks([]);
      this.#updateWatch();
      finish(null);
      return false;
    }
    const host = new WorkerHost(path, this.spec.args, permissions, {
      log: (level: LogLevel, msg: string) => this.#log.log(level, msg),
      setOptions: (values) => this.#setOptions(values),
      crashed: (msg) => this.#onCrash(host, msg),
      act: (action, flows) => this.#act(action, flows),
      inject: (id, toClient, content) => this.#inject(id, toClient, content),
    }, {
      caps: [...this.caps],
      loadTimeoutMs: Math.max(this.#timeoutMs, LOAD_TIMEOUT_MS),
      busyTimeoutMs: this.#timeoutMs,
      heapMb: this.#heapMb,
    });
    this.#sentSpecs = new Set();
    this.#updateWatch();
    try {
      await host.ready;
    } catch (e) {
      this.#log.error(`error in script ${path}: ${(e as Error).message}`);
      this.#setHooks([]);
      finish(null);
      return false;
    }
    const never = host.unsupported.filter((h) => UNFIRED_MITMPROXY_EVENTS.includes(h));
    if (never.length) {
      this.#log.warn(`mitmdeno has no DNS or UDP mode yet: these hooks never fire: ${never.join(", ")}`);
    }
    const unavailable = host.unsupported.filter((h) => !UNFIRED_MITMPROXY_EVENTS.includes(h));
    if (unavailable.length) {
      this.#log.warn(`hooks not available to sandboxed scripts (ignored): ${unavailable.join(", ")}`);
    }
    if (this.#master.options.has("script_typecheck") && this.#master.options.get("script_typecheck")) {
      this.#reportTypeErrors(path);
    }
    const opts = this.#master.options;
    const specs = visibleSpecs(opts.specs());
    const values: Record<string, unknown> = {};
    for (const s of specs) {
      this.#sentSpecs.add(s.name);
      values[s.name] = opts.get(s.name);
    }
    const r = await this.#call(
      host,
      { t: "load", id: host.nextId(), specs, values, own: [...this.#declared] },
      [],
      "load",
    );
    if (!r || host.dead) {
      host.terminate();
      this.#setHooks([]);
      finish(null);
      return false;
    }
    this.#host = host;
    const loader = this.#loader ?? this.#master.addons.loader(this);
    const declared = r.declared && typeof r.declared === "object" ? r.declared : undefined;
    for (const spec of Array.isArray(declared?.options) ? declared.options : []) {
      const name = String(spec?.name);
      // an option of the proxy's or another addon's is not the script's to declare (or change)
      if (opts.has(name) && !this.#declared.has(name)) {
        this.#log.error(
          `error in script ${path}: option ${name} belongs to ${opts.owner(name) ?? "the proxy"}; ` +
            "a sandboxed script may declare only new options",
        );
        continue;
      }
      try {
        loader.addOption(name, spec.type, spec.default, String(spec.help ?? ""), spec.choices);
        this.#declared.add(name);
        this.#sentSpecs.add(name);
      } catch (e) {
        this.#log.error(`error in script ${path}: option ${name}: ${describeError(e)}`);
      }
    }
    for (const c of Array.isArray(declared?.commands) ? declared.commands : []) {
      const cpath = String(c?.path);
      if (!COMMAND_PATH.test(cpath)) {
        this.#log.error(`error in script ${path}: invalid command name ${JSON.stringify(cpath)}`);
        continue;
      }
      if (this.#master.commands.has(cpath) && !this.#commands.has(cpath)) {
        this.#log.error(
          `error in script ${path}: command ${cpath} exists already; a sandboxed script may declare only new commands`,
        );
        continue;
      }
      this.#commands.add(cpath);
      loader.addCommand(cpath, (...args: unknown[]) => this.#command(cpath, args), String(c?.help ?? ""));
    }
    this.#setHooks([...host.hooks]);
    finish(host);
    return true;
  }

  #updateWatch(): void {
    if (!this.#watcher) return;
    moduleGraph(this.spec.path).then((files) => this.#watcher?.setFiles(files), () => {});
  }

  /** Expose exactly the hooks the script handles as methods (lifecycle hooks are always methods). */
  #setHooks(hooks: string[]): void {
    const self = this as unknown as Record<string, unknown>;
    for (const h of this.#installed) delete self[h];
    this.#installed.clear();
    for (const h of hooks) {
      if (LIFECYCLE_HOOKS.has(h)) continue;
      self[h] = (arg: unknown) => this.#invoke(h, arg);
      this.#installed.add(h);
    }
    this.#master.addons.invalidate();
  }

  /** Type-check in the background; the script runs regardless (Deno strips types). */
  #reportTypeErrors(path: string): void {
    typecheckScript(path).then((diags) => {
      for (const d of diags) this.#log.warn(`type error in script ${path}: ${d.location}: ${d.message}`);
    }).catch((e) => this.#log.debug(`type check of ${path} failed: ${describeError(e)}`));
  }

  async #current(): Promise<WorkerHost | null> {
    const host = this.#host;
    if (host && !host.dead && !this.#loading) return host;
    // wait for the (re)load in progress, but never forever
    let timer: ReturnType<typeof setTimeout> | undefined;
    const giveUp = new Promise<null>((
      r,
    ) => (timer = setTimeout(() => r(null), Math.max(this.#timeoutMs * 2, 10_000))));
    try {
      return await Promise.race([this.#ready, giveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #event(event: string): Promise<void> {
    const host = await this.#current();
    if (!host || !host.hooks.has(event)) return;
    await this.#call(host, { t: "event", id: host.nextId(), event }, [], event);
  }

  #invoke(event: string, arg: unknown): Promise<void> | undefined {
    const host = this.#host;
    if (!host || host.dead || this.#loading) return this.#invokeWhenReady(event, arg);
    if (!host.hooks.has(event)) return;
    // the hot path: a flow hook on a live worker, one promise from the call to the changes applied
    if (FLOW_HOOKS.has(event) || TCP_HOOKS.has(event)) return this.#flowHook(host, event, arg as Flow);
    return this.#invokeOn(host, event, arg);
  }

  async #invokeWhenReady(event: string, arg: unknown): Promise<void> {
    const host = await this.#current();
    if (!host || !host.hooks.has(event)) return;
    if (FLOW_HOOKS.has(event) || TCP_HOOKS.has(event)) await this.#flowHook(host, event, arg as Flow);
    else await this.#invokeOn(host, event, arg);
  }

  /**
   * Run flow hook `event` in the worker and apply what it changed. The TCP hooks take TCP flows, the
   * others HTTP flows: a flow of another type is not sent (the script never sees it).
   */
  #flowHook(host: WorkerHost, event: string, flow: Flow): Promise<void> | undefined {
    const tcp = TCP_HOOKS.has(event);
    if (flow?.type !== (tcp ? "tcp" : "http")) return;
    if (tcp) this.#handed(flow as TCPFlow, event);
    const wsMessage = !tcp && event === "websocket_message" && !!(flow as HTTPFlow).websocket;
    if (wsMessage) {
      // the worker may hold the flow already: then only the new message crosses (see wsflows.ts)
      const key = host.wsFlows.lookup(flow as HTTPFlow);
      if (key !== null) return this.#wsDelta(host, event, flow as HTTPFlow, key);
    }
    const refs = host.conns;
    const transfer: Transferable[] = [];
    const m = { t: "flow", id: host.nextId(), event } as Extract<HostMessage, { t: "flow" }>;
    const p = tcp
      ? packTcpFlow(flow as TCPFlow, event, refs, m, transfer, false)
      : packFlow(flow as HTTPFlow, event, refs, m, transfer, false);
    refs.flushDrops(m);
    const { packed } = p;
    let key: number | undefined;
    if (!tcp) {
      if (wsMessage && !packed.md) key = m.k = host.wsFlows.add(flow as HTTPFlow, p.wire!);
      else if (event === "websocket_end") host.wsFlows.forget(flow as HTTPFlow);
      const kd = host.wsFlows.takeDrops();
      if (kd) m.kd = kd;
    }
    // through the ring when possible, else by postMessage with the bodies in a buffer
    const slow = () => {
      attachBodies(p, transfer);
      m.json = packed.json;
      if (packed.md) m.md = packed.md;
      if (packed.buf) m.buf = packed.buf;
    };
    const text = flowMessageText(m.id, event, packed, m, m);
    const fast = text === null ? undefined : { text, a: p.reqBody, b: p.respBody, slow };
    if (!fast) slow();
    return host.call(m, transfer, `the ${event} hook`, this.#timeoutMs, fast).then((r) => {
      if (key !== undefined) host.wsFlows.settle(flow as HTTPFlow, key, r.kept === true);
      const c = r.changes;
      if (!c) return;
      if (tcp) this.#apply(event, () => applyTcpChanges(flow as TCPFlow, c, p.metadata, refs, p.first), c);
      else this.#apply(event, () => applyFlowChanges(flow as HTTPFlow, c, p.metadata, refs), c);
    }, (e) => void this.#callFailed(host, e, event));
  }

  /**
   * A WebSocket hook on a flow the worker keeps under `key`: only the WebSocket part crosses (the new
   * message, its content as the body), see wsflows.ts.
   */
  #wsDelta(host: WorkerHost, event: string, flow: HTTPFlow, key: number): Promise<void> {
    const refs = host.conns;
    const m = { t: "wsm", id: host.nextId(), event } as Extract<HostMessage, { t: "wsm" }>;
    const { ws, body } = wsOut(flow.websocket!, event);
    m.d = { k: key, c: refs.ref(flow.clientConn, m), s: refs.ref(flow.serverConn, m), ws };
    refs.flushDrops(m);
    const kd = host.wsFlows.takeDrops();
    if (kd) m.kd = kd;
    const transfer: Transferable[] = [];
    const slow = () => {
      if (!body?.byteLength) return;
      const buf = m.buf = copyBytes(body);
      if (buf.byteLength >= TRANSFER_MIN) transfer.push(buf);
    };
    // connection records to sync need structured clone
    const fast = m.conns || m.drop
      ? undefined
      : { text: wsDeltaText(m.id, event, m.d, m.kd), a: null, b: body, slow };
    if (!fast) slow();
    return host.call(m, transfer, `the ${event} hook`, this.#timeoutMs, fast).then((r) => {
      host.wsFlows.settle(flow, key, r.kept === true);
      const c = r.changes;
      if (c) this.#apply(event, () => applyFlowChanges(flow, c, EMPTY_METADATA, refs), c);
    }, (e) => void this.#callFailed(host, e, event));
  }

  /** Apply a hook's changes with `apply`; refused ones are logged (the flow goes on unchanged). */
  #apply(event: string, apply: () => void, c: FlowChanges): void {
    try {
      apply();
    } catch (e) {
      this.#log.error(
        `${event}: the script's changes were refused (the flow goes on unchanged): ${describeError(e)}`,
      );
      return;
    }
    for (const w of c.warnings ?? []) this.#log.warn(`${event}: ${w}`);
  }

  async #invokeOn(host: WorkerHost, event: string, arg: unknown): Promise<void> {
    const refs = host.conns;
    if (event === "update") {
      const flows = (arg as HTTPFlow[]).filter((f) => f.type === "http");
      if (!flows.length) return;
      const m = { t: "update", id: host.nextId(), flows: [] } as Extract<HostMessage, { t: "update" }>;
      for (const f of flows) m.flows.push(packFlow(f, "update", refs, m, []).packed);
      refs.flushDrops(m);
      await this.#call(host, m, [], event);
    } else if (CLIENT_HOOKS.has(event)) {
      const client = arg as Client;
      const m = { t: "conn", id: host.nextId(), event } as Extract<HostMessage, { t: "conn" }>;
      m.client = refs.ref(client, m);
      refs.flushDrops(m);
      const r = await this.#call(host, m, [], event);
      refs.apply(client, r?.conn?.client);
    } else if (SERVER_HOOKS.has(event)) {
      const data = arg as { server: Server; client: Client };
      const m = { t: "conn", id: host.nextId(), event } as Extract<HostMessage, { t: "conn" }>;
      m.client = refs.ref(data.client, m);
      m.server = refs.ref(data.server, m);
      refs.flushDrops(m);
      const r = await this.#call(host, m, [], event);
      refs.apply(data.client, r?.conn?.client);
      refs.apply(data.server, r?.conn?.server);
    }
  }

  /** A TCP hook hands `flow` to the script: remember it while it is open (see {@link #inject}). */
  #handed(flow: TCPFlow, event: string): void {
    if (event === "tcp_end" || event === "tcp_error" || !flow.live || !flow.injectable) {
      this.#tcpFlows.delete(flow.id);
      return;
    }
    if (this.#tcpFlows.has(flow.id)) return;
    this.#tcpFlows.set(flow.id, flow);
    if (this.#tcpFlows.size < this.#sweepAt) return;
    for (const [id, f] of this.#tcpFlows) if (!f.injectable) this.#tcpFlows.delete(id);
    this.#sweepAt = Math.max(64, this.#tcpFlows.size * 2);
  }

  /**
   * The script injects into a TCP flow outside a hook: only into one it was handed that is still open
   * (the worker names the flow by id; any other id is refused, with one warning per id).
   */
  #inject(id: string, toClient: boolean, content: Uint8Array): void {
    const flow = this.#tcpFlows.get(id);
    if (flow?.injectable && flow.inject(toClient, content)) return;
    this.#tcpFlows.delete(id);
    if (this.#refusedInjections.has(id)) return;
    if (this.#refusedInjections.size >= 1000) this.#refusedInjections.clear();
    this.#refusedInjections.add(id);
    this.#log.warn(
      `inject.tcp: flow ${JSON.stringify(id.slice(0, 64))} is not live (or not one this script hooks)`,
    );
  }

  /** Call the worker; a timeout restarts it. Resolves to undefined when the call did not complete. */
  async #call(
    host: WorkerHost,
    m: HostMessage & { id: number },
    transfer: Transferable[],
    what: string,
    fast?: FastLane,
  ): Promise<Reply | undefined> {
    try {
      return await host.call(m, transfer, `the ${what} hook`, this.#timeoutMs, fast);
    } catch (e) {
      return this.#callFailed(host, e, what);
    }
  }

  /** A call did not complete: a timeout restarts the worker, anything else is logged. */
  #callFailed(host: WorkerHost, e: unknown, what: string): undefined {
    if (e instanceof ScriptCallError) {
      if (e.reason === "timeout") this.#onTimeout(host, e.message, what);
      return undefined;
    }
    this.#log.error(`${what}: ${describeError(e)}`);
    return undefined;
  }

  async #command(path: string, args: unknown[]): Promise<unknown> {
    const host = await this.#current();
    if (!host) throw new Error(`script ${this.shortName} is not loaded`);
    const r = await host.call(
      { t: "command", id: host.nextId(), path, args },
      [],
      `command ${path}`,
      this.#timeoutMs,
    );
    if (r.error) throw new Error(r.error);
    return r.value;
  }

  /**
   * The script acts beyond itself: only with the grant (the worker checks too, but it runs the script's code,
   * so this is the check that counts).
   */
  async #act(action: string, flows: ReplayFlow[]): Promise<string | undefined> {
    if (action !== "shutdown" && action !== "replay") return `unknown action ${action}`;
    if (!this.caps.includes(action)) return refusal(action, this.shortName);
    if (action === "shutdown") {
      this.#log.info("shutting down (the script has --script-allow shutdown)");
      this.#master.shutdown();
      return undefined;
    }
    const parsed: HTTPFlow[] = [];
    for (const w of flows.slice(0, 1000)) {
      try {
        const body = (b: unknown) => (b instanceof Uint8Array ? b : null);
        const f = new HTTPFlow(new Client(), new Server(), requestIn(w.request, body(w.reqBody)), false);
        if (w.response) f.response = responseIn(w.response, body(w.respBody));
        f.comment = String(w.comment ?? "");
        f.marked = String(w.marked ?? "");
        parsed.push(f);
      } catch (e) {
        return `replay.client: not a flow (${describeError(e)})`;
      }
    }
    try {
      await this.#master.commands.call("replay.client", parsed);
      return undefined;
    } catch (e) {
      return `replay.client: ${(e as Error).message}`;
    }
  }

  async #setOptions(values: Record<string, unknown>): Promise<string | undefined> {
    const foreign = Object.keys(values).filter((k) => !this.#declared.has(k));
    if (foreign.length) {
      return `a sandboxed script can change only the options it declared (not ${foreign.join(", ")})`;
    }
    try {
      await this.#master.options.update(values);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  #onTimeout(host: WorkerHost, message: string, what: string): void {
    if (host.dead || this.#stopped) return;
    if (host !== this.#host) {
      // still loading: the load fails
      this.#log.error(
        `error in script ${this.spec.path}: ${message}; it is loaded again when its file changes`,
      );
      host.terminate();
      return;
    }
    this.#log.error(
      `Script ${this.spec.path}: ${message}; restarting the script (the flow goes on unchanged)`,
    );
    host.terminate();
    if (what === "done") return;
    this.#restartAfterFailure();
  }

  #onCrash(host: WorkerHost, msg: string): void {
    if (this.#stopped) return;
    if (host !== this.#host) {
      // it crashed while loading: the load fails
      this.#log.error(
        `error in script ${this.spec.path}: worker crashed: ${msg}; it is loaded again when its file changes`,
      );
      return;
    }
    this.#log.error(`Script ${this.spec.path}: worker crashed: ${msg}; restarting the script`);
    this.#restartAfterFailure();
  }

  #restartAfterFailure(): void {
    const now = performance.now();
    this.#crashes = this.#crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    this.#crashes.push(now);
    if (this.#crashes.length > MAX_CRASHES) {
      this.#log.error(
        `Script ${this.spec.path} failed ${this.#crashes.length} times in ${CRASH_WINDOW_MS / 1000}s; ` +
          "not restarting it until the file changes",
      );
      this.#host = null;
      this.#setHooks([]);
      return;
    }
    const release = this.#closeGate();
    this.#serialize(() => this.#reload(false, release));
  }

  #onFilesChanged(changed: string[]): void {
    if (this.#stopped) return;
    try {
      Deno.statSync(this.spec.path);
    } catch {
      this.#log.info(`Removing script ${this.spec.path}`);
      const opts = this.#master.options;
      const scripts = opts.get<string[]>("scripts").filter((s) => s.trim() !== this.spec.spec);
      opts.update({ scripts }).catch((e) => this.#log.error(describeError(e)));
      return;
    }
    this.#crashes = [];
    const names = changed.map((c) => c.slice(c.lastIndexOf("/") + 1)).join(", ");
    this.#log.info(`Reloading script ${this.spec.path} (changed: ${names})`);
    this.reload().catch((e) => this.#log.error(describeError(e)));
  }
}
