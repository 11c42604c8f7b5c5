/**
 * SOCKS5 mode with real clients: curl --socks5 (addresses resolved by curl) and --socks5-hostname (names
 * sent to the proxy) for HTTP and HTTPS, with and without username/password (proxyauth), a raw TCP
 * protocol through SOCKS5, and headless Chromium with --proxy-server=socks5://.
 */
import assert from "node:assert/strict";
import { CHROMIUM_ARGS } from "./web_helpers.ts";
import net from "node:net";
import { curl, type InProcessProxy, startInProcess, startOrigin } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import { ProxyAuth } from "../../addons/proxyauth.ts";
import type { HTTPFlow } from "../../lib/flow/flow.ts";

function socksProxy(
  dir: string,
  caFile: string,
  extra: object[],
  sets: string[] = [],
): Promise<InProcessProxy> {
  return startInProcess([new TlsConfig(), new ProxyAuth(), ...extra], [
    `confdir=${dir}/conf`,
    "mode=socks5",
    `ssl_verify_upstream_trusted_ca=${caFile}`,
    ...sets,
  ]);
}

Deno.test("socks5: curl --socks5 and --socks5-hostname, HTTP and HTTPS (intercepted), flows tagged socks5", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-socks5-" });
  const plain = startOrigin((req) =>
    new Response(`plain ${new URL(req.url).pathname} host=${req.headers.get("host")}`)
  );
  const tlsOrigin = await startHttpsOrigin(dir);
  const flows: HTTPFlow[] = [];
  const proxy = await socksProxy(dir, tlsOrigin.caFile, [{
    name: "rec",
    response: (f: HTTPFlow) => void flows.push(f),
  }]);
  try {
    assert.ok(
      proxy.logs.some((l) => /SOCKS v5 proxy listening at 127\.0\.0\.1:\d+/.test(l)),
      proxy.logs.join("\n"),
    );
    const ca = ["--cacert", `${dir}/conf/mitmdeno-ca-cert.pem`];
    for (const flag of ["--socks5", "--socks5-hostname"]) {
      const r = await curl([flag, `127.0.0.1:${proxy.port}`, `http://localhost:${plain.port}/a`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.body, `plain /a host=localhost:${plain.port}`);
      const s = await curl([...ca, flag, `127.0.0.1:${proxy.port}`, `https://localhost:${tlsOrigin.port}/x`]);
      assert.equal(s.code, 0, s.stderr);
      assert.equal(s.body, `hello /x host=localhost:${tlsOrigin.port}\n`);
    }
    assert.equal(flows.length, 4);
    for (const f of flows) assert.equal(f.clientConn.proxyMode, "socks5");
    // --socks5: curl resolved the name (an IP went to the proxy); --socks5-hostname: the name itself
    assert.match(flows[0].serverConn.address![0], /^(127\.0\.0\.1|::1)$/);
    assert.equal(flows[2].serverConn.address![0], "localhost");
    assert.equal(flows[3].serverConn.tls, true);
    assert.equal(flows[3].clientConn.sni, "localhost");
    // IPv6 literal destination
    const v6 = await new Promise<boolean>((r) => {
      const s = net.createServer().listen(0, "::1", () => s.close(() => r(true))).on("error", () => r(false));
    });
    if (v6) {
      const o6 = Deno.serve({ hostname: "::1", port: 0, onListen() {} }, () => new Response("v6"));
      try {
        const r = await curl(["--socks5", `127.0.0.1:${proxy.port}`, `http://[::1]:${o6.addr.port}/`]);
        assert.equal(r.body, "v6", r.stderr);
        assert.equal(flows.at(-1)!.serverConn.address![0], "::1");
      } finally {
        await o6.shutdown();
      }
    }
  } finally {
    await proxy.stop();
    await plain.close();
    await tlsOrigin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("socks5: username/password from proxyauth: right credentials pass, wrong ones and none are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-socks5-auth-" });
  const plain = startOrigin(() => new Response("ok"));
  const tlsOrigin = await startHttpsOrigin(dir);
  const proxy = await socksProxy(dir, tlsOrigin.caFile, [], ["proxyauth=user:secret"]);
  try {
    const ok = await curl(["-x", `socks5h://user:secret@127.0.0.1:${proxy.port}`, `${plain.url}/`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.body, "ok");
    const s = await curl([
      "--cacert",
      `${dir}/conf/mitmdeno-ca-cert.pem`,
      "-x",
      `socks5://user:secret@127.0.0.1:${proxy.port}`,
      `https://localhost:${tlsOrigin.port}/x`,
    ]);
    assert.equal(s.code, 0, s.stderr);
    const bad = await curl(["-x", `socks5h://user:wrong@127.0.0.1:${proxy.port}`, `${plain.url}/`]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /authentication failed|User was rejected/i);
    const none = await curl(["-x", `socks5h://127.0.0.1:${proxy.port}`, `${plain.url}/`]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /No authentication method was acceptable|authentication/i);
    assert.ok(
      proxy.logs.some((l) => /SOCKS5 authentication failed for user "user"/.test(l)),
      proxy.logs.join("\n"),
    );
  } finally {
    await proxy.stop();
    await plain.close();
    await tlsOrigin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A raw SOCKS5 client: greeting, CONNECT to 127.0.0.1:port, then returns the socket (and the reply). */
function socksConnect(
  proxyPort: number,
  request: number[],
): Promise<{ socket: net.Socket; reply: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, "127.0.0.1");
    let buf = new Uint8Array(0);
    let stage = 0;
    s.on("error", reject);
    s.on("data", (d: Uint8Array) => {
      const b = new Uint8Array(buf.length + d.length);
      b.set(buf);
      b.set(d, buf.length);
      buf = b;
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        stage = 1;
        s.write(new Uint8Array(request));
      }
      if (stage === 1 && buf.length >= 10) {
        stage = 2;
        s.removeAllListeners("data");
        const reply = buf.subarray(0, 10);
        if (buf.length > 10) s.unshift(buf.subarray(10));
        resolve({ socket: s, reply });
      }
    });
    s.on("close", () => stage < 2 && resolve({ socket: s, reply: buf }));
    s.write(new Uint8Array([5, 1, 0]));
  });
}

