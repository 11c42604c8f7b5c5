/**
 * The layer test kit (mitmproxy's Playbook, test/mitmproxy/proxy/tutils.py): a test feeds events to a layer
 * and states the exact commands it expects out, in order, replying to blocking ones, without any socket.
 *
 * ```ts
 * const t = tctx();
 * const pb = new Playbook(new HttpLayer(t.ctx, { mode: "regular", rewriteHost: false }));
 * pb.in(new Start())
 *   .in(data(t.client, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"))
 *   .out(hook("requestheaders")).reply()
 *   .out(hook("request")).reply()
 *   .out(open("example.com:80")).reply(null)
 *   .out(send(t.server(), /^GET \/ HTTP\/1.1\r\n/))
 *   ...
 *   .done();
 * ```
 *
 * Commands are checked as they come (`out` takes the next one), so a failure names the step. Log commands are
 * skipped unless `logs: true`, flow control (SetReading, WatchWrites) always (`history` has them);
 * `autoHooks` replies to hooks by itself (they are then not listed). `reply`
 * updates the connection records as the driver does (an opened server gets its `timestampStart`, one whose
 * TLS handshake failed its `timestampEnd`); `runHook` runs a hook through the master's addons, interception
 * included.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Master } from "../../../lib/master.ts";
import { Client, type Connection, Server } from "../../../lib/flow/connection.ts";
import { Context } from "../../../lib/proxy/context.ts";
import type { Layer } from "../../../lib/proxy/layer.ts";
import {
  BlockingCommand,
  CloseConnection,
  type Command,
  Log,
  OpenConnection,
  Relay,
  RequestWakeup,
  SendData,
  SetReading,
  StartHook,
  StartTls,
  WatchWrites,
} from "../../../lib/proxy/commands.ts";
import { ConnectionClosed, DataReceived, type Event } from "../../../lib/proxy/events.ts";
import { fromLatin1, latin1 } from "../../../lib/http/bytes.ts";
import { ProtocolError } from "../../../lib/proxy/errors.ts";
import {
  type HttpEvent,
  ReceiveHttp,
  RequestData,
  RequestHeaders,
  RequestProtocolError,
  RequestTrailers,
  ResponseData,
  ResponseHeaders,
  ResponseProtocolError,
  ResponseTrailers,
  SendHttp,
} from "../../../lib/proxy/layers/http/events.ts";

/** A test context: a master without addons, a client connection, the context's server. */
export interface TestContext {
  master: Master;
  ctx: Context;
  client: Client;
  /** The context's server record. */
  server(): Server;
}

/** A fresh test context (`sets`: option values, as `--set`). */
export function tctx(sets: Record<string, unknown> = {}): TestContext {
  const master = new Master();
  master.onLog(() => {});
  if (Object.keys(sets).length) void master.options.update(sets);
  const client = new Client({ peername: ["127.0.0.1", 50000], sockname: ["127.0.0.1", 8080] });
  const ctx = new Context(client, new Server(null), master.proxy);
  return { master, ctx, client, server: () => ctx.server };
}

/** How a command is expected. */
export interface Expect {
  describe: string;
  match(c: Command): string | null;
}

function check(cond: boolean, why: string): string | null {
  return cond ? null : why;
}

/** SendData on `conn` whose bytes (latin1) equal `text` or match `re`. */
export function send(conn: Connection | (() => Connection), text: string | RegExp): Expect {
  return {
    describe: `SendData(${typeof conn === "function" ? "server" : conn.constructor.name}, ${text})`,
    match(c) {
      if (!(c instanceof SendData)) return `not SendData`;
      const want = typeof conn === "function" ? conn() : conn;
      if (c.conn !== want) return `on ${c.conn}, not ${want}`;
      const got = latin1(c.data);
      return typeof text === "string"
        ? check(got === text, `data ${JSON.stringify(got)}`)
        : check(text.test(got), `data ${JSON.stringify(got)}`);
    },
  };
}

