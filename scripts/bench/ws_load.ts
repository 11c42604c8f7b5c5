/**
 * WebSocket echo load generator, run as its own process so it never shares an event loop with the proxy
 * under test. Opens `--connections` WebSockets (npm `ws` client, no permessage-deflate) to the echo origin,
 * directly or through an HTTP proxy (a `CONNECT` tunnel, then the HTTP/1 Upgrade inside it: the proxy's
 * WebSocket layer reads every message). Once all are open, each connection sends a `--size`-byte text
 * message and sends the next one when the echo of the previous one arrives, for `--duration` seconds.
 *
 * `--expect same` counts an echo that differs from what was sent as an error; `--expect rewritten` (a
 * proxy script rewrites messages) counts an echo of the same length that is unchanged as one.
 *
 * Prints one line `WS_RESULT {json}` in the shape of scripts/bench/wrk.ts's WrkResult: `requests` are
 * round trips, `rps` round trips (echoed messages) per second, latencies in microseconds; `errors.connect`
 * connections that could not be opened, `errors.read` connections that failed or closed during the run,
 * `errors.status` unexpected echoes, `errors.timeout` connections still waiting for an echo at the end.
 *
 * Usage: `deno run -A --lock=tests/deno.lock scripts/bench/ws_load.ts --origin H:P [--proxy H:P]
 *         [--connections 32] [--size 64] [--duration 10] [--expect same|rewritten]`
 * @module
 */
import net from "node:net";
import * as wsModule from "npm:ws@8.23.0";

// the ws package has no type declarations of its own
const { WebSocket } = wsModule as any;
type WebSocket = any;

function flag(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < Deno.args.length) return Deno.args[i + 1];
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

const origin = flag("origin");
const proxy = flag("proxy", "");
const connections = Number(flag("connections", "32"));
const size = Number(flag("size", "64"));
const durationS = Number(flag("duration", "10"));
const expect = flag("expect", "same");
/** Longest wait for opening all connections, and for the last echoes after the duration. */
const GRACE_MS = 10_000;

/** A CONNECT tunnel through the proxy to the origin; resolves with the socket after the 200. */
function tunnel(): Promise<net.Socket> {
  const [host, port] = proxy.split(":");
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), host);
    s.setNoDelay(true);
    let head = "";
    const onData = (d: Uint8Array) => {
      head += new TextDecoder("latin1").decode(d);
      const i = head.indexOf("\r\n\r\n");
      if (i < 0) return;
      s.off("data", onData);
      s.off("error", reject);
      if (!/^HTTP\/1\.[01] 200/.test(head) || i + 4 !== head.length) {
        s.destroy();
        reject(new Error(`CONNECT failed: ${head.split("\r\n")[0]}`));
      } else resolve(s);
    };
    s.on("data", onData);
    s.on("error", reject);
    s.write(`CONNECT ${origin} HTTP/1.1\r\nHost: ${origin}\r\n\r\n`);
  });
}

/** One open WebSocket, directly or through the proxy's tunnel. */
async function open(): Promise<WebSocket> {
  const socket = proxy ? await tunnel() : undefined;
  const ws = new WebSocket(`ws://${origin}/`, {
    perMessageDeflate: false,
    ...(socket ? { createConnection: () => socket } : {}),
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
    ws.once(
      "unexpected-response",
      (_req: unknown, res: { statusCode: number }) =>
        reject(new Error(`handshake got HTTP ${res.statusCode}`)),
    );
  });
  ws.removeAllListeners("error");
  return ws;
}

const message = "x".repeat(size);
let roundTrips = 0;
let failed = 0;
let unexpected = 0;
let firstError = "";
const latUs: number[] = [];

/** Echo loop of one connection; resolves when the duration is over (or the connection failed). */
function loop(ws: WebSocket, deadline: number): Promise<"done" | "failed"> {
  return new Promise((resolve) => {
    let t0 = 0;
    const fail = (why: string) => {
      firstError ||= why;
      resolve("failed");
    };
    ws.on("message", (data: Uint8Array, isBinary: boolean) => {
      const now = performance.now();
      latUs.push((now - t0) * 1000);
      roundTrips++;
      const text = isBinary ? "" : String(data);
      const ok = expect === "same" ? text === message : text.length === size && text !== message;
      if (!ok) {
        unexpected++;
        firstError ||= `unexpected echo: ${JSON.stringify(text.slice(0, 80))}`;
      }
      if (Date.now() >= deadline) return resolve("done");
      t0 = performance.now();
      ws.send(message);
    });
    ws.on("error", (e: Error) => fail(e.message));
    ws.on("close", (code: number) => fail(`closed during the run (code ${code})`));
    t0 = performance.now();
    ws.send(message);
  });
}

const settled = await Promise.allSettled(Array.from({ length: connections }, open));
const sockets: WebSocket[] = [];
for (const s of settled) {
  if (s.status === "fulfilled") sockets.push(s.value);
  else firstError ||= `connect: ${(s.reason as Error).message}`;
}
const connectErrors = connections - sockets.length;
const start = performance.now();
const deadline = Date.now() + durationS * 1000;
let timedOut = 0;
let graceTimer: ReturnType<typeof setTimeout> | undefined;
const grace = new Promise<"timeout">((r) =>
  graceTimer = setTimeout(() => r("timeout"), durationS * 1000 + GRACE_MS)
);
const outcomes = await Promise.all(sockets.map((ws) => Promise.race([loop(ws, deadline), grace])));
clearTimeout(graceTimer);
const elapsed = (performance.now() - start) / 1000;
for (const o of outcomes) {
  if (o === "failed") failed++;
  if (o === "timeout") timedOut++;
}
// close handshakes (so the proxy ends its flows as it would for any client), then drop what is left
await Promise.race([
  Promise.all(sockets.map((ws) => {
    ws.removeAllListeners();
    ws.on("error", () => {});
    const closed = new Promise((r) => ws.once("close", r));
    ws.close(1000);
    return closed;
  })),
  new Promise((r) => setTimeout(r, 2000)),
]);
for (const ws of sockets) ws.terminate();

latUs.sort((a, b) => a - b);
const pct = (
  p: number,
) => (latUs.length ? latUs[Math.min(latUs.length - 1, Math.floor(latUs.length * p))] : 0);
const mean = latUs.length ? latUs.reduce((a, b) => a + b, 0) / latUs.length : 0;
if (firstError) console.error(`first error: ${firstError}`);
console.log(
  "WS_RESULT " + JSON.stringify({
    requests: roundTrips,
    durationS: elapsed,
    rps: roundTrips / elapsed,
    bytes: roundTrips * size * 2,
    latencyUs: { mean, stdev: 0, max: pct(1), p50: pct(0.5), p90: pct(0.9), p99: pct(0.99) },
    errors: { connect: connectErrors, read: failed, write: 0, timeout: timedOut, status: unexpected },
  }),
);
Deno.exit(0);
