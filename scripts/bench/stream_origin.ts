/**
 * Streaming benchmark origin, run as its own process: an HTTP and an HTTPS server on loopback (a leaf from
 * a throwaway CA in `--dir`). `GET /bytes/N` streams N bytes (64 KiB chunks, honouring backpressure, with
 * a content-length); `POST` (any path) reads and discards the body and answers with the byte count. Prints
 * `LISTENING <http-port> <https-port> <ca-cert-file>`; exits when stdin closes or on SIGTERM.
 *
 * Usage: `deno run -A scripts/bench/stream_origin.ts --dir DIR`
 * @module
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";

const dirAt = Deno.args.indexOf("--dir");
const dir = dirAt >= 0 ? Deno.args[dirAt + 1] : "";
if (!dir) throw new Error("--dir is required");
const ca = await loadOrCreateCA(dir, { basename: "streamorigin" });
const leaf = new CertStore(ca, { secureContext: false }).getCert({
  commonName: "localhost",
  sans: ["localhost", "127.0.0.1"],
});

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === "POST" || req.method === "PUT") {
    let n = 0;
    req.on("data", (d: Buffer) => (n += d.length));
    req.on("end", () => res.end(String(n)));
    return;
  }
  const m = /^\/bytes\/(\d+)/.exec(req.url ?? "");
  if (!m) {
    res.end("ok");
    return;
  }
  let left = Number(m[1]);
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(left) });
  const pump = () => {
    while (left > 0) {
      const part = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= part.length;
      if (!res.write(part)) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

const plain = http.createServer(handler);
const secure = https.createServer({ key: leaf.keyPem, cert: leaf.chainPem }, handler);
await Promise.all([
  new Promise<void>((r) => plain.listen(0, "127.0.0.1", r)),
  new Promise<void>((r) => secure.listen(0, "127.0.0.1", r)),
]);
console.log(
  `LISTENING ${(plain.address() as AddressInfo).port} ${
    (secure.address() as AddressInfo).port
  } ${ca.paths.certPem}`,
);

(async () => {
  try {
    for await (const _ of Deno.stdin.readable) { /* until the parent goes */ }
  } catch { /* no stdin */ }
  Deno.exit(0);
})();
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
