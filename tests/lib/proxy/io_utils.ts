/**
 * Helpers for the I/O tests of the proxy core (driver, connection modules, proxy server): real node:net and
 * node:tls sockets on 127.0.0.1 ephemeral ports, a test CA, a scriptable test layer, and a harness that runs a
 * {@link Driver} for one accepted client socket. Every wait is bounded; {@link Resources} closes what a test
 * opened.
 *
 * @module
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { Master } from "../../../lib/master.ts";
import { Layer } from "../../../lib/proxy/layer.ts";
import { type BlockingCommand, CloseConnection, type Command } from "../../../lib/proxy/commands.ts";
import { ConnectionClosed, type Event } from "../../../lib/proxy/events.ts";
import type { Context } from "../../../lib/proxy/context.ts";
import { Driver } from "../../../lib/proxy/driver.ts";
import { parseMode } from "../../../lib/proxy/mode.ts";
import { type CertAuthority, loadOrCreateCA } from "../../../lib/tls/ca.ts";
import { CertStore, type LeafCert } from "../../../lib/tls/certs.ts";
import type { LogEntry } from "../../../lib/addons/log.ts";

/** Default bound of every wait, in ms. */
export const WAIT_MS = 5000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes of a string (UTF-8). */
export function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

/** A string of bytes (UTF-8). */
export function text(b: Uint8Array): string {
  return dec.decode(b);
}

/** Sleep `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `cond` every 5 ms until it holds; fail after `ms`. */
export async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** `p`, or a rejection after `ms`. */
export function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<T>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** What a test opened: closed by {@link Resources.close} (in a `finally`). */
export class Resources {
  readonly #servers: net.Server[] = [];
  readonly #sockets = new Set<net.Socket>();

  /** Track a socket (destroyed at the end). */
  socket<S extends net.Socket>(s: S): S {
    this.#sockets.add(s);
    s.on("error", () => {});
    return s;
  }

  /**
   * A listening server on 127.0.0.1 (ephemeral port); `onConn` gets each accepted socket. With `tlsOpts` it is
   * a node:tls server and `onConn` gets the TLS sockets.
   */
  async listen(
    onConn: (s: net.Socket) => void,
    opts: { allowHalfOpen?: boolean; tls?: tls.TlsOptions } = {},
  ): Promise<{ server: net.Server; port: number; accepted: net.Socket[] }> {
    const accepted: net.Socket[] = [];
    const handler = (s: net.Socket) => {
      accepted.push(this.socket(s));
      onConn(s);
    };
    const server = opts.tls
      ? tls.createServer({ ...opts.tls, allowHalfOpen: opts.allowHalfOpen ?? false }, handler)
      : net.createServer({ allowHalfOpen: opts.allowHalfOpen ?? false }, handler);
    if (opts.tls) {
      // track the TCP sockets too: a handshake that never finishes has no secure socket yet
      server.on("connection", (s: net.Socket) => this.socket(s));
      server.on("tlsClientError", () => {});
    }
    this.#servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { server, port: (server.address() as net.AddressInfo).port, accepted };
  }

  /** A plain TCP client to 127.0.0.1:port, once connected. */
  connect(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
    const s = this.socket(net.connect({ port, host: "127.0.0.1", allowHalfOpen: opts.allowHalfOpen }));
    return within(
      new Promise((resolve, reject) => {
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      }),
      `a connection to port ${port}`,
    );
  }

  /** A connected pair of TCP sockets on loopback: `ours` (a client socket) and the accepted `peer`. */
  async pair(opts: { allowHalfOpen?: boolean } = {}): Promise<{ ours: net.Socket; peer: net.Socket }> {
    let peer: net.Socket | null = null;
    const l = await this.listen((s) => (peer = s), opts);
    const ours = await this.connect(l.port, opts);
    await until(() => peer !== null, "the accepted socket");
    l.server.close();
    return { ours, peer: peer! };
  }

  /** A port nothing listens on (bound, then closed). */
  async freePort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  /** Destroy every socket, close every server. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(
      this.#servers.map((s) => new Promise<void>((r) => s.listening ? s.close(() => r()) : r())),
    );
  }
}

/** Collects what a socket receives; `wait` resolves once the text received so far satisfies `pred`. */
export class Reader {
  chunks: Uint8Array[] = [];
  ended = false;
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on("data", (b: Uint8Array) => this.chunks.push(b));
    socket.on("end", () => (this.ended = true));
    socket.on("close", () => (this.closed = true));
  }
  get length(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString("latin1");
  }
  wait(pred: (text: string) => boolean, what: string, ms = WAIT_MS): Promise<void> {
    return until(() => pred(this.text), `${what} (got ${JSON.stringify(this.text.slice(0, 200))})`, ms);
  }
  /** Until `s` was received. */
  waitFor(s: string, ms = WAIT_MS): Promise<void> {
    return this.wait((t) => t.includes(s), JSON.stringify(s), ms);
  }
  waitEnd(ms = WAIT_MS): Promise<void> {
    return until(() => this.ended || this.closed, "the end of the stream", ms);
  }
  waitClosed(ms = WAIT_MS): Promise<void> {
    return until(() => this.closed, "the socket to close", ms);
  }
}

