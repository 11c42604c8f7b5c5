import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { type CertAuthority, loadOrCreateCA } from "../../../lib/tls/ca.ts";
import { CertStore } from "../../../lib/tls/certs.ts";
import { type ClientHello, parseClientHello } from "../../../lib/tls/clienthello.ts";
import { type ServerTlsOptions, upgradeToServerTls } from "../../../lib/tls/upgrade.ts";

let tmp: string | undefined;
let caPromise: Promise<CertAuthority> | undefined;
const getCA = () =>
  caPromise ??= Deno.makeTempDir({ prefix: "mitmdeno-upgrade-test-" }).then((d) => loadOrCreateCA(tmp = d));

interface Upgraded {
  result: Promise<tls.TLSSocket>;
  hello: ClientHello;
}

/**
 * A proxy-like node:net server: reads CONNECT, answers 200, peeks the ClientHello, then calls
 * upgradeToServerTls with `opts(hello)`. Each accepted connection is reported through `onUpgrade`.
 */
async function proxy(
  opts: (hello: ClientHello) => ServerTlsOptions,
  onUpgrade: (u: Upgraded) => void,
  { peekClientHello = true } = {},
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    let buf = Buffer.alloc(0);
    let connected = false;
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!connected) {
        const i = buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        buf = buf.subarray(i + 4);
        connected = true;
        sock.write("HTTP/1.1 200 Connection established\r\n\r\n");
        if (!peekClientHello) {
          sock.removeListener("data", onData);
          const dummy: ClientHello = {
            alpnProtocols: [],
            cipherSuites: [],
            extensions: [],
            legacyVersion: 0,
            recordBytes: 0,
          };
          onUpgrade({ result: upgradeToServerTls(sock, buf, opts(dummy)), hello: dummy });
          return;
        }
      }
      const hello = parseClientHello(buf);
      if (hello === "need-more") return;
      sock.removeListener("data", onData);
      onUpgrade({ result: upgradeToServerTls(sock, buf, opts(hello)), hello });
    };
    sock.on("data", onData);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** CONNECT through the proxy, then a TLS client over the tunnel. */
function connectThrough(port: number, target: string, opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.write(`CONNECT ${target} HTTP/1.1\r\n\r\n`));
    sock.on("error", reject);
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      sock.removeListener("data", onData);
      sock.pause();
      const ts = tls.connect({ socket: sock, ...opts }, () => resolve(ts));
      ts.on("error", reject);
    };
    sock.on("data", onData);
  });
}

function readUntil(s: tls.TLSSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const on = (d: Buffer) => {
      got += d.toString("utf8");
      if (got.includes(text)) {
        s.removeListener("data", on);
        resolve(got);
      }
    };
    s.on("data", on);
  });
}

Deno.test("upgradeToServerTls: SNI-selected leaf, ALPN, data both ways", async () => {
  const ca = await getCA();
  const store = new CertStore(ca);
  const upgrades: Upgraded[] = [];
  const p = await proxy(() => ({
    SNICallback: (name, cb) => cb(null, store.getCert({ commonName: name, sans: [name] }).secureContext),
    ALPNProtocols: ["http/1.1"],
  }), (u) => upgrades.push(u));
  try {
    const client = await connectThrough(p.port, "example.test:443", {
      servername: "example.test",
      ca: ca.certPem,
      ALPNProtocols: ["h2", "http/1.1"],
    });
    assert.equal(client.authorized, true);
    assert.equal(client.alpnProtocol, "http/1.1");
    assert.equal(client.getPeerCertificate().subject.CN, "example.test");
    const server = await upgrades[0].result;
    assert.equal(upgrades[0].hello.sni, "example.test");
    assert.equal((server as tls.TLSSocket & { servername?: string }).servername, "example.test");
    assert.equal(server.alpnProtocol, "http/1.1");
    const got = readUntil(server, "ping\n");
    client.write("ping\n");
    assert.equal(await got, "ping\n");
    const back = readUntil(client, "pong\n");
    server.write("pong\n");
    assert.equal(await back, "pong\n");
    client.destroy();
    server.destroy();
  } finally {
    await p.close();
  }
});

Deno.test("upgradeToServerTls: peeked SNI picks a fixed secureContext; a client without SNI", async () => {
  const ca = await getCA();
  const store = new CertStore(ca);
  const upgrades: Upgraded[] = [];
  const p = await proxy((hello) => {
    const name = hello.sni ?? "127.0.0.1";
    return { secureContext: store.getCert({ commonName: name, sans: [name] }).secureContext };
  }, (u) => upgrades.push(u));
  try {
    // node:tls sends no SNI for an IP servername; verify the IP SAN instead
    const client = await connectThrough(p.port, "127.0.0.1:443", { host: "127.0.0.1", ca: ca.certPem });
    assert.equal(client.authorized, true);
    assert.equal(upgrades[0].hello.sni, undefined);
    const server = await upgrades[0].result;
    client.destroy();
    server.destroy();
  } finally {
    await p.close();
  }
});

Deno.test("upgradeToServerTls: ALPN selector function sees the offers", async () => {
  const ca = await getCA();
  const store = new CertStore(ca);
  const upgrades: Upgraded[] = [];
  const seen: { servername: string; protocols: string[] }[] = [];
  const p = await proxy((hello) => ({
    secureContext: store.getCert({ sans: [hello.sni!] }).secureContext,
    ALPNProtocols: (arg) => {
      seen.push(arg);
      return arg.protocols.includes("h2") ? "h2" : undefined;
    },
  }), (u) => upgrades.push(u));
  try {
    const client = await connectThrough(p.port, "a.test:443", {
      servername: "a.test",
      ca: ca.certPem,
      ALPNProtocols: ["h2", "http/1.1"],
    });
    assert.equal(client.alpnProtocol, "h2");
    assert.deepEqual(seen, [{ servername: "a.test", protocols: ["h2", "http/1.1"] }]);
    (await upgrades[0].result).destroy();
    client.destroy();
  } finally {
    await p.close();
  }
});

Deno.test("upgradeToServerTls rejects when the client refuses the certificate", async () => {
  const ca = await getCA();
  const store = new CertStore(ca);
  const upgrades: Upgraded[] = [];
  const p = await proxy(() => ({
    SNICallback: (name, cb) => cb(null, store.getCert({ sans: [name] }).secureContext),
  }), (u) => upgrades.push(u));
  try {
    // the client trusts only the system store, not our CA
    await assert.rejects(connectThrough(p.port, "example.test:443", { servername: "example.test" }));
    await assert.rejects(upgrades[0].result, /UnknownCA|unknown ca/i);
  } finally {
    await p.close();
  }
});

Deno.test("upgradeToServerTls rejects on a handshake timeout", async () => {
  const upgrades: Upgraded[] = [];
  const p = await proxy(() => ({ handshakeTimeout: 100 }), (u) => upgrades.push(u), {
    peekClientHello: false,
  });
  const sock = net.connect(
    p.port,
    "127.0.0.1",
    () => sock.write("CONNECT example.test:443 HTTP/1.1\r\n\r\n"),
  );
  sock.on("error", () => {});
  try {
    while (!upgrades.length) await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(upgrades[0].result, /timed out after 100 ms/);
  } finally {
    sock.destroy();
    await p.close();
  }
});

Deno.test("cleanup upgrade test CA", async () => {
  if (tmp) await Deno.remove(tmp, { recursive: true });
});
