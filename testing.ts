/**
 * The addon test kit (mitmproxy's `tflow` and `taddons`), for `deno test` with plain `node:assert`.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { context, tflow } from "mitmdeno/testing";
 * import { AntiCache } from "./addons/anticache.ts";
 *
 * Deno.test("anticache removes conditional headers", async () => {
 *   const addon = new AntiCache();
 *   await using tctx = await context(addon);
 *   const f = tflow();
 *   f.request.headers.set("if-modified-since", "test");
 *   f.request.headers.set("if-none-match", "test");
 *   await tctx.configure(addon, { anticache: true });
 *   await tctx.cycle(addon, f);
 *   assert.equal(f.request.headers.has("if-modified-since"), false);
 *   assert.equal(f.request.headers.has("if-none-match"), false);
 * });
 * ```
 * @module
 */
import { AssertionError } from "node:assert";
import { Master } from "./lib/master.ts";
import { type Addon, AddonHalt, addonName, type EventName, EVENTS } from "./lib/addons/manager.ts";
import { ScriptLoader } from "./lib/addons/script/loader.ts";
import type { Options } from "./lib/addons/options.ts";
import type { LogEntry, Logger, LogLevel } from "./lib/addons/log.ts";
import { ctx, type MasterLike } from "./lib/addons/ctx.ts";
import { type Flow, FlowError, HTTPFlow } from "./lib/flow/flow.ts";
import { Client, Server } from "./lib/flow/connection.ts";
import { Request, type RequestInit, Response, type ResponseInit } from "./lib/http/message.ts";
import { WebSocketData, WebSocketMessage } from "./lib/flow/websocket.ts";
import { TCPFlow, TCPMessage } from "./lib/flow/tcp.ts";

export {
  AddonHalt,
  FlowError,
  HTTPFlow,
  Master,
  Request,
  Response,
  TCPFlow,
  TCPMessage,
  WebSocketData,
  WebSocketMessage,
};
export type { Addon, LogEntry, LogLevel };
export type { AddonManager, Handler, ManagerHost } from "./lib/addons/manager.ts";
export type { Command, CommandManager } from "./lib/addons/commands.ts";

// ---------------------------------------------------------------------------------------------------------
// Flow factories (mitmproxy's test/tflow.py), with mitmproxy's default values.

/**
 * A request like mitmproxy's `treq()`: `GET http://address:22/path`, HTTP/1.1, headers
 * `header: qvalue` and `content-length: 7`, body `content`, timestamps 946681200-946681201.
 * Any field can be overridden.
 */
export function treq(overrides: Partial<RequestInit> = {}): Request {
  return new Request({
    method: "GET",
    scheme: "http",
    host: "address",
    port: 22,
    path: "/path",
    authority: "",
    httpVersion: "HTTP/1.1",
    headers: [["header", "qvalue"], ["content-length", "7"]],
    content: "content",
    timestampStart: 946681200,
    timestampEnd: 946681201,
    ...overrides,
  });
}

/**
 * A response like mitmproxy's `tresp()`: `HTTP/1.1 200 OK`, headers `header-response: svalue` and
 * `content-length: 7`, body `message`, timestamps 946681202-946681203.
 */
export function tresp(overrides: Partial<ResponseInit> = {}): Response {
  return new Response({
    statusCode: 200,
    reason: "OK",
    httpVersion: "HTTP/1.1",
    headers: [["header-response", "svalue"], ["content-length", "7"]],
    content: "message",
    timestampStart: 946681202,
    timestampEnd: 946681203,
    ...overrides,
  });
}

/** A flow error like mitmproxy's `terr()`: `FlowError("error", 946681207)`. */
export function terr(msg = "error"): FlowError {
  return new FlowError(msg, 946681207);
}

/**
 * A client connection like mitmproxy's `tclient_conn()`: peername 127.0.0.1:22, sockname ("", 0),
 * sni "address", cipher "cipher", alpn "http/1.1", TLSv1.2, mode regular, timestamps 946681200..946681206.
 */
