/**
 * Helpers for the HTTPS interception tests: an HTTPS origin with its own self-signed CA (CN
 * "testorigin", so it is told apart from mitmdeno's), and a raw TLS client through a proxy's CONNECT.
 */
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { type CertAuthority, loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";

/** A running HTTPS origin. */
export interface HttpsOrigin {
  port: number;
  /** The origin's CA certificate file (trust it to verify the origin). */
  caFile: string;
  ca: CertAuthority;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Requests served so far. */
  readonly requests: number;
  close(): Promise<void>;
}

/**
 * Start an HTTPS origin on 127.0.0.1 with a leaf for localhost and 127.0.0.1 (O "Origin Org").
 * It answers `hello <path> host=<Host>` with an `x-origin: yes` header, and `/page` with HTML.
 */
export async function startHttpsOrigin(dir: string): Promise<HttpsOrigin> {
  const ca = await loadOrCreateCA(`${dir}/origin-ca`, { basename: "testorigin" });
  const leaf = new CertStore(ca, { secureContext: false }).getCert({
    commonName: "localhost",
    sans: ["localhost", "127.0.0.1"],
    organization: "Origin Org",
  });
  const state = { connections: 0, requests: 0 };
  const sockets = new Set<net.Socket>();
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.chainPem }, (req, res) => {
    state.requests++;
    res.setHeader("x-origin", "yes");
    if (req.url === "/page") {
      res.setHeader("content-type", "text/html");
      res.end(
        `<html><head><title>origin page</title></head><body><p id="msg">hello from the origin</p></body></html>`,
      );
      return;
    }
    res.setHeader("content-type", "text/plain");
    res.end(`hello ${req.url} host=${req.headers.host}\n`);
  });
  server.on("connection", (s: net.Socket) => {
    state.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    caFile: ca.paths.certPem,
    ca,
    get connections() {
      return state.connections;
    },
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Open a CONNECT tunnel through the proxy; resolves with the raw socket after the 200. */
export function connectTunnel(proxyPort: number, target: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, "127.0.0.1");
    let buf = "";
    const onData = (d: Uint8Array) => {
      buf += new TextDecoder("latin1").decode(d);
      const i = buf.indexOf("\r\n\r\n");
      if (i < 0) return;
      s.off("data", onData);
      if (!/^HTTP\/1\.1 200/.test(buf)) {
        s.destroy();
        reject(new Error(`CONNECT failed: ${buf}`));
      } else resolve(s);
    };
    s.on("data", onData);
    s.on("error", reject);
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** The certificate a TLS client sees through a CONNECT tunnel to `target` (no verification). */
export async function peerCertThrough(
  proxyPort: number,
  target: string,
  servername: string,
): Promise<tls.PeerCertificate> {
  const raw = await connectTunnel(proxyPort, target);
  return await new Promise((resolve, reject) => {
    const s = tls.connect({ socket: raw, servername, rejectUnauthorized: false });
    s.once("secureConnect", () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve(c);
    });
    s.once("error", reject);
  });
}

/** Capture a real ClientHello (the first bytes a node:tls client sends). */
export function captureClientHello(servername = "localhost"): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const server = net.createServer((sock) => {
      sock.once("data", (d: Uint8Array) => {
        sock.destroy();
        server.close();
        resolve(new Uint8Array(d));
      });
      sock.on("error", () => {});
    });
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      const c = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
      c.on("error", () => {});
    });
  });
}

/** Count the non-overlapping matches of `re` in `s`. */
export function count(s: string, re: RegExp): number {
  return [...s.matchAll(new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g"))].length;
}

/** An HTTPS (HTTP/1.1) origin whose `/upload` reads nothing of its body until released. */
export interface StalledUploadOrigin {
  port: number;
  caFile: string;
  /** Resolves once the head of an `/upload` request arrived (its body is not read). */
  uploadStarted: Promise<void>;
  /** Let the upload be read: the origin then answers `received <bytes>`. */
  release(): void;
  close(): Promise<void>;
}

/**
 * Start an HTTPS origin (Deno.listenTls, HTTP/1.1 only, its own CA) that answers any request `fast <path>`
 * at once, except `/upload` (with a Content-Length), whose body it leaves unread until {@link
 * StalledUploadOrigin.release}: nothing reads the TLS connection meanwhile, so the sender's socket fills up
 * (a node:tls server would read and decrypt on regardless of `pause()`).
 */
export async function startStalledUploadOrigin(dir: string): Promise<StalledUploadOrigin> {
  const ca = await loadOrCreateCA(`${dir}/stalled-ca`, { basename: "stalledorigin" });
  const leaf = new CertStore(ca, { secureContext: false }).getCert({
    commonName: "localhost",
    sans: ["localhost", "127.0.0.1"],
  });
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: leaf.chainPem,
    key: leaf.keyPem,
    alpnProtocols: ["http/1.1"],
  });
  const conns = new Set<Deno.TlsConn>();
  let started!: () => void;
  const uploadStarted = new Promise<void>((r) => (started = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const enc = new TextEncoder();
  const serve = async (conn: Deno.TlsConn) => {
    const buf = new Uint8Array(64 * 1024);
    let head = "";
    let rest = 0; // body bytes read along with the head
    // at most 64 reads for a head (requests here are small)
    for (let i = 0; i < 64 && !head.includes("\r\n\r\n"); i++) {
      const n = await conn.read(buf);
      if (n === null) return;
      head += new TextDecoder("latin1").decode(buf.subarray(0, n));
    }
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) return;
    rest = head.length - end - 4;
    const path = head.split(" ")[1];
    let body = `fast ${path}`;
    if (path === "/upload") {
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      started();
      await released;
      let got = rest;
      // bounded: each read returns at least one byte until the body is complete
      for (let i = 0; i < length + 1 && got < length; i++) {
        const n = await conn.read(buf);
        if (n === null) break;
        got += n;
      }
      body = `received ${got}`;
    }
    await conn.write(
      enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`),
    );
  };
  const accepting = (async () => {
    // bounded: the tests here make a handful of connections; the loop ends when the listener closes
    for (let i = 0; i < 256; i++) {
      const conn = await listener.accept();
      conns.add(conn);
      serve(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    caFile: ca.paths.certPem,
    uploadStarted,
    release,
    async close() {
      release();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}
