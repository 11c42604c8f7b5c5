/**
 * HTTPS benchmark origin, run as its own process: a bare `node:tls` server with a minimal HTTP/1.1
 * keep-alive responder (request heads without bodies), on loopback with a leaf from a throwaway CA (in
 * `--dir`), serving `--size` bytes: ~0.5 ms of CPU per new connection here, so the proxy is what the
 * HTTPS scenarios measure. Prints
 * `LISTENING <port> <ca-cert-file>` once it accepts connections; exits when stdin closes or on SIGTERM.
 *
 * Usage: `deno run -A scripts/bench/tls_origin.ts --dir DIR [--port 0] [--size 1024]`
 * @module
 */
import tls from "node:tls";
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
const response = Buffer.concat([
  Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${size}\r\n\r\n`, "latin1"),
  Buffer.alloc(size, 0x61),
]);
const server = tls.createServer(
  { key: leaf.keyPem, cert: leaf.chainPem, ALPNProtocols: ["http/1.1"] },
  (s) => {
    s.setNoDelay(true);
    let pending = "";
    s.on("data", (d: Buffer) => {
      pending += d.toString("latin1");
      let i: number;
      while ((i = pending.indexOf("\r\n\r\n")) !== -1) {
        const close = /\r\nconnection: *close/i.test(pending.slice(0, i));
        pending = pending.slice(i + 4);
        if (close) {
          s.end(response);
          return;
        }
        s.write(response);
      }
    });
    s.on("error", () => {});
  },
);
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