export function tclientConn(overrides: Partial<Client> = {}): Client {
  const c = new Client({ peername: ["127.0.0.1", 22], sockname: ["", 0], proxyMode: "regular" });
  c.timestampStart = 946681200;
  c.timestampTlsSetup = 946681201;
  c.timestampEnd = 946681206;
  c.sni = "address";
  c.cipher = "cipher";
  c.alpn = "http/1.1";
  c.tlsVersion = "TLSv1.2";
  c.tls = false;
  return Object.assign(c, overrides);
}

/**
 * A server connection like mitmproxy's `tserver_conn()`: address address:22, peername 192.168.0.1:22,
 * sockname address:22, sni "address", TLSv1.2, timestamps 946681202..946681205.
 */
export function tserverConn(overrides: Partial<Server> = {}): Server {
  const s = new Server(["address", 22]);
  s.peername = ["192.168.0.1", 22];
  s.sockname = ["address", 22];
  s.timestampStart = 946681202;
  s.timestampTcpSetup = 946681203;
  s.timestampTlsSetup = 946681204;
  s.timestampEnd = 946681205;
  s.sni = "address";
  s.tlsVersion = "TLSv1.2";
  s.tls = false;
  return Object.assign(s, overrides);
}

/** Options of {@link tflow}. */
export interface TFlowOptions {
  /** The client connection to use (default: {@link tclientConn}). */
  clientConn?: Client;
  /** The server connection to use (default: {@link tserverConn}). */
  serverConn?: Server;
  /** The request (default {@link treq}()). */
  req?: Request;
  /** `true` for {@link tresp}(), or a response. */
  resp?: boolean | Response;
  /** `true` for {@link terr}(), or an error. */
  err?: boolean | FlowError;
  /** `true` for {@link twebsocket}() (mitmproxy's `tflow(ws=True)`), or WebSocket data. */
  ws?: boolean | WebSocketData;
  /** Whether the flow is live (default true). */
  live?: boolean;
}

/**
 * An HTTP flow like mitmproxy's `tflow()`: {@link treq}, optionally {@link tresp} / {@link terr}.
 * @example tflow({ resp: true }) // a flow with a 200 response
 */
export function tflow(opts: TFlowOptions = {}): HTTPFlow {
  const f = new HTTPFlow(
    opts.clientConn ?? tclientConn(),
    opts.serverConn ?? tserverConn(),
    opts.req ?? treq(),
    opts.live ?? true,
  );
  if (opts.resp) f.response = opts.resp === true ? tresp() : opts.resp;
  if (opts.err) f.error = opts.err === true ? terr() : opts.err;
  if (opts.ws) f.websocket = opts.ws === true ? twebsocket() : opts.ws;
  return f;
}

/** A 101 response to a WebSocket handshake. */
function twebsocketHandshake(): Response {
  return tresp({
    statusCode: 101,
    reason: "Switching Protocols",
    headers: [["upgrade", "websocket"], ["connection", "upgrade"], [
      "sec-websocket-accept",
      "HSmrc0sMlYUkAGmm5OPpG2HaGWk=",
    ]],
    content: "",
  });
}

/**
 * WebSocket data like mitmproxy's `twebsocket()`: a binary and a text message from the client, a text
 * message from the server, closed by the server with 1000 "Close Reason".
 */
export function twebsocket(messages = true): WebSocketData {
  const ws = new WebSocketData();
  if (messages) {
    ws.messages = [
      new WebSocketMessage(2, true, "hello binary", 946681203),
      new WebSocketMessage(1, true, "hello text", 946681204),
      new WebSocketMessage(1, false, "it's me", 946681205),
    ];
  }
  ws.closedByClient = false;
  ws.closeCode = 1000;
  ws.closeReason = "Close Reason";
  ws.timestampEnd = 946681205;
  return ws;
}

/**
 * A TCP flow like mitmproxy's `ttcpflow()`: "hello" from the client, "it's me" from the server, optionally
 * an error.
 */
