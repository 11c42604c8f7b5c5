/**
 * Keep-alive HTTP load through a SOCKS5 proxy (wrk cannot speak SOCKS5), run as its own process so it
 * never shares an event loop with the proxy under test: `--concurrency` connections, each with one SOCKS5
 * handshake (no authentication, CONNECT to the IPv4 `--target`), then back-to-back `GET /` requests.
 * Counts requests per second.
 *
 * Prints one line `SOCKS_RESULT {json}` in the shape of scripts/bench/wrk.ts's WrkResult.
 *
 * Usage: `deno run -A scripts/bench/socks_load.ts --proxy H:P --target 127.0.0.1:PORT
 *         [--concurrency 16] [--duration 10]`
 * @module
 */
import net from "node:net";

function flag(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < Deno.args.length) return Deno.args[i + 1];
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

const [proxyHost, proxyPort] = flag("proxy").split(":");
const target = flag("target");
const [targetHost, targetPortS] = [
  target.slice(0, target.lastIndexOf(":")),
  target.slice(target.lastIndexOf(":") + 1),
];
const targetPort = Number(targetPortS);
const concurrency = Number(flag("concurrency", "16"));
const durationS = Number(flag("duration", "10"));
const GET = new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
const dec = new TextDecoder("latin1");

/** One connection: bytes in a buffer, waited for by one reader at a time. */
class Conn {
  readonly s: net.Socket;
  #buf = "";
  #waiter: (() => void) | null = null;
  #ended = false;
  constructor(s: net.Socket) {
    this.s = s;
    s.on("data", (d: Uint8Array) => {
      this.#buf += dec.decode(d);
      this.#waiter?.();
    });
    const end = () => {
      this.#ended = true;
      this.#waiter?.();
    };
    s.on("close", end);
    s.on("error", end);
  }
  async #more(): Promise<void> {
    if (this.#ended) throw new Error("connection closed");
    await new Promise<void>((r) => (this.#waiter = r));
    this.#waiter = null;
  }
  async bytes(n: number): Promise<string> {
    while (this.#buf.length < n) await this.#more();
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
  async response(): Promise<number> {
    let i: number;
    while ((i = this.#buf.indexOf("\r\n\r\n")) < 0) await this.#more();
    const head = this.#buf.slice(0, i + 4);
    this.#buf = this.#buf.slice(i + 4);
    const m = /content-length: *(\d+)/i.exec(head);
    if (!m) throw new Error(`no content-length: ${head.slice(0, 200)}`);
    await this.bytes(Number(m[1]));
    return Number(head.slice(9, 12));
  }
}

async function open(): Promise<Conn> {
  const s = net.connect(Number(proxyPort), proxyHost);
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    s.once("connect", resolve);
    s.once("error", reject);
  });
  const c = new Conn(s);
  s.write(new Uint8Array([5, 1, 0]));
  const m = await c.bytes(2);
  if (m !== "\x05\x00") throw new Error("SOCKS5 greeting refused");
  const ip = targetHost.split(".").map(Number);
  s.write(new Uint8Array([5, 1, 0, 1, ...ip, targetPort >> 8, targetPort & 255]));
  const r = await c.bytes(10);
  if (r.charCodeAt(1) !== 0) throw new Error(`SOCKS5 CONNECT failed: reply ${r.charCodeAt(1)}`);
  return c;
}

const deadline = Date.now() + durationS * 1000;
let done = 0;
let errors = 0;
let statusErrors = 0;
let firstError = "";
const lat: number[] = [];

async function worker() {
  let c: Conn | null = null;
  while (Date.now() < deadline) {
    try {
      c ??= await open();
      const t0 = performance.now();
      c.s.write(GET);
      if ((await c.response()) !== 200) statusErrors++;
      done++;
      lat.push(performance.now() - t0);
    } catch (e) {
      errors++;
      firstError ||= (e as Error).message;
      c?.s.destroy();
      c = null;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  c?.s.destroy();
}

const start = performance.now();
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = (performance.now() - start) / 1000;
lat.sort((a, b) => a - b);
const pct = (
  p: number,
) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] * 1000 : 0);
const mean = lat.length ? (lat.reduce((a, b) => a + b, 0) / lat.length) * 1000 : 0;
if (firstError) console.error(`first error: ${firstError}`);
console.log(
  "SOCKS_RESULT " + JSON.stringify({
    requests: done,
    durationS: elapsed,
    rps: done / elapsed,
    bytes: 0,
    latencyUs: { mean, stdev: 0, max: pct(1), p50: pct(0.5), p90: pct(0.9), p99: pct(0.99) },
    errors: { connect: errors, read: 0, write: 0, timeout: 0, status: statusErrors },
  }),
);
Deno.exit(0);
