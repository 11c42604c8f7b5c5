/**
 * Spike: server-side TLS after CONNECT on a `node:net` socket, in Deno.
 *
 * A node:net server reads `CONNECT host:443`, answers 200, peeks the ClientHello (SNI) with
 * lib/tls/clienthello.ts, then upgrades the socket to TLS with a leaf minted for the SNI and answers a
 * fixed HTTP response inside TLS. Checked with curl, then measured with node:tls.connect clients
 * (CONNECT + handshake + one GET per connection, verified against the CA).
 *
 *   deno run -A scripts/spike_tls_upgrade.ts [connections=200] [concurrency=8]
 *
 * Measured (Deno 2.9.6, 2 cores shared by client and server, 1000 connections, 8 in flight):
 * EC P-256 leaf ~1.2k conn/s with cached hosts, ~360/s with a new host per connection; RSA-2048 leaf
 * ~615/s and ~295/s. `new TLSSocket(sock, {isServer})` and `tlsServer.emit("connection", sock)` are
 * equally fast (both after pause + unshift).
 */
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { loadOrCreateCA } from "../lib/tls/ca.ts";
import { CertStore, type LeafKeyType } from "../lib/tls/certs.ts";
import { parseClientHello } from "../lib/tls/clienthello.ts";
import { upgradeToServerTls } from "../lib/tls/upgrade.ts";

const N = Number(Deno.args[0] ?? 200);
const CONCURRENCY = Number(Deno.args[1] ?? 8);
const RESPONSE =
  "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 14\r\nconnection: close\r\n\r\nhello via tls\n";

type Method = "tlssocket" | "emit";

/** Serves one TLS socket: waits for a request head, answers, closes. */
function serveHttp(ts: tls.TLSSocket) {
  let got = "";
  ts.on("data", (d: Buffer) => {
    got += d.toString("latin1");
    if (got.includes("\r\n\r\n")) ts.end(RESPONSE);
  });
  ts.on("error", () => {});
}

/** The proxy side: a node:net listener doing CONNECT, peek, upgrade with `method`. */
function startProxy(store: CertStore, method: Method): Promise<net.Server> {
  const SNICallback = (name: string, cb: (e: Error | null, c?: tls.SecureContext) => void) =>
    cb(null, store.getCert({ commonName: name || "localhost", sans: [name || "localhost"] }).secureContext);
  const tlsServer = tls.createServer({ SNICallback, ALPNProtocols: ["http/1.1"] });
  tlsServer.on("secureConnection", serveHttp);
  tlsServer.on("tlsClientError", (e) => console.error("tlsClientError", e.message));
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let connected = false;
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!connected) {
        const i = buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        if (!buf.subarray(0, i).toString("latin1").startsWith("CONNECT ")) return void sock.destroy();
        buf = buf.subarray(i + 4);
        connected = true;
        sock.write("HTTP/1.1 200 Connection established\r\n\r\n");
      }
      const hello = parseClientHello(buf);
      if (hello === "need-more") return;
      sock.removeListener("data", onData);
      if (method === "emit") {
        sock.pause();
        sock.unshift(buf);
        tlsServer.emit("connection", sock);
      } else {
        upgradeToServerTls(sock, buf, { SNICallback, ALPNProtocols: ["http/1.1"] }).then(
          serveHttp,
          (e) => console.error("upgrade failed:", e.message),
        );
      }
    };
    sock.on("data", onData);
    sock.on("error", () => {});
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** One client connection: CONNECT, TLS handshake (verified against `caPem`), GET, read to the end. */
function clientOnce(port: number, host: string, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(
      port,
      "127.0.0.1",
      () => sock.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`),
    );
    sock.on("error", reject);
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      sock.removeListener("data", onData);
      sock.pause();
      const ts = tls.connect(
        { socket: sock, servername: host, ca: caPem, ALPNProtocols: ["http/1.1"] },
        () => {
          if (ts.alpnProtocol !== "http/1.1") reject(new Error(`ALPN ${ts.alpnProtocol}`));
          ts.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
        },
      );
      let body = "";
      ts.on("data", (c: Buffer) => (body += c.toString("latin1")));
      ts.on("end", () => resolve(body));
      ts.on("error", reject);
    };
    sock.on("data", onData);
  });
}

async function loop(port: number, caPem: string, hosts: (i: number) => string): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) {
      const i = next++;
      const body = await clientOnce(port, hosts(i), caPem);
      if (!body.endsWith("hello via tls\n")) throw new Error(`bad response: ${body}`);
    }
  }));
  return N / ((performance.now() - t) / 1000);
}

const dir = await Deno.makeTempDir({ prefix: "mitmdeno-upgrade-spike-" });
try {
  const ca = await loadOrCreateCA(dir);
  // 1. curl through the proxy, verifying against the CA
  {
    const store = new CertStore(ca);
    const server = await startProxy(store, "tlssocket");
    const port = (server.address() as net.AddressInfo).port;
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--max-time",
        "5",
        "--proxy",
        `http://127.0.0.1:${port}`,
        "--cacert",
        ca.paths.certPem,
        "https://example.test/",
      ],
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    console.log(`curl via proxy: exit ${out.code}: ${JSON.stringify(text)}`);
    server.close();
  }
  // 2. handshake rates
  for (const leafKey of ["ec", "rsa"] as LeafKeyType[]) {
    for (const method of ["tlssocket", "emit"] as Method[]) {
      const store = new CertStore(ca, { leafKey });
      const server = await startProxy(store, method);
      const port = (server.address() as net.AddressInfo).port;
      await loop(port, ca.certPem, (i) => `h${i % 10}.example.test`); // warm-up, fills the cache
      const cached = await loop(port, ca.certPem, (i) => `h${i % 10}.example.test`);
      const fresh = await loop(port, ca.certPem, (i) => `n${i}-${leafKey}-${method}.example.test`);
      console.log(
        `leaf ${leafKey.padEnd(3)} ${method.padEnd(9)}: ${cached.toFixed(0)} conn/s (10 cached hosts), ` +
          `${fresh.toFixed(0)} conn/s (new host each)  [${N} x CONNECT+TLS+GET, ${CONCURRENCY} in flight]`,
      );
      await new Promise((r) => server.close(r));
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