export function ttcpflow(
  opts: { err?: boolean | FlowError; messages?: boolean; live?: boolean } = {},
): TCPFlow {
  const f = new TCPFlow(tclientConn(), tserverConn(), opts.live ?? true);
  if (opts.messages ?? true) {
    f.messages = [new TCPMessage(true, "hello", 946681204), new TCPMessage(false, "it's me", 946681205)];
  }
  if (opts.err) f.error = opts.err === true ? terr() : opts.err;
  return f;
}

/** A WebSocket flow: a handshake request and 101 response, and {@link twebsocket}() data. */
export function twebsocketflow(opts: { messages?: boolean; live?: boolean } = {}): HTTPFlow {
  const f = tflow({ ws: twebsocket(opts.messages ?? true), resp: twebsocketHandshake(), live: opts.live });
  const h = f.request.headers;
  h.set("upgrade", "websocket");
  h.set("connection", "upgrade");
  h.set("sec-websocket-version", "13");
  h.set("sec-websocket-key", "1234");
  return f;
}

// ---------------------------------------------------------------------------------------------------------
// The addon test context (mitmproxy's test/taddons.py).

/** The events a flow goes through when replayed (mitmproxy's `eventsequence.iterate`). */
export function eventSequence(flow: Flow): string[] {
  if (flow instanceof TCPFlow) {
    return ["tcp_start", ...flow.messages.map(() => "tcp_message"), flow.error ? "tcp_error" : "tcp_end"];
  }
  if (!(flow instanceof HTTPFlow)) {
    throw new Error(`eventSequence: ${flow.type} flows are not implemented in mitmdeno yet`);
  }
  const evs = ["requestheaders", "request"];
  if (flow.response) evs.push("responseheaders", "response");
  if (flow.websocket) {
    evs.push("websocket_start");
    for (let i = 0; i < flow.websocket.messages.length; i++) evs.push("websocket_message");
    evs.push("websocket_end");
  } else if (flow.error) evs.push("error");
  return evs;
}

/** An addon test context. Create it with {@link context}; dispose of it with `await using`. */
export interface TestContext extends AsyncDisposable {
  /** A real {@link Master} (no proxy server). `ctx.master` points to it while the context is open. */
  readonly master: Master;
  /** The master's options. */
  readonly options: Options;
  /** Every log entry so far (level, msg, source). */
  readonly logs: LogEntry[];
  /** The logger addons see as `ctx.log`. */
  readonly log: Logger;
  /**
   * Set options as `mitmdeno --set` would, running the `configure` hook. If `addon` is not known yet it
   * is registered first (its `load` runs, so its options exist) and also gets `configure`, without being
   * added to the chain. With no values, `addon.configure(new Set())` is called directly. An OptionsError
   * from any `configure` rolls the change back and is re-thrown.
   */
  configure(addon: Addon, values?: Record<string, unknown>): Promise<void>;
  /**
   * Run every event `flow` would see when replayed (see {@link eventSequence}) on `addon` and its
   * children only. Stops early if the flow gets intercepted. Handler errors propagate (the live proxy
   * logs them instead).
   */
  cycle(addon: Addon, flow: Flow): Promise<void>;
  /** Call one event handler of `addon` (and of its children), awaiting it; errors propagate. */
  invoke(addon: Addon, event: string, ...args: unknown[]): Promise<void>;
  /** Call a command by path (as registered with `loader.addCommand`), or call a function directly. */
  command(path: string | ((...args: any[]) => unknown), ...args: unknown[]): Promise<unknown>;
  /** Whether a log entry contains `text` (and has `level`, if given). */
  hasLog(text: string, level?: LogLevel): boolean;
  /** Wait until a log entry contains `text`; throws an AssertionError after `timeoutMs` (2000). */
  waitForLog(text: string, opts?: { level?: LogLevel; timeoutMs?: number }): Promise<LogEntry>;
  /** Forget the captured log entries. */
  clearLogs(): void;
  /**
   * Load a script in-process (no worker, no sandbox: fast, for unit tests) and add it to the chain:
   * module-level handlers and an `addons` list (or the old `start()` API) become one addon named after the
   * file; `load` and then `configure` (all options) run. Returns that addon, for {@link cycle}/{@link invoke}.
   */
  script(path: string | URL): Promise<Addon>;
  /**
   * Run a flow event through the whole addon chain, as the proxy does: built-in addons, in-process scripts
   * and the sandboxed scripts of {@link sandboxed} (their workers get the flow, the changes come back).
   */
  hook(event: EventName, flow: Flow): Promise<void>;
  /** Close the context: `done` on every addon, then the global `ctx` is restored. */
  close(): Promise<void>;
}

