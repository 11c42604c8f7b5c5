/**
 * HTTPS load generator through an HTTP proxy (wrk cannot CONNECT), run as its own process so it never
 * shares an event loop with the proxy under test. Two modes:
 *
 * - `fresh`: each of `--concurrency` workers loops: new TCP connection to the proxy, `CONNECT`, TLS
 *   handshake verified against `--ca` (the proxy's CA), one `GET` with `Connection: close`. Counts
 *   completed connections per second.
 * - `keepalive`: `--concurrency` tunnels (CONNECT + TLS once each), then back-to-back GETs on each.
 *   Counts requests per second.
 *
 * Prints one line `TLS_RESULT {json}` in the shape of scripts/bench/wrk.ts's WrkResult.
 *
 * Usage: `deno run -A scripts/bench/tls_load.ts --proxy H:P --target localhost:PORT --ca FILE
 *         --mode fresh|keepalive [--concurrency 8] [--duration 10]`
 * @module
 */
import net from "node:net";
import tls from "node:tls";

function flag(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < Deno.args.length) return Deno.args[i + 1];
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

const [proxyHost, proxyPort] = flag("proxy").split(":");
const target = flag("target");
const servername = target.slice(0, target.lastIndexOf(":"));
const ca = await Deno.readTextFile(flag("ca"));
const mode = flag("mode", "fresh");
const concurrency = Number(flag("concurrency", "8"));
const durationS = Number(flag("duration", "10"));
const enc = new TextEncoder();
const dec = new TextDecoder("latin1");

/** Reads HTTP/1 responses (Content-Length framed, or until close) from a socket. */
class Reader {
  #buf = "";
  #waiter: (() => void) | null = null;
  #ended = false;
  constructor(s: net.Socket | tls.TLSSocket) {
    s.on("data", (d: Uint8Array) => {
      this.#buf += dec.decode(d);
      this.#waiter?.();
    });
    const end = () => {
      this.#ended = true;
      this.#waiter?.();
    };
    s.on("end", end);
    s.on("close", end);
    s.on("error", end);
  }
  async #more(): Promise<void> {
    if (this.#ended) throw new Error("connection closed");
    await new Promise<void>((r) => (this.#waiter = r));
    this.#waiter = null;
  }
  async head(): Promise<string> {
    for (;;) {
      const i = this.#buf.indexOf("\r\n\r\n");
      if (i >= 0) {
        const h = this.#buf.slice(0, i + 4);
        this.#buf = this.#buf.slice(i + 4);
        return h;
      }
      await this.#more();
    }
  }
  async response(): Promise<number> {
    const h = await this.head();
    const status = Number(h.slice(9, 12));
    const m = /content-length: *(\d+)/i.exec(h);
    if (!m) throw new Error(`no content-length in response: ${h.slice(0, 200)}`);
    const n = Number(m[1]);
    while (this.#buf.length < n) await this.#more();
    this.#buf = this.#buf.slice(n);
    return status;
  }
}

async function tunnel(): Promise<{ sock: tls.TLSSocket; reader: Reader }> {
  const raw = net.connect(Number(proxyPort), proxyHost);
  raw.setNoDelay(true);
  const rawReader = new Reader(raw);
  await new Promise<void>((resolve, reject) => {
    raw.once("connect", resolve);
    raw.once("error", reject);
  });
  raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const h = await rawReader.head();
  if (!/^HTTP\/1\.[01] 200/.test(h)) throw new Error(`CONNECT failed: ${h.split("\r\n")[0]}`);
  raw.removeAllListeners("data");
  raw.removeAllListeners("end");
  raw.removeAllListeners("close");
  raw.removeAllListeners("error");
  const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ socket: raw, servername, ca, ALPNProtocols: ["http/1.1"] });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
  return { sock, reader: new Reader(sock) };
}

const GET_CLOSE = enc.encode(`GET / HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`);
const GET = enc.encode(`GET / HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
const deadline = Date.now() + durationS * 1000;
let done = 0;
let errors = 0;
let statusErrors = 0;
let firstError = "";
const lat: number[] = [];

async function freshWorker() {
  while (Date.now() < deadline) {
    const t0 = performance.now();
    let sock: tls.TLSSocket | undefined;
    try {
      const t = await tunnel();
      sock = t.sock;
      sock.write(GET_CLOSE);
      const status = await t.reader.response();
      if (status !== 200) statusErrors++;
      done++;
      lat.push(performance.now() - t0);
    } catch (e) {
      errors++;
      firstError ||= (e as Error).message;
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      sock?.destroy();
    }
  }
}

async function keepAliveWorker() {
  let t: Awaited<ReturnType<typeof tunnel>> | null = null;
  while (Date.now() < deadline) {
    try {
      t ??= await tunnel();
      const t0 = performance.now();
      t.sock.write(GET);
      const status = await t.reader.response();
      if (status !== 200) statusErrors++;
      done++;
      lat.push(performance.now() - t0);
    } catch (e) {
      errors++;
      firstError ||= (e as Error).message;
      t?.sock.destroy();
      t = null;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  t?.sock.destroy();
}

const start = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, () => (mode === "keepalive" ? keepAliveWorker() : freshWorker())),
);
const elapsed = (performance.now() - start) / 1000;
lat.sort((a, b) => a - b);
const pct = (
  p: number,
) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] * 1000 : 0);
const mean = lat.length ? (lat.reduce((a, b) => a + b, 0) / lat.length) * 1000 : 0;
if (firstError) console.error(`first error: ${firstError}`);
console.log(
  "TLS_RESULT " + JSON.stringify({
    requests: done,
    durationS: elapsed,
    rps: done / elapsed,
    bytes: 0,
    latencyUs: { mean, stdev: 0, max: pct(1), p50: pct(0.5), p90: pct(0.9), p99: pct(0.99) },
    errors: { connect: errors, read: 0, write: 0, timeout: 0, status: statusErrors },
  }),
);
Deno.exit(0);
