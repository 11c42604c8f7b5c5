/**
 * The runtime inside a script worker (a `node:worker_threads` Worker started by sandbox.ts with the
 * script's permissions and a heap limit). Its entry module calls {@link boot}, which locks the worker down
 * (confine.ts), imports the script and serves the proxy over the MessagePort in `workerData`.
 *
 * Inside, the script sees the same API as a built-in addon: real HTTPFlow/Request/Response objects,
 * `ctx.log` (sent to the proxy's log, tagged with the script's name), `ctx.options` (kept in sync by the
 * proxy; `update`/`set` are forwarded and allowed only for options the script declared). Hooks of
 * different flows run concurrently: every request from the proxy is handled as soon as it arrives.
 *
 * Nothing here is trusted by the proxy: the script shares this isolate and can change anything in it, so
 * the proxy checks every message it gets (host.ts, script.ts).
 */
import { workerData } from "node:worker_threads";
import { ctx, type MasterLike } from "../ctx.ts";
import { describeError, errorLocation, Logger } from "../log.ts";
import {
  type Addon,
  AddonHalt,
  addonName,
  type CommandFn,
  EVENTS,
  type Loader,
  UNFIRED_MITMPROXY_EVENTS,
} from "../manager.ts";
import { Options, OptionsError, type OptionSpec } from "../options.ts";
import { setup } from "./prelude.ts";
import { confine } from "./confine.ts";
import {
  type Envelope,
  HEARTBEAT_MS,
  type HostMessage,
  type ReplayFlow,
  type Sequenced,
  type WorkerData,
  type WorkerMessage,
} from "./protocol.ts";
import { Outbox, unpackEnvelope } from "./outbox.ts";
import { refusal } from "./refusal.ts";
import { RingReader } from "./ring.ts";
import {
  connChanges,
  ConnTable,
  copyBytes,
  discardFlowChanges,
  type FlowChanges,
  flowDiff,
  type FlowSnapshot,
  isSupportedHook,
  requestOut,
  responseOut,
  unpackFlow,
  type WireFlow,
  wsChangesPlain,
  wsIn,
} from "./wire.ts";
import { WsFlowTable } from "./wsflows.ts";
import type { Client, Server } from "../../flow/connection.ts";
import { tcpFlowDiff, unpackTcpFlow, type WireTcpFlow } from "./tcpwire.ts";
import { type Flow, HTTPFlow } from "../../flow/flow.ts";
import { injectTcp, injectWebSocket } from "../../proxy/inject.ts";

// taken out of workerData (which boot() then empties, so the script cannot reach the port or the heartbeat)
const data = { ...(workerData as WorkerData) };
const port = data.port;

/**
 * Everything the worker sends goes through one outbox, so the replies (and log lines) of the hooks that
 * finish in the same turn cross in one message. Replies carrying values from script code (command
 * results, option values) go alone: they may not clone.
 */
const outbox = new Outbox<WorkerMessage>(
  (m, transfer) => port.postMessage(m, transfer),
  (m, e) => {
    if (m.t === "reply") port.postMessage({ t: "reply", id: m.id, error: describeError(e) });
    else if (m.t === "setoptions" || m.t === "act") {
      pendingHost.get(m.id)?.reject(e instanceof Error ? e : new Error(String(e)));
    } else throw e;
  },
);
const post = (m: WorkerMessage, transfer: Transferable[] = []) =>
  outbox.send(
    m,
    transfer,
    !(m.t === "setoptions" || m.t === "act" || (m.t === "reply" && m.value !== undefined)),
  );

/** Options mirror: values come from the proxy; changes made by the script are forwarded to it. */
class WorkerOptions extends Options {
  /** Apply values sent by the proxy (no configure: the proxy runs it). */
  applyFromHost(specs: OptionSpec[], values: Record<string, unknown>): void {
    for (const s of specs) if (!this.has(s.name)) this.add(s);
    for (const [k, v] of Object.entries(values)) {
      if (!this.has(k)) continue;
      hostValues.set(k, v);
    }
  }
  override get<T = unknown>(name: string): T {
    if (hostValues.has(name)) return hostValues.get(name) as T;
    return super.get<T>(name);
  }
  override async update(values: Record<string, unknown>): Promise<void> {
    const foreign = Object.keys(values).filter((k) => !declaredHere.has(k));
    if (foreign.length) {
      throw new OptionsError(
        `a sandboxed script can change only the options it declared (not ${foreign.join(", ")})`,
      );
    }
    const id = nextId++;
    const done = new Promise<void>((resolve, reject) => pendingHost.set(id, { resolve, reject }));
    post({ t: "setoptions", id, values });
    await done;
  }
}