class TestContextImpl implements TestContext {
  readonly master: Master;
  readonly logs: LogEntry[] = [];
  readonly #extra: Addon[] = [];
  readonly #saved: { master: MasterLike | null; options: Options; log: Logger };
  #closed = false;

  constructor() {
    this.#saved = { master: ctx.master, options: ctx.options, log: ctx.log };
    this.master = new Master();
    this.master.exitOnStartupError = false;
    this.master.onLog((e) => this.logs.push(e));
    this.master.options.onChange = async (updated) => {
      await this.master.addons.trigger("configure", updated);
      for (const a of this.#extra) await this.master.addons.invokeAddon(a, "configure", updated);
    };
  }

  get options(): Options {
    return this.master.options;
  }

  get log(): Logger {
    return this.master.log;
  }

  #known(addon: Addon): boolean {
    for (const a of this.master.addons.walk()) if (a === addon) return true;
    return this.#extra.some((x) => [...this.master.addons.walk([x])].includes(addon));
  }

  async configure(addon: Addon, values: Record<string, unknown> = {}): Promise<void> {
    if (!this.#known(addon)) {
      await this.master.addons.register(addon);
      this.#extra.push(addon);
    }
    if (Object.keys(values).length === 0) {
      await this.master.addons.invokeAddon(addon, "configure", new Set<string>());
      return;
    }
    await this.options.update(values);
  }

  async invoke(addon: Addon, event: string, ...args: unknown[]): Promise<void> {
    if (!(EVENTS as readonly string[]).includes(event)) {
      throw new Error(`unknown event "${event}" (see EVENTS in mitmdeno)`);
    }
    for (const a of this.master.addons.walk([addon])) {
      const fn = a[event];
      if (fn === undefined || fn === null) continue;
      if (typeof fn !== "function") throw new Error(`${addonName(a)}.${event} is not a function`);
      try {
        await fn.apply(a, args);
      } catch (e) {
        if (e instanceof AddonHalt) return;
        throw e;
      }
    }
  }

  async cycle(addon: Addon, flow: Flow): Promise<void> {
    for (const ev of eventSequence(flow)) {
      await this.invoke(addon, ev, flow);
      if (flow.intercepted) return;
    }
  }

  async command(path: string | ((...args: any[]) => unknown), ...args: unknown[]): Promise<unknown> {
    if (typeof path === "function") return await path(...args);
    return await this.master.commands.call(path, ...args);
  }

  hasLog(text: string, level?: LogLevel): boolean {
    return this.logs.some((e) => e.msg.includes(text) && (!level || e.level === level));
  }

