/**
 * Several modes in one process: reverse tcp and tls (plain and TLS clients, client-first and server-first
 * protocols) next to regular, SOCKS5 and reverse http listeners, all serving at the same time, each flow
 * tagged with the mode it came through.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { curl, rawExchange, runCli, startInProcess, startOrigin, startProxy } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { freePort } from "./modes_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import type { HTTPFlow } from "../../lib/flow/flow.ts";

/** A TLS client to 127.0.0.1:port that sends `text` and collects the answer until `until` matches. */
function tlsExchange(port: number, ca: string, text: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { host: "127.0.0.1", port, servername: "localhost", ca: Deno.readTextFileSync(ca) },
      () => {
        s.write(text);
      },
    );
    let got = "";
    const t = setTimeout(() => s.destroy(), 8000);
    s.on("data", (d: Uint8Array) => {
      got += new TextDecoder().decode(d);
      if (until.test(got)) s.end();
    });
    s.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on("close", () => {
      clearTimeout(t);
      resolve(got);
    });
  });
}

Deno.test("modes: reverse tcp and tls next to each other, plain and TLS clients, server-first protocols", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-reverse-tcp-" });
  const echo = net.createServer((s) => {
    s.on("data", (d) => s.write(d));
    s.on("end", () => s.end());
    s.on("error", () => {});
  });
  const banner = net.createServer((s) => {
    s.write("220 banner\r\n");
    s.on("data", (d) => s.write(`got ${new TextDecoder().decode(d)}`));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  await new Promise<void>((r) => banner.listen(0, "127.0.0.1", r));
  const echoPort = (echo.address() as net.AddressInfo).port;
  const bannerPort = (banner.address() as net.AddressInfo).port;
  const origin = await startHttpsOrigin(dir);
  const flows: HTTPFlow[] = [];
  const modes = [
    `reverse:tcp://127.0.0.1:${echoPort}@0`,
    `reverse:tcp://127.0.0.1:${bannerPort}@0`,
    `reverse:tls://localhost:${origin.port}@0`,
    `reverse:https://localhost:${origin.port}@0`,
  ];
  const proxy = await startInProcess(
    [new TlsConfig(), { name: "rec", response: (f: HTTPFlow) => void flows.push(f) }],
    [
      `confdir=${dir}/conf`,
      `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
      ...modes.map((m) => `mode=${m}`),
    ],
  );
  const server = proxy.master.addons.get("proxyserver") as {
    listenAddresses: { mode: string; port: number }[];
  };
  const deadline = Date.now() + 10000;
  while (server.listenAddresses.length < modes.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const port = (m: string) => server.listenAddresses.find((a) => a.mode === m)!.port;
  const ca = `${dir}/conf/mitmdeno-ca-cert.pem`;
  try {
    for (const m of modes) {
      assert.ok(
        proxy.logs.some((l) => l.includes(`reverse proxy to ${m.slice(8, -2)} listening at`)),
        proxy.logs.join("\n"),
      );
    }
    // tcp, a plain client: bytes both ways, a half-close goes through
    assert.equal(
      await rawExchange(port(modes[0]), new Uint8Array([112, 105, 110, 103, 0, 255])),
      "ping\x00\xff",
    );
    // tcp, a TLS client: we terminate TLS, the echo server gets the plain bytes
    assert.equal(await tlsExchange(port(modes[0]), ca, "over tls", /over tls/), "over tls");
    // tcp, server first: the banner comes without the client saying anything
    const t0 = Date.now();
    const b = await new Promise<string>((resolve) => {
      const s = net.connect(port(modes[1]), "127.0.0.1");
      let got = "";
      s.on("data", (d: Uint8Array) => {
        got += new TextDecoder().decode(d);
        if (got === "220 banner\r\n") s.write("HELO x\r\n");
        if (got.includes("got HELO")) s.destroy();
      });
      s.on("close", () => resolve(got));
    });
    assert.equal(b, "220 banner\r\ngot HELO x\r\n");
    assert.ok(Date.now() - t0 < 2500, "the banner did not wait for the client-first timeout");
    // tls, a plain client: we speak TLS to the origin, raw bytes inside
    const plainOverTls = await rawExchange(
      port(modes[2]),
      "GET /raw HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert.match(plainOverTls, /^HTTP\/1.1 200 OK\r\n(.|\r\n)*hello \/raw host=localhost/);
    // tls, a TLS client: TLS on both sides, bytes relayed (no HTTP flow)
    const both = await tlsExchange(
      port(modes[2]),
      ca,
      "GET /both HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
      /hello \/both/,
    );
    assert.match(both, /hello \/both host=localhost/);
    // https: an HTTP flow, tagged with its mode
    const r = await curl([
      "--cacert",
      ca,
      "--resolve",
      `localhost:${port(modes[3])}:127.0.0.1`,
      `https://localhost:${port(modes[3])}/h`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.body, `hello /h host=localhost:${origin.port}\n`);
    assert.deepEqual(flows.map((f) => f.clientConn.proxyMode), [modes[3]]);
  } finally {
    await proxy.stop();
    await new Promise((r) => echo.close(r));
    await new Promise((r) => banner.close(r));
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("modes: regular, socks5 and reverse on three ports of one mitmdeno process, serving at the same time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-multi-" });
  const origin = startOrigin((req) => new Response(`origin ${new URL(req.url).pathname}`));
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const proxy = await startProxy([
    "--set",
    `confdir=${dir}/conf`,
    "--mode",
    `regular@127.0.0.1:${p1}`,
    "--mode",
    `socks5@127.0.0.1:${p2}`,
    "--mode",
    `reverse:http://127.0.0.1:${origin.port}@127.0.0.1:${p3}`,
  ]);
  try {
    await proxy.waitFor(
      new RegExp(`reverse proxy to http://127.0.0.1:${origin.port} listening at 127.0.0.1:${p3}`),
    );
    assert.match(proxy.output(), new RegExp(`HTTP\\(S\\) proxy listening at 127.0.0.1:${p1}\\.`));
    assert.match(proxy.output(), new RegExp(`SOCKS v5 proxy listening at 127.0.0.1:${p2}\\.`));
    const rounds = 3;
    const runs: Promise<void>[] = [];
    for (let i = 0; i < rounds; i++) {
      runs.push(
        curl(["-x", `http://127.0.0.1:${p1}`, `${origin.url}/regular${i}`]).then((r) =>
          assert.equal(r.body, `origin /regular${i}`, r.stderr)
        ),
        curl(["--socks5-hostname", `127.0.0.1:${p2}`, `${origin.url}/socks${i}`]).then((r) =>
          assert.equal(r.body, `origin /socks${i}`, r.stderr)
        ),
        curl([`http://127.0.0.1:${p3}/reverse${i}`]).then((r) =>
          assert.equal(r.body, `origin /reverse${i}`, r.stderr)
        ),
      );
    }
    await Promise.all(runs);
    for (let i = 0; i < rounds; i++) {
      for (const what of ["regular", "socks", "reverse"]) {
        assert.match(proxy.output(), new RegExp(`GET http://127.0.0.1:${origin.port}/${what}${i}`));
      }
    }
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("modes: a mode mitmdeno does not run, or a bad target, is refused at start naming what works", async () => {
  const cases: [string, RegExp][] = [
    [
      "wireguard",
      /Option "mode": wireguard mode is not supported by mitmdeno \(supported: regular, upstream:URL, socks5, transparent, reverse:URL\)/,
    ],
    [
      "reverse:udp://1.1.1.1:53",
      /reverse proxy scheme "udp" runs over UDP, which mitmdeno does not serve \(allowed: http, https, tls, tcp\)/,
    ],
    ["reverse:tcp://db.local", /a port is required for scheme tcp/],
    ["upstream:socks5://p:1080", /invalid scheme "socks5" \(allowed: http, https\)/],
    ["socks5:x", /mode socks5 takes no arguments/],
  ];
  for (const [mode, re] of cases) {
    const r = await runCli(["--mode", mode, "-p", "0"]);
    assert.equal(r.code, 1, `${mode}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, re);
  }
});