const hostValues = new Map<string, unknown>();
/** The options this script declared (now or in an earlier instance). */
const declaredHere = new Set<string>();
const pendingHost = new Map<
  number,
  { resolve: () => void; reject: (e: Error) => void; error?: (msg: string) => Error }
>();
const caps = new Set(Array.isArray(data.caps) ? data.caps : []);

/** Ask the proxy to act beyond the script (it checks the grant again). */
function act(action: "shutdown" | "replay", flows: ReplayFlow[] = []): Promise<void> {
  if (!caps.has(action)) return Promise.reject(new Deno.errors.NotCapable(refusal(action, scriptName)));
  const id = nextId++;
  const done = new Promise<void>((resolve, reject) =>
    pendingHost.set(id, { resolve, reject, error: (msg) => new Deno.errors.NotCapable(msg) })
  );
  post({ t: "act", id, action, flows });
  return done;
}

/** Flows (an HTTPFlow or a list) for `replay.client`. */
function packForReplay(arg: unknown): ReplayFlow[] {
  const list = Array.isArray(arg) ? arg : [arg];
  return list.map((f) => {
    if (!(f instanceof HTTPFlow)) throw new TypeError("replay.client: expected HTTP flows");
    return {
      request: requestOut(f.request),
      reqBody: f.request.rawContent,
      response: f.response ? responseOut(f.response) : null,
      respBody: f.response?.rawContent ?? null,
      comment: f.comment,
      marked: f.marked,
    };
  });
}
let nextId = 1;

const options = new WorkerOptions();
// properties read the mirrored values
const proxiedOptions = new Proxy(options, {
  get(target, prop, receiver) {
    if (typeof prop === "string" && hostValues.has(prop)) return hostValues.get(prop);
    const v = Reflect.get(target, prop, receiver);
    return typeof v === "function" ? v.bind(target) : v;
  },
});

const scriptName = (() => {
  const p = new URL(data.url || "file:///script").pathname;
  return p.slice(p.lastIndexOf("/") + 1);
})();

const log = new Logger((e) => outbox.sendText(JSON.stringify({ t: "log", level: e.level, msg: e.msg })));
const commands = new Map<string, CommandFn>();

const master: MasterLike = {
  options: proxiedOptions,
  log,
  commands: {
    call(path: string, ...args: unknown[]): Promise<unknown> {
      const fn = commands.get(path);
      // the proxy's inject commands act on the flow the hook got: what they inject comes back with its changes
      if (!fn && path === "inject.tcp") {
        const [flow, toClient, message] = args as [Flow, boolean, Uint8Array | string];
        return Promise.resolve(injectTcp(log, flow, toClient, message));
      }
      if (!fn && path === "inject.websocket") {
        const [flow, toClient, message, isText] = args as [Flow, boolean, Uint8Array | string, boolean?];
        return Promise.resolve(injectWebSocket(log, flow, toClient, message, isText));
      }
      if (!fn && path === "replay.client") {
        try {
          return act("replay", packForReplay(args[0]));
        } catch (e) {
          return Promise.reject(e);
        }
      }
      if (!fn) {
        return Promise.reject(
          new Deno.errors.NotCapable(`command ${path}: a sandboxed script can call only its own commands`),
        );
      }
      return Promise.resolve(fn(...args));
    },
  },
  addons: { get: () => undefined },
  shutdown() {
    if (!caps.has("shutdown")) throw new Deno.errors.NotCapable(refusal("shutdown", scriptName));
    act("shutdown").catch((e) => log.error(describeError(e)));
  },
};
ctx.master = master;
ctx.options = proxiedOptions;
ctx.log = log;

// A stray error in script code (a timer callback, an unawaited promise) is logged, not fatal.
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  log.error(`Uncaught error: ${describeError(e.error ?? e.message)}`);
});
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  log.error(`Unhandled rejection: ${describeError(e.reason)}`);
});

/** The addon tree: root (module or start() result), then children depth first. */
function* walk(addons: Addon[]): Generator<Addon> {
  for (const a of addons) {
    yield a;
    const kids = a.addons;
    if (Array.isArray(kids) && kids.length) yield* walk(kids);
  }
}

let roots: Addon[] = [];
/** The connection records the proxy sent. */
const conns = new ConnTable();
/** The WebSocket flows kept between hooks (see wsflows.ts). */
const wsFlows = new WsFlowTable();
const names = new WeakMap<Addon, string>();

