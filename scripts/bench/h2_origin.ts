/**
 * HTTP/2 benchmark origin, run as its own process: a TLS server (h2 only) on loopback with a
 * leaf from a throwaway CA (in `--dir`): `/` answers `--size` bytes, `/big?n=BYTES` streams that many.
 * Prints `LISTENING <port> <ca-cert-file>` once it accepts connections; exits when stdin closes or on
 * SIGTERM.
 *
 * Usage: `deno run -A scripts/bench/h2_origin.ts --dir DIR [--port 0] [--size 1024]`
 * @module
 */
import tls from "node:tls";
import { H2Connection } from "../../lib/http2/connection.ts";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const dir = flag("dir", "");
if (!dir) throw new Error("--dir is required");
const size = Number(flag("size", "1024"));
const ca = await loadOrCreateCA(dir, { basename: "benchorigin" });
const leaf = new CertStore(ca, { secureContext: false }).getCert({
  commonName: "localhost",
  sans: ["localhost", "127.0.0.1"],
});
const body = Buffer.alloc(size, 0x61);
const block = Buffer.alloc(256 * 1024, 0x62);
// node:http2 serves ~2.7k req/s here (measured with h2load -c16 -m10), slower than the proxies it would
// measure: the origin speaks HTTP/2 with mitmdeno's own sans-io connection over node:tls instead
const server = tls.createServer({ key: leaf.keyPem, cert: leaf.chainPem, ALPNProtocols: ["h2"] }, (sock) => {
  sock.setNoDelay(true);
  const paths = new Map<number, string>();
  const big = new Map<number, number>();
  let blocked = false;
  const flush = () => {
    const out = h2.takeOutput();
    if (out && !sock.destroyed && !sock.write(out)) blocked = true;
  };
  /** Keep /big bodies flowing until the socket's buffer is full (then 'drain' goes on). */
  const pump = () => {
    for (let i = 0; i < 10_000 && big.size && !blocked && !sock.destroyed; i++) {
      const before = h2.backlog;
      refill();
      flush();
      if (h2.backlog >= before && h2.backlog > 0) break; // the peer's window is closed: its WINDOW_UPDATE goes on
    }
  };
  /** Send more of the /big bodies while the peer's windows are open (at most a few blocks queued). */
  const refill = () => {
    for (const [id, left] of big) {
      let l = left;
      while (l > 0 && h2.queuedOn(id) < 2 * block.length) {
        const part = l >= block.length ? block : block.subarray(0, l);
        l -= part.length;
        h2.sendData(id, part, l === 0);
      }
      if (l === 0) big.delete(id);
      else big.set(id, l);
    }
  };
  const h2 = new H2Connection({
    headers: (id, fields, end) => {
      const path = fields.find((f) => f[0] === ":path")?.[1] ?? "/";
      paths.set(id, path);
      if (end) answer(id);
    },
    data: (id, _d, end) => {
      if (end) answer(id);
    },
    reset: (id) => big.delete(id),
    goaway: () => {},
    failed: () => sock.destroy(),
    drained: () => refill(),
  }, { role: "server", maxConcurrentStreams: 1000 });
  const answer = (id: number) => {
    const path = paths.get(id) ?? "/";
    paths.delete(id);
    if (path.startsWith("/big")) {
      const n = Number(new URL(path, "https://x").searchParams.get("n") ?? "0");
      h2.sendHeaders(id, [[":status", "200"], ["content-type", "application/octet-stream"], [
        "content-length",
        String(n),
      ]], n === 0);
      if (n > 0) big.set(id, n);
      refill();
      return;
    }
    h2.sendHeaders(
      id,
      [[":status", "200"], ["content-type", "text/plain"], ["content-length", String(size)]],
      false,
    );
    h2.sendData(id, body, true);
  };
  h2.start();
  flush();
  sock.on("data", (d: Buffer) => {
    h2.receive(new Uint8Array(d.buffer, d.byteOffset, d.length));
    flush();
    pump();
  });
  sock.on("drain", () => {
    blocked = false;
    pump();
  });
  sock.on("error", () => {});
});
server.on("tlsClientError", () => {});
server.listen(Number(flag("port", "0")), "127.0.0.1", () => {
  console.log(`LISTENING ${(server.address() as AddressInfo).port} ${ca.paths.certPem}`);
});

(async () => {
  try {
    const buf = new Uint8Array(64);
    while ((await Deno.stdin.read(buf)) !== null) { /* ignore */ }
  } catch { /* no stdin */ }
  Deno.exit(0);
})();
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