/** StartHook `name` (optionally checking its data). */
export function hook(name: string, dataCheck?: (data: unknown) => boolean): Expect {
  return {
    describe: `StartHook(${name})`,
    match(c) {
      if (!(c instanceof StartHook)) return "not StartHook";
      if (c.name !== name) return `hook ${c.name}`;
      return dataCheck && !dataCheck(c.data) ? "its data did not match" : null;
    },
  };
}

/** OpenConnection to "host:port" (or any). */
export function open(address?: string): Expect {
  return {
    describe: `OpenConnection(${address ?? "*"})`,
    match(c) {
      if (!(c instanceof OpenConnection)) return "not OpenConnection";
      const a = c.conn.address ? `${c.conn.address[0]}:${c.conn.address[1]}` : "none";
      return check(address === undefined || a === address, `to ${a}`);
    },
  };
}

/** CloseConnection of `conn` (opts checked when given). */
export function close(
  conn: Connection | (() => Connection),
  opts?: { halfClose?: boolean; reuse?: boolean },
): Expect {
  return {
    describe: `CloseConnection(${typeof conn === "function" ? "server" : conn.constructor.name})`,
    match(c) {
      if (!(c instanceof CloseConnection)) return "not CloseConnection";
      const want = typeof conn === "function" ? conn() : conn;
      if (c.conn !== want) return `of ${c.conn}`;
      if (opts?.halfClose !== undefined && !!c.opts.halfClose !== opts.halfClose) return "halfClose differs";
      if (opts?.reuse !== undefined && !!c.opts.reuse !== opts.reuse) return "reuse differs";
      return null;
    },
  };
}

/** StartTls on `conn`. */
export function startTls(conn: Connection | (() => Connection)): Expect {
  return {
    describe: "StartTls",
    match(c) {
      if (!(c instanceof StartTls)) return "not StartTls";
      const want = typeof conn === "function" ? conn() : conn;
      return check(c.conn === want, `on ${c.conn}`);
    },
  };
}

/** A RequestWakeup (optionally of `ms`). */
export function wakeup(ms?: number): Expect {
  return {
    describe: `RequestWakeup(${ms ?? "*"})`,
    match: (c) =>
      !(c instanceof RequestWakeup)
        ? "not RequestWakeup"
        : check(ms === undefined || c.delayMs === ms, `of ${(c as RequestWakeup).delayMs} ms`),
  };
}

/** A Relay of the client and a server. */
export function relay(): Expect {
  return { describe: "Relay", match: (c) => check(c instanceof Relay, "not Relay") };
}

/** A Log line matching `re`. */
export function log(re: RegExp, level?: string): Expect {
  return {
    describe: `Log(${re})`,
    match(c) {
      if (!(c instanceof Log)) return "not Log";
      if (level && c.level !== level) return `level ${c.level}`;
      return check(re.test(c.message), `message ${JSON.stringify(c.message)}`);
    },
  };
}

/** A command of class `cls` (optionally checked by `fn`). */
export function cmd<C extends Command>(cls: new (...a: any[]) => C, fn?: (c: C) => boolean): Expect {
  return {
    describe: cls.name,
    match: (
      c,
    ) => (!(c instanceof cls) ? `not ${cls.name}` : check(!fn || fn(c as C), "its fields did not match")),
  };
}

/** SendHttp of an event on `conn` whose {@link summarize}d form equals `text` or matches `re`. */
export function sendHttp(conn: Connection | (() => Connection), text: string | RegExp): Expect {
  return {
    describe: `SendHttp(${text})`,
    match(c) {
      if (!(c instanceof SendHttp)) return "not SendHttp";
      const want = typeof conn === "function" ? conn() : conn;
      if (c.conn !== want) return `on ${c.conn}, not ${want}`;
      const got = summarize(c.event);
      return typeof text === "string" ? check(got === text, got) : check(text.test(got), got);
    },
  };
}