function nameOf(a: Addon): string {
  return names.get(a) ?? addonName(a);
}

function handlers(event: string): [Addon, (...args: unknown[]) => unknown][] {
  const out: [Addon, (...args: unknown[]) => unknown][] = [];
  for (const a of walk(roots)) {
    const fn = a[event];
    if (fn === undefined || fn === null) continue;
    if (typeof fn !== "function") {
      log.error(`Addon handler ${event} (${nameOf(a)}) not callable`);
      continue;
    }
    out.push([a, fn]);
  }
  return out;
}

/**
 * Run `event` on every addon of the script, in order; errors logged with their location. Returns false if
 * a handler threw (the flow then goes on unchanged: the proxy gets no changes).
 */
async function dispatch(event: string, args: unknown[]): Promise<boolean> {
  let ok = true;
  for (const [a, fn] of handlers(event)) {
    try {
      const r = fn.apply(a, args);
      if (r && typeof (r as Promise<unknown>).then === "function") await r;
    } catch (e) {
      if (e instanceof AddonHalt) return ok;
      if (e instanceof OptionsError && event === "configure") throw e;
      log.error(`Addon error in ${nameOf(a)}.${event}: ${describeError(e)}`);
      ok = false;
    }
  }
  return ok;
}

/** Whether `c` is JSON-safe: no bodies, metadata or connection fields (which may hold any cloneable). */
function isPlain(c: FlowChanges): boolean {
  return !c.metadata && !c.client && !c.server && !c.requestReplace && c.responseReplace === undefined &&
    c.request?.body === undefined && c.response?.body === undefined &&
    (c.ws === undefined || wsChangesPlain(c.ws)) && c.tcp === undefined;
}

/**
 * Reply to a flow hook: no or plain changes (headers, fields, text messages) as JSON text, much cheaper
 * than a clone of pairs; `kept`: the worker keeps the WebSocket flow (see wsflows.ts).
 */
function reply(id: number, changes: FlowChanges | null, transfer: ArrayBuffer[], kept: boolean): void {
  const k = kept ? `,"kept":true` : "";
  if (!changes) outbox.sendText(`{"t":"reply","id":${id}${k}}`);
  else if (isPlain(changes)) {
    outbox.sendText(`{"t":"reply","id":${id}${k},"changes":${JSON.stringify(changes)}}`);
  } else post({ t: "reply", id, changes, ...(kept ? { kept } : {}) }, transfer);
}

/**
 * After a WebSocket hook: keep the flow under `key` if the hook succeeded and changed nothing but messages
 * (the proxy's flow then equals this one but for them); else the proxy sends it whole next time.
 */
function keepWs(
  key: number,
  flow: HTTPFlow,
  snapshot: FlowSnapshot,
  ok: boolean,
  changes: FlowChanges | null,
): boolean {
  if (!ok || !flow.websocket) return false;
  if (changes) { for (const k in changes) if (k !== "ws" && k !== "warnings") return false; }
  wsFlows.keep(key, flow, snapshot);
  return true;
}

