/**
 * Helpers for the HTTP/2 tests: a node:http2 TLS origin (h2 only, or h2 and HTTP/1.1) with its own CA,
 * answering by path: `/` and others echo method, path, authority and the protocol version; `/trailers`
 * answers with a gRPC-style `grpc-status` trailer and echoes request trailers; `/big?n=BYTES` sends that
 * many bytes; `/upload` counts the request body; `/page30` is a page with 30 images `/img/N.svg`.
 */
import http2 from "node:http2";
import type net from "node:net";
import { type CertAuthority, loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";

/** A running HTTP/2 origin. */
export interface H2Origin {
  port: number;
  caFile: string;
  ca: CertAuthority;
  /** Sessions (connections) accepted, streams served, streams reset by the peer. */
  readonly sessions: number;
  readonly streams: number;
  readonly resets: number;
  /** The request trailers of the last `/trailers` request. */
  readonly lastTrailers: Record<string, string> | null;
  close(): Promise<void>;
}

/** Start an HTTP/2 origin on 127.0.0.1 (`allowHttp1`: also serve HTTP/1.1 clients). */
export async function startH2Origin(dir: string, opts: { allowHttp1?: boolean } = {}): Promise<H2Origin> {
  const ca = await loadOrCreateCA(`${dir}/h2origin-ca`, { basename: "testorigin" });
  const leaf = new CertStore(ca, { secureContext: false }).getCert({
    commonName: "localhost",
    sans: ["localhost", "127.0.0.1"],
  });
  const state = { sessions: 0, streams: 0, resets: 0, lastTrailers: null as Record<string, string> | null };
  const server = http2.createSecureServer({
    key: leaf.keyPem,
    cert: leaf.chainPem,
    allowHTTP1: !!opts.allowHttp1,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("session", (s) => {
    state.sessions++;
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("tlsClientError", () => {});
  server.on("stream", (stream, headers) => {
    state.streams++;
    stream.on("error", () => {});
    stream.on("aborted", () => state.resets++);
    const path = String(headers[":path"]);
    const url = new URL(path, "https://x");
    if (url.pathname === "/trailers") {
      const chunks: Uint8Array[] = [];
      stream.on("data", (c: Uint8Array) => chunks.push(c));
      stream.on("trailers", (t: Record<string, string>) => (state.lastTrailers = { ...t }));
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "ok" }));
        stream.end(`got ${chunks.reduce((n, c) => n + c.length, 0)} bytes`);
      });
      return;
    }
    if (url.pathname === "/big") {
      const n = Number(url.searchParams.get("n") ?? "1000000");
      stream.respond({
        ":status": 200,
        "content-type": "application/octet-stream",
        "content-length": String(n),
      });
      const block = new Uint8Array(64 * 1024).fill(120);
      let left = n;
      const pump = () => {
        while (left > 0) {
          const part = left >= block.length ? block : block.subarray(0, left);
          left -= part.length;
          if (!stream.write(part)) return void stream.once("drain", pump);
        }
        stream.end();
      };
      pump();
      return;
    }
    if (url.pathname === "/upload") {
      let n = 0;
      stream.on("data", (c: Uint8Array) => (n += c.length));
      stream.on("end", () => {
        stream.respond({ ":status": 200 });
        stream.end(`received ${n}`);
      });
      return;
    }
    if (url.pathname === "/page30") {
      const imgs = Array.from({ length: 30 }, (_, i) => `<img src="/img/${i}.svg" width="8" height="8">`)
        .join("");
      stream.respond({ ":status": 200, "content-type": "text/html" });
      stream.end(`<!doctype html><html><head><title>thirty</title></head><body>${imgs}</body></html>`);
      return;
    }
    if (url.pathname.startsWith("/img/")) {
      stream.respond({ ":status": 200, "content-type": "image/svg+xml" });
      stream.end(
        `<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>`,
      );
      return;
    }
    if (url.pathname === "/slow") {
      stream.respond({ ":status": 200 });
      stream.write("first part\n");
      return; // never ends: the client resets it
    }
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "text/plain", "x-origin": "h2" });
      stream.end(
        `hello ${headers[":method"]} ${path} authority=${
          headers[":authority"]
        } version=${stream.session?.alpnProtocol}\n`,
      );
      if (url.pathname === "/goaway") {
        setTimeout(() => {
          stream.session?.goaway(0);
          stream.session?.close();
        }, 10);
      }
    });
  });
  // HTTP/1.1 requests (allowHTTP1)
  server.on("request", (req, res) => {
    if (req.httpVersion === "2.0") return;
    res.setHeader("content-type", "text/plain");
    res.end(`hello ${req.method} ${req.url} host=${req.headers.host} version=http/1.1\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    caFile: ca.paths.certPem,
    ca,
    get sessions() {
      return state.sessions;
    },
    get streams() {
      return state.streams;
    },
    get resets() {
      return state.resets;
    },
    get lastTrailers() {
      return state.lastTrailers;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        for (const s of sockets) s.destroy();
        server.close(() => r());
        setTimeout(r, 500);
      }),
  };
}