/**
 * A test layer: records its events, and runs `on` for each. Its commands are public so a test can emit any
 * command ({@link cmd}), a blocking one as a promise ({@link ask}).
 */
export class ScriptLayer extends Layer {
  readonly events: Event[] = [];
  on: (e: Event, l: ScriptLayer) => void;
  constructor(ctx: Context, on: (e: Event, l: ScriptLayer) => void = () => {}) {
    super(ctx);
    this.on = on;
  }
  protected onEvent(e: Event): void {
    this.events.push(e);
    this.on(e, this);
  }
  /** Emit `c`. */
  cmd(c: Command): void {
    this.emit(c);
  }
  /** Emit a blocking command (pausing the layer) and resolve with its reply. */
  ask<R>(c: BlockingCommand<R>): Promise<R> {
    return new Promise((r) => this.call(c, r));
  }
  /** Events of class `cls` so far. */
  seen<E extends Event>(cls: new (...a: any[]) => E): E[] {
    return this.events.filter((e): e is E => e instanceof cls);
  }
  /** Wait until an event of class `cls` matching `pred` arrived; returns it. */
  async next<E extends Event>(
    cls: new (...a: any[]) => E,
    pred: (e: E) => boolean = () => true,
    ms = WAIT_MS,
  ): Promise<E> {
    let found: E | undefined;
    await until(() => (found = this.seen(cls).find(pred)) !== undefined, `a ${cls.name} event`, ms);
    return found!;
  }
}

/** A master for I/O tests with its log lines collected. */
export function testMaster(): { master: Master; logs: LogEntry[]; logText(): string } {
  const master = new Master();
  const logs: LogEntry[] = [];
  master.onLog((e) => logs.push(e));
  return { master, logs, logText: () => logs.map((e) => `${e.level}: ${e.msg}`).join("\n") };
}

/** A driver for one accepted client socket, with the test's end of it. */
export interface DriverRun {
  driver: Driver;
  layer: ScriptLayer;
  /** The test's client socket. */
  client: net.Socket;
  reader: Reader;
  /** `driver.run()`: resolves once the connection is done. */
  done: Promise<void>;
}

/**
 * Accept one client connection on a fresh listener and run a {@link Driver} with a {@link ScriptLayer}
 * (`on` sees its events) in regular mode. Like a real layer, it closes the client connection once the
 * client stopped sending (unless `keepOpen`).
 */
export async function runDriver(
  res: Resources,
  master: Master,
  on: (e: Event, l: ScriptLayer) => void = () => {},
  opts: { clientHooks?: boolean; allowHalfOpen?: boolean; keepOpen?: boolean } = {},
): Promise<DriverRun> {
  let run: { driver: Driver; layer: ScriptLayer; done: Promise<void> } | null = null;
  const front = await res.listen((s) => {
    const driver = Driver.accept(master.proxy, s, parseMode("regular"));
    const layer = new ScriptLayer(driver.context, (e, l) => {
      on(e, l);
      if (!opts.keepOpen && e instanceof ConnectionClosed && e.conn === driver.client) {
        l.cmd(new CloseConnection(driver.client));
      }
    });
    run = { driver, layer, done: driver.run(layer, { clientHooks: opts.clientHooks }) };
  }, { allowHalfOpen: true });
  const client = await res.connect(front.port, { allowHalfOpen: opts.allowHalfOpen });
  const reader = new Reader(client);
  await until(() => run !== null, "the driver to start");
  front.server.close();
  const r = run!;
  return { driver: r.driver, layer: r.layer, client, reader, done: r.done };
}

/** A test CA and a leaf for localhost / 127.0.0.1 (made once per process, kept in memory only). */
export interface TestPki {
  ca: CertAuthority;
  leaf: LeafCert;
}

let pki: Promise<TestPki> | null = null;

/** The test CA (CN "io-test") and its leaf for localhost and 127.0.0.1. */
export function testPki(): Promise<TestPki> {
  return pki ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-io-test-" });
    try {
      const ca = await loadOrCreateCA(dir, { basename: "iotest" });
      const leaf = new CertStore(ca).getCert({
        commonName: "localhost",
        sans: ["localhost", "127.0.0.1"],
        organization: "IO Test Org",
      });
      return { ca, leaf };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
}

/** A TLS client over a connected TCP socket (resolves once the handshake is done). */
export function tlsClient(raw: net.Socket, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return within(
    new Promise((resolve, reject) => {
      const s = tls.connect({ socket: raw, ...opts });
      s.once("secureConnect", () => resolve(s));
      s.once("error", reject);
    }),
    "a TLS handshake",
  );
}

/** Assert that `p` does not settle within `ms`. */
export async function pending(p: Promise<unknown>, ms: number, what: string): Promise<void> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  await sleep(ms);
  assert.ok(!settled, `${what} settled within ${ms} ms`);
}