async function handle(m: HostMessage): Promise<void> {
  switch (m.t) {
    case "reply": {
      const p = pendingHost.get(m.id);
      if (!p) return;
      pendingHost.delete(m.id);
      if (m.error) p.reject(p.error ? p.error(m.error) : new OptionsError(m.error));
      else p.resolve();
      return;
    }
    case "load": {
      options.applyFromHost(m.specs, m.values);
      for (const name of m.own) declaredHere.add(name);
      const declared = { options: [] as OptionSpec[], commands: [] as { path: string; help: string }[] };
      for (const a of walk(roots)) {
        if (typeof a.load !== "function") continue;
        const loader: Loader = {
          addOption(name, type, defaultValue, help, choices) {
            if (options.has(name) && !declaredHere.has(name)) {
              throw new OptionsError(
                `option "${name}" belongs to the proxy or another addon: a sandboxed script may declare only new options`,
              );
            }
            const spec: OptionSpec = { name, type, default: defaultValue, help, choices };
            declaredHere.add(name);
            declared.options.push(spec);
            if (!options.has(name)) options.add(spec);
            if (!hostValues.has(name)) {
              hostValues.set(name, Array.isArray(defaultValue) ? [...defaultValue] : defaultValue);
            }
          },
          addCommand(path, fn, help) {
            commands.set(path, fn.bind(a));
            declared.commands.push({ path, help: help ?? "" });
          },
        };
        try {
          await a.load(loader);
        } catch (e) {
          log.error(`Addon error in ${nameOf(a)}.load: ${describeError(e)}`);
        }
      }
      post({ t: "reply", id: m.id, declared });
      return;
    }
    case "configure": {
      options.applyFromHost(m.specs, m.values);
      if (!m.run) return post({ t: "reply", id: m.id });
      try {
        await dispatch("configure", [new Set(m.updated)]);
        post({ t: "reply", id: m.id });
      } catch (e) {
        post({ t: "reply", id: m.id, optionsError: (e as Error).message, optionsErrorAt: errorLocation(e) });
      }
      return;
    }
    case "event":
      await dispatch(m.event, []);
      post({ t: "reply", id: m.id });
      return;
    case "flow": {
      conns.sync(m);
      const w: WireFlow | WireTcpFlow = m.f ??= JSON.parse(m.json!);
      const transfer: ArrayBuffer[] = [];
      let changes = null;
      if ("type" in w && w.type === "tcp") {
        const { flow, snapshot } = unpackTcpFlow(m, conns);
        const ok = await dispatch(m.event, [flow]);
        if (ok) changes = tcpFlowDiff(flow, snapshot, transfer);
        else {
          flow.setInjector(null);
          discardFlowChanges(snapshot);
        }
        // from now on (a timer, a later hook holding on to this object) injections go on their own
        if (w.live && w.tcp.injectable) {
          const id = w.id;
          flow.setInjector((msg) => {
            const content = copyBytes(msg.content);
            post({ t: "inject", flow: id, toClient: !msg.fromClient, content }, [content]);
          });
        }
      } else {
        wsFlows.drop(m.kd);
        const { flow, snapshot } = unpackFlow(m, conns);
        const ok = await dispatch(m.event, [flow]);
        if (ok) changes = flowDiff(flow, snapshot, transfer);
        else discardFlowChanges(snapshot);
        if (m.k !== undefined) {
          return reply(m.id, changes, transfer, keepWs(m.k, flow, snapshot, ok, changes));
        }
      }
      return reply(m.id, changes, transfer, false);
    }
    case "wsm": {
      conns.sync(m);
      wsFlows.drop(m.kd);
      const d = m.d;
      const cached = wsFlows.take(d.k);
      if (!cached) return post({ t: "reply", id: m.id, error: `no cached flow ${d.k}` });
      const { flow, snapshot } = cached;
      const client = conns.get(d.c);
      const server = conns.get(d.s);
      if (client !== snapshot.client) flow.clientConn = (snapshot.client = client).conn as Client;
      if (server !== snapshot.server) flow.serverConn = (snapshot.server = server).conn as Server;
      snapshot.ws = wsIn(flow, flow.live, d.ws, m.bytes ?? (m.buf ? new Uint8Array(m.buf) : undefined), 0);
      const transfer: ArrayBuffer[] = [];
      const ok = await dispatch(m.event, [flow]);
      let changes = null;
      if (ok) changes = flowDiff(flow, snapshot, transfer);
      else discardFlowChanges(snapshot);
      return reply(m.id, changes, transfer, keepWs(d.k, flow, snapshot, ok, changes));
    }
    case "update": {
      conns.sync(m);
      await dispatch("update", [m.flows.map((p) => unpackFlow(p, conns).flow)]);
      post({ t: "reply", id: m.id });
      return;
    }
    case "conn": {
      conns.sync(m);
      const client = conns.get(m.client);
      if (m.server !== undefined) {
        const server = conns.get(m.server);
        await dispatch(m.event, [{ client: client.conn, server: server.conn }]);
        post({ t: "reply", id: m.id, conn: { client: connChanges(client), server: connChanges(server) } });
      } else {
        await dispatch(m.event, [client.conn]);
        post({ t: "reply", id: m.id, conn: { client: connChanges(client) } });
      }
      return;
    }
    case "command": {
      const fn = commands.get(m.path);
      try {
        if (!fn) throw new Error(`Unknown command: ${m.path}`);
        const value = await fn(...m.args);
        post({ t: "reply", id: m.id, value });
      } catch (e) {
        post({ t: "reply", id: m.id, error: describeError(e) });
      }
      return;
    }
  }
}