/** Bytes received on `conn` (a latin1 string). */
export function data(conn: Connection, text: string): DataReceived {
  return new DataReceived(conn, fromLatin1(text));
}

/** The peer of `conn` closed. */
export function closed(conn: Connection): ConnectionClosed {
  return new ConnectionClosed(conn);
}

/**
 * The bytes of a TLS ClientHello record (TLS 1.2 legacy version, two cipher suites), with the server_name and
 * ALPN extensions when given; `records` > 1 splits the handshake message over that many records.
 */
export function clientHello(opts: { sni?: string; alpn?: string[]; records?: number } = {}): Uint8Array {
  const u16 = (n: number) => [n >> 8, n & 0xff];
  const ext = (type: number, body: number[]) => [...u16(type), ...u16(body.length), ...body];
  const exts: number[] = [];
  if (opts.sni !== undefined) {
    const name = [...new TextEncoder().encode(opts.sni)];
    const entry = [0, ...u16(name.length), ...name];
    exts.push(...ext(0, [...u16(entry.length), ...entry]));
  }
  if (opts.alpn?.length) {
    const list = opts.alpn.flatMap((p) => [p.length, ...new TextEncoder().encode(p)]);
    exts.push(...ext(16, [...u16(list.length), ...list]));
  }
  const body = [
    0x03,
    0x03, // legacy_version
    ...new Array(32).fill(7), // random
    0, // session id
    ...u16(4),
    0x13,
    0x01,
    0xc0,
    0x2f, // cipher suites
    1,
    0, // compression: null
    ...u16(exts.length),
    ...exts,
  ];
  const msg = [1, 0, body.length >> 8, body.length & 0xff, ...body];
  const n = Math.max(1, opts.records ?? 1);
  const size = Math.ceil(msg.length / n);
  const out: number[] = [];
  for (let o = 0; o < msg.length; o += size) {
    const frag = msg.slice(o, o + size);
    out.push(0x16, 0x03, 0x01, ...u16(frag.length), ...frag);
  }
  return Uint8Array.from(out);
}

/**
 * An HTTP event in one line, for exact comparisons: `RequestHeaders(1, GET http://h/p HTTP/1.1, end)`,
 * `ResponseData(1, "bytes")`, `RequestTrailers(1, x: 1)`, `ResponseProtocolError(1, kind, status, message)`.
 */
export function summarize(ev: HttpEvent): string {
  const name = ev.constructor.name;
  const id = ev.streamId;
  if (ev instanceof RequestHeaders) {
    const r = ev.request;
    const target = r.method === "CONNECT" ? r.authority : r.host ? r.url : r.path;
    return `${name}(${id}, ${r.method} ${target} ${r.httpVersion}${ev.endStream ? ", end" : ""})`;
  }
  if (ev instanceof ResponseHeaders) {
    const r = ev.response;
    return `${name}(${id}, ${r.statusCode} ${r.reason}${ev.endStream ? ", end" : ""})`;
  }
  if (ev instanceof RequestData || ev instanceof ResponseData) {
    return `${name}(${id}, ${JSON.stringify(latin1(ev.data))})`;
  }
  if (ev instanceof RequestTrailers || ev instanceof ResponseTrailers) {
    return `${name}(${id}, ${ev.trailers.fields.map(([k, v]) => `${k}: ${v}`).join(", ")})`;
  }
  if (ev instanceof RequestProtocolError || ev instanceof ResponseProtocolError) {
    const e = ev.error;
    return `${name}(${id}, ${e.kind}, ${e.status}, ${e.message})`;
  }
  return `${name}(${id})`;
}

/** Runs a layer as its root, recording what it emits. */
export class Playbook {
  readonly layer: Layer;
  /** Commands emitted and not yet taken by {@link out}. */
  readonly pending: Command[] = [];
  /** Every command, in order (for debugging). */
  readonly history: Command[] = [];
  #last: BlockingCommand<unknown> | null = null;
  readonly #logs: boolean;
  readonly #autoHooks: boolean;
  readonly #autoReading: boolean;
  #step = 0;