  async waitForLog(text: string, opts: { level?: LogLevel; timeoutMs?: number } = {}): Promise<LogEntry> {
    const deadline = Date.now() + (opts.timeoutMs ?? 2000);
    for (;;) {
      const e = this.logs.find((e) => e.msg.includes(text) && (!opts.level || e.level === opts.level));
      if (e) return e;
      if (Date.now() >= deadline) {
        throw new AssertionError({
          message: `no log entry containing ${JSON.stringify(text)}${
            opts.level ? ` at level ${opts.level}` : ""
          }; logged:\n${this.logs.map((e) => `  ${e.level}: ${e.msg}`).join("\n") || "  (nothing)"}`,
        });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  clearLogs(): void {
    this.logs.length = 0;
  }

  async script(path: string | URL): Promise<Addon> {
    const url = path instanceof URL ? path : new URL(path, `file://${Deno.cwd()}/`);
    const mod = await import(url.href);
    const file = decodeURIComponent(url.pathname.split("/").pop() ?? "script");
    let addon: Addon;
    if (typeof mod.start === "function" && !Array.isArray(mod.addons)) addon = await mod.start();
    else {
      addon = { name: `script:${file}` };
      for (const ev of EVENTS) if (typeof mod[ev] === "function") addon[ev] = mod[ev];
      if (Array.isArray(mod.addons)) addon.addons = mod.addons;
    }
    await this.master.addons.add(addon);
    await this.master.addons.invokeAddon(
      addon,
      "configure",
      new Set(this.options.specs().map((s) => s.name)),
    );
    return addon;
  }

  hook(event: EventName, flow: Flow): Promise<void> {
    return this.master.addons.handleLifecycle(event, flow);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.master.addons.trigger("done");
      for (const a of this.#extra) await this.master.addons.invokeAddon(a, "done");
    } finally {
      ctx.master = this.#saved.master;
      ctx.options = this.#saved.options;
      ctx.log = this.#saved.log;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Open an addon test context like mitmproxy's `taddons.context(*addons)`: a fresh {@link Master}, the
 * global `ctx` pointing to it, `addons` added to the chain (`load` fires), then `configure` with every
 * option name, as at start-up.
 *
 * @example
 * ```ts ignore
 * await using tctx = await context(new MyAddon());
 * ```
 */
export async function context(...addons: Addon[]): Promise<TestContext> {
  const t = new TestContextImpl();
  try {
    await t.master.addons.add(...addons);
    if (addons.length) {
      await t.master.addons.trigger("configure", new Set(t.options.specs().map((s) => s.name)));
    }
  } catch (e) {
    await t.close();
    throw e;
  }
  return t;
}

/** Run `fn` with a fresh {@link context} of `addons`, closing it afterwards (also on failure). */
export async function withContext<T>(
  addons: Addon[],
  fn: (tctx: TestContext) => T | Promise<T>,
): Promise<T> {
  const t = await context(...addons);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

/** Options of {@link sandboxed}. */
export interface SandboxedOptions {
  /** `--script-allow` entries (e.g. `"net=127.0.0.1:8000"`, `"shutdown"`); none by default, as with `-s`. */
  allow?: string[];
  /** Other options, `--set` style (`"name=value"`), set before the scripts load. */
  set?: string[];
}

/**
 * A test context that runs `scripts` exactly as `mitmdeno -s` does: each in its own sandboxed worker with no
 * permissions but the `allow` grants, its options and commands registered with the master, its log lines
 * tagged with its file name. Drive it with {@link TestContext.hook}; read the results on the flow and in
 * {@link TestContext.logs}. A script that fails to load is logged (`error in script ...`), as in the proxy.
 * Script paths are absolute or relative to the current folder; arguments go after the path (`"x.ts a b"`).
 * `script_timeout` is 60 s unless `set` says otherwise (under `deno test` the first worker type-checks its
 * module graph while it loads, which can take longer than the proxy's default of 15 s).
 *
 * @example
 * ```ts ignore
 * await using tctx = await sandboxed("add_header.ts");
 * const f = tflow({ resp: true });
 * await tctx.hook("response", f);
 * assert.equal(f.response!.headers.get("newheader"), "foo");
 * ```
 */
export async function sandboxed(
  scripts: string | string[],
  opts: SandboxedOptions = {},
): Promise<TestContext> {
  const t = new TestContextImpl();
  try {
    await t.master.addons.add(new ScriptLoader(t.master, { watch: false }));
    const sets = [...(opts.set ?? []), ...(opts.allow ?? []).map((a) => `script_allow=${a}`)];
    // `deno test` type-checks the first worker's module graph as it loads: that can exceed the default 15 s
    if (!sets.some((x) => x.startsWith("script_timeout="))) sets.unshift("script_timeout=60");
    if (sets.length) await t.options.set(sets);
    await t.options.update({ scripts: Array.isArray(scripts) ? scripts : [scripts] });
  } catch (e) {
    await t.close();
    throw e;
  }
  return t;
}
