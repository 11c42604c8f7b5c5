/**
 * Benchmark origin server, run as a separate process so it never shares an event loop with the
 * benchmark driver or the proxy under test.
 *
 * Usage: `deno run --allow-net scripts/bench/origin.ts [--host 127.0.0.1] [--port 0] [--size 1024]`
 *
 * Listens on loopback (port 0 = ephemeral), serves a fixed body of `--size` bytes (default 1 KiB)
 * for every request with keep-alive, and prints exactly one line `LISTENING <port>` to stdout once
 * it accepts connections. A WebSocket handshake (`Upgrade: websocket`, any path) gets a WebSocket that
 * echoes every message (Deno's WebSocket server, no permessage-deflate), for the WebSocket scenarios.
 * Exits when stdin closes (so it dies with its parent) or on SIGTERM.
 *
 * @module
 */

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const hostname = flag("host", "127.0.0.1");
const port = Number(flag("port", "0"));
const size = Number(flag("size", "1024"));

const body = new Uint8Array(size).fill(0x61); // "aaaa..."
const headers = { "content-type": "text/plain", "content-length": String(size) };

const server = Deno.serve(
  {
    hostname,
    port,
    onListen: ({ port }) => console.log(`LISTENING ${port}`),
  },
  (req) =>
    req.headers.get("upgrade")?.toLowerCase() === "websocket" ? echo(req) : new Response(body, { headers }),
);

/** Upgrade `req` to a WebSocket that sends every message back as it came (text as text, binary as binary). */
function echo(req: Request): Response {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (e) => socket.send(e.data);
  return response;
}

// Die with the parent: the parent holds our stdin pipe open; EOF means it went away.
(async () => {
  try {
    const buf = new Uint8Array(64);
    while ((await Deno.stdin.read(buf)) !== null) { /* ignore input */ }
  } catch { /* stdin unavailable */ }
  await server.shutdown();
  Deno.exit(0);
})();

Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