Deno.test("socks5: a raw TCP protocol (server speaks first, then echo) relays both ways; BIND is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-socks5-tcp-" });
  const echo = net.createServer((s) => {
    s.write("HELLO\n");
    s.on("data", (d) => s.write(d));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const port = (echo.address() as net.AddressInfo).port;
  const proxy = await socksProxy(dir, "/dev/null", []).catch(() =>
    startInProcess([new TlsConfig()], [`confdir=${dir}/conf`, "mode=socks5"])
  );
  try {
    const { socket, reply } = await socksConnect(proxy.port, [
      5,
      1,
      0,
      1,
      127,
      0,
      0,
      1,
      port >> 8,
      port & 255,
    ]);
    assert.deepEqual([...reply], [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let got = "";
    const done = new Promise<void>((r) => {
      socket.on("data", (d: Uint8Array) => {
        got += new TextDecoder().decode(d);
        if (got === "HELLO\n") socket.write("\x00\x01binary\xff");
        if (got.endsWith("binary\xff") || got.length > 100) r();
      });
    });
    await Promise.race([done, new Promise((r) => setTimeout(r, 10000))]);
    socket.destroy();
    assert.equal(got, "HELLO\n\x00\x01binary\xff");
    const bind = await socksConnect(proxy.port, [5, 2, 0, 1, 127, 0, 0, 1, 0, 80]);
    assert.deepEqual([...bind.reply], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    bind.socket.destroy();
    const udp = await socksConnect(proxy.port, [5, 3, 0, 1, 127, 0, 0, 1, 0, 80]);
    assert.deepEqual([...udp.reply], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    udp.socket.destroy();
    // a port nobody listens on: connection refused (0x05)
    const closedPort = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    const refused = await socksConnect(proxy.port, [
      5,
      1,
      0,
      1,
      127,
      0,
      0,
      1,
      closedPort >> 8,
      closedPort & 255,
    ]);
    assert.deepEqual([...refused.reply], [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    refused.socket.destroy();
  } finally {
    await proxy.stop();
    await new Promise((r) => echo.close(r));
    await Deno.remove(dir, { recursive: true });
  }
});

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "socks5: headless Chromium with --proxy-server=socks5:// loads an HTTPS page through the proxy",
  ignore: !haveChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { chromium } = await import("npm:playwright-core@1.65.1");
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-socks5-chromium-" });
    const origin = await startHttpsOrigin(dir);
    const seen: string[] = [];
    const tlsconfig = new TlsConfig();
    const proxy = await startInProcess([tlsconfig, {
      name: "rewrite",
      response(f: HTTPFlow) {
        seen.push(f.request.prettyUrl);
        if (f.response?.headers.get("content-type")?.startsWith("text/html")) {
          f.response.text = (f.response.text ?? "").replace("hello from the origin", "changed over socks5");
        }
      },
    }], [`confdir=${dir}/conf`, "mode=socks5", `ssl_verify_upstream_trusted_ca=${origin.caFile}`]);
    const browser = await chromium.launchPersistentContext(`${dir}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        ...CHROMIUM_ARGS,
        `--proxy-server=socks5://127.0.0.1:${proxy.port}`,
        "--proxy-bypass-list=<-loopback>",
        `--ignore-certificate-errors-spki-list=${tlsconfig.ca!.spkiSha256Base64}`,
      ],
    });
    try {
      const page = await browser.newPage();
      const resp = await page.goto(`https://localhost:${origin.port}/page`, { timeout: 15000 });
      assert.equal(resp?.status(), 200);
      assert.equal(await page.textContent("#msg"), "changed over socks5");
      assert.ok(seen.includes(`https://localhost:${origin.port}/page`), seen.join(", "));
      assert.equal((await resp!.securityDetails())?.issuer, "mitmdeno");
    } finally {
      await browser.close();
      await proxy.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