  constructor(layer: Layer, opts: { logs?: boolean; autoHooks?: boolean } = {}) {
    this.layer = layer;
    this.#logs = opts.logs ?? false;
    this.#autoHooks = opts.autoHooks ?? false;
    this.#autoReading = true;
    layer.attach((c) => this.#emitted(c));
  }

  #emitted(c: Command): void {
    this.history.push(c);
    if (c instanceof Log && !this.#logs) return;
    if ((c instanceof SetReading || c instanceof WatchWrites) && this.#autoReading) return;
    if (c instanceof StartHook && this.#autoHooks) return c.complete();
    this.pending.push(c);
  }

  #where(): string {
    const rest = this.pending.map((c) => String(c)).join(", ") || "nothing";
    return `step ${this.#step}; pending: ${rest}; history: ${this.history.map(String).join(", ")}`;
  }

  /** Deliver an event. */
  in(e: Event): this {
    this.#step++;
    this.layer.handle(e);
    return this;
  }

  /** The next command must match `e`. */
  out(e: Expect): this {
    this.#step++;
    const c = this.pending.shift();
    assert.ok(c !== undefined, `expected ${e.describe}, got no command (${this.#where()})`);
    const why = e.match(c);
    assert.ok(why === null, `expected ${e.describe}, got ${c}: ${why} (${this.#where()})`);
    if (c instanceof BlockingCommand) this.#last = c;
    return this;
  }

  /** The next command, whatever it is (to inspect it). */
  take(): Command {
    const c = this.pending.shift();
    assert.ok(c !== undefined, `expected a command (${this.#where()})`);
    if (c instanceof BlockingCommand) this.#last = c;
    return c;
  }

  /** Reply to the last blocking command taken (or `to`). */
  reply(value?: unknown, to?: BlockingCommand<unknown>): this {
    const c: BlockingCommand<unknown> | null = to ?? this.#last;
    assert.ok(c, `nothing to reply to (${this.#where()})`);
    // what the driver does to the connection records along with these replies
    if (c instanceof OpenConnection && value === null && c.conn.timestampStart === null) {
      c.conn.timestampStart = Date.now() / 1000;
    }
    if (c instanceof StartTls && value instanceof ProtocolError && c.conn instanceof Server) {
      c.conn.timestampEnd = Date.now() / 1000; // a failed handshake destroys the server connection
    }
    (c as BlockingCommand<unknown>).complete(value);
    return this;
  }

  /** Fire the last wakeup taken. */
  fire(w?: RequestWakeup): this {
    const c = w ?? [...this.history].reverse().find((x) => x instanceof RequestWakeup) as RequestWakeup;
    assert.ok(c, "no wakeup to fire");
    if (!c.cancelled) c.onWake();
    return this;
  }

  /** No command left. */
  done(): this {
    assert.equal(this.pending.length, 0, `unexpected commands: ${this.#where()}`);
    return this;
  }

  /**
   * Run the last hook taken (or `h`) as the driver does: the master's addons, then `update`, then wait while
   * the flow is intercepted; the hook is completed when that is over (await the promise to get there).
   */
  runHook(h?: StartHook): Promise<void> {
    const c = h ?? this.#last;
    assert.ok(c instanceof StartHook, `the last blocking command is not a hook (${this.#where()})`);
    const addons = this.layer.context.master.addons;
    const p = c.flow ? addons.runHook(c.name, c.flow) : addons.trigger(c.name, c.data);
    return Promise.resolve(p).then(() => c.complete());
  }

  /** The HTTP events received so far, {@link summarize}d (from a codec tested alone). */
  events(): string[] {
    return this.http().map(summarize);
  }

  /** Received HTTP events (from a codec tested alone). */
  http(): HttpEvent[] {
    const out = [];
    while (this.pending.length && this.pending[0] instanceof ReceiveHttp) {
      out.push((this.pending.shift() as ReceiveHttp).event);
    }
    return out;
  }
}