/** Hold a Web Lock for the worker's life: then terminating it interrupts even a busy loop (see below). */
function holdLock(): Promise<void> {
  // Deno 2.9.6 terminates a node Worker's isolate at once (V8 TerminateExecution) only when the worker
  // holds a Web Lock; otherwise termination waits for the event loop, which a busy loop never reaches.
  return new Promise((granted) => {
    const locks = (navigator as unknown as {
      locks: { request(name: string, fn: () => Promise<never>): Promise<unknown> };
    }).locks;
    locks.request(`mitmdeno-script-${crypto.randomUUID()}`, () => {
      granted();
      return new Promise<never>(() => {});
    });
  });
}

/**
 * The worker's entry: argv, the lock, confinement and the heartbeat, then import the script (its
 * top-level code runs confined) and serve the proxy.
 */
export async function boot(): Promise<void> {
  for (const k of Object.keys(workerData as object)) delete (workerData as Record<string, unknown>)[k];
  setup({ url: data.url, args: data.args });
  await holdLock();
  startHeartbeat();
  confine((level, msg) => log.log(level, msg));
  let mod: Record<string, unknown>;
  try {
    mod = await import(data.url);
  } catch (e) {
    port.postMessage({ t: "loaderror", msg: describeError(e) });
    return;
  }
  await run(mod);
}

/**
 * Tick the heartbeat (word 0) every {@link HEARTBEAT_MS} and check the worker's memory: above the limit,
 * raise the flag (word 1, with the MiB used in word 2) and stop ticking; the proxy then ends the worker.
 * The functions used are taken now, before the script can replace them.
 *
 * The check backs up V8's heap limit: Deno 2.9.6 stops code that reaches the limit, but when that code
 * ran from a microtask or a message handler it cancels the stop, raises the limit to twice as much and
 * reports nothing, so a script allocating from such callbacks would grow without bound. It also counts
 * memory outside the JS heap (ArrayBuffers).
 */
function startHeartbeat(): void {
  const beat = new Int32Array(data.beat);
  const add = Atomics.add;
  const store = Atomics.store;
  const usage = Deno.memoryUsage;
  const every = setInterval;
  const limit = data.heapMb * 1024 * 1024;
  const timer = every(() => {
    const m = usage();
    const used = m.heapUsed + m.external;
    if (used > limit) {
      store(beat, 2, Math.round(used / 1024 / 1024));
      store(beat, 1, 1);
      clearInterval(timer);
      return;
    }
    add(beat, 0, 1);
  }, HEARTBEAT_MS);
}

/** Start serving the proxy with the script module `mod`. */
async function run(mod: Record<string, unknown>): Promise<void> {
  let root: Addon = mod;
  if (typeof mod.start === "function") {
    // the old API: start() returns the addon object that replaces the module
    const r = await (mod.start as () => unknown)();
    if (r && typeof r === "object") root = r as Addon;
  }
  names.set(root, scriptName);
  roots = [root];
  const hooks = new Set<string>();
  const unsupported = new Set<string>();
  for (const a of walk(roots)) {
    for (const ev of [...EVENTS, ...UNFIRED_MITMPROXY_EVENTS]) {
      if (a[ev] === undefined || a[ev] === null) continue;
      if (isSupportedHook(ev)) hooks.add(ev);
      else unsupported.add(ev);
    }
  }
  const receive = (m: HostMessage) => {
    handle(m).catch((err) => {
      log.error(`Internal error in the script runtime: ${describeError(err)}`);
      if (typeof m.id === "number" && m.t !== "reply") post({ t: "reply", id: m.id, error: String(err) });
    });
  };
  // The proxy's messages are handled in their sequence, whichever way they came: postMessage or the ring.
  const early = new Map<number, HostMessage>();
  let expected = 1;
  let reader: RingReader | null = null;
  const pump = () => {
    for (;;) {
      const m = early.get(expected);
      if (m !== undefined) {
        early.delete(expected++);
        receive(m);
      } else if (reader !== null && reader.nextSeq() === expected) {
        const { text, body } = reader.read();
        expected++;
        const fm = JSON.parse(text) as Extract<HostMessage, { t: "flow" }>;
        fm.bytes = body;
        receive(fm);
      } else return;
    }
  };
  const listen = async (r: RingReader) => {
    for (;;) {
      pump();
      await r.wait(expected);
    }
  };
  port.onmessage = (e: MessageEvent<Envelope<Sequenced<HostMessage>>>) => {
    for (const m of unpackEnvelope(e.data)) {
      if (m.t === "ring") {
        reader = new RingReader(m.sab);
        void listen(reader);
      } else if (m.q === undefined) receive(m);
      else early.set(m.q, m);
    }
    pump();
  };
  post({ t: "ready", hooks: [...hooks], unsupported: [...unsupported] });
}
