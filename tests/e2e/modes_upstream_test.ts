/**
 * Upstream mode with real clients: curl through mitmdeno chained to a real mitmdump (8.1) and to a second
 * mitmdeno, for HTTP and HTTPS, with and without upstream authentication; an upstream that refuses.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { CertStore } from "../../lib/tls/certs.ts";
import { curl, type InProcessProxy, startInProcess, startOrigin } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { freePort, startMitmdump } from "./modes_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import { UpstreamAuth } from "../../addons/upstream_auth.ts";
import { ProxyAuth } from "../../addons/proxyauth.ts";
import type { HTTPFlow } from "../../lib/flow/flow.ts";

/** The bodies of several transfers of one curl run, joined by "|". */
function bodies(out: string): string {
  return out.replace(/\n__STATUS__\d+/g, "|");
}

/** Records finished and failed flows. */
function recorder() {
  const flows: HTTPFlow[] = [];
  const errors: HTTPFlow[] = [];
  return {
    flows,
    errors,
    addon: {
      name: "recorder",
      response: (f: HTTPFlow) => void flows.push(f),
      error: (f: HTTPFlow) => void errors.push(f),
      http_connect_error: (f: HTTPFlow) => void errors.push(f),
    },
  };
}

/** mitmdeno in upstream mode towards `upstreamPort`, trusting `upstreamCa` for TLS. */
function upstreamDeno(
  dir: string,
  upstreamPort: number,
  upstreamCa: string,
  extra: object[],
  sets: string[] = [],
) {
  return startInProcess([new TlsConfig(), new UpstreamAuth(), ...extra], [
    `confdir=${dir}/deno-conf`,
    `mode=upstream:http://127.0.0.1:${upstreamPort}`,
    `ssl_verify_upstream_trusted_ca=${upstreamCa}`,
    ...sets,
  ]);
}

Deno.test("upstream mode: curl -> mitmdeno -> mitmdump -> origins, HTTP in absolute form, HTTPS via one reused CONNECT", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-upstream-" });
  const plain = startOrigin((req) => new Response(`plain ${new URL(req.url).pathname}`));
  const tlsOrigin = await startHttpsOrigin(dir);
  const mitm = await startMitmdump(
    ["--set", `ssl_verify_upstream_trusted_ca=${tlsOrigin.caFile}`],
    `${dir}/mitm`,
  );
  const rec = recorder();
  let deno: InProcessProxy | null = null;
  try {
    deno = await upstreamDeno(dir, mitm.port, `${dir}/mitm/mitmproxy-ca-cert.pem`, [rec.addon]);
    assert.ok(
      deno.logs.some((l) =>
        l.includes(`HTTP(S) proxy (upstream mode) to http://127.0.0.1:${mitm.port} listening at 127.0.0.1:`)
      ),
      deno.logs.join("\n"),
    );
    const r = await curl(["-x", deno.url, `${plain.url}/a`, `${plain.url}/b`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(bodies(r.body), "plain /a|plain /b");
    await mitm.waitFor(new RegExp(`GET http://127.0.0.1:${plain.port}/b`));
    const before = tlsOrigin.connections;
    const s = await curl([
      "--cacert",
      `${dir}/deno-conf/mitmdeno-ca-cert.pem`,
      "-x",
      deno.url,
      `https://localhost:${tlsOrigin.port}/x`,
      `https://localhost:${tlsOrigin.port}/y`,
    ]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(
      bodies(s.body),
      `hello /x host=localhost:${tlsOrigin.port}\n|hello /y host=localhost:${tlsOrigin.port}\n`,
    );
    await mitm.waitFor(new RegExp(`GET https://localhost:${tlsOrigin.port}/y`));
    // one CONNECT through mitmdump for both requests: mitmdump saw one client connection, the origin one
    assert.equal(tlsOrigin.connections - before, 1);
    assert.equal((mitm.output().match(/client connect/g) ?? []).length, 2, mitm.output());
    assert.equal(rec.flows.length, 4);
    for (const f of rec.flows) {
      assert.deepEqual(f.serverConn.via, ["http", ["127.0.0.1", mitm.port]]);
      assert.equal(f.clientConn.proxyMode, `upstream:http://127.0.0.1:${mitm.port}`);
    }
    assert.equal(rec.flows[2].serverConn.tls, true);
    assert.equal(rec.flows[2].serverConn.address![0], "localhost");
  } finally {
    await deno?.stop();
    await mitm.stop();
    await plain.close();
    await tlsOrigin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream mode: an upstream mitmdump with --proxyauth: 407/502 without upstream_auth, works with it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-upstream-auth-" });
  const plain = startOrigin((req) => new Response(`plain ${new URL(req.url).pathname}`));
  const tlsOrigin = await startHttpsOrigin(dir);
  const mitm = await startMitmdump([
    "--proxyauth",
    "user:secret",
    "--set",
    `ssl_verify_upstream_trusted_ca=${tlsOrigin.caFile}`,
  ], `${dir}/mitm`);
  const ca = `${dir}/mitm/mitmproxy-ca-cert.pem`;
  let deno: InProcessProxy | null = null;
  try {
    const rec = recorder();
    deno = await upstreamDeno(dir, mitm.port, ca, [rec.addon]);
    const r = await curl(["-x", deno.url, `${plain.url}/a`]);
    assert.equal(r.status, 407, r.body);
    const s = await curl([
      "--cacert",
      `${dir}/deno-conf/mitmdeno-ca-cert.pem`,
      "-x",
      deno.url,
      `https://localhost:${tlsOrigin.port}/x`,
    ]);
    assert.notEqual(s.code, 0);
    assert.match(s.stderr, /502/);
    const err = rec.errors.find((f) => f.request.method === "CONNECT");
    assert.match(
      err!.error!.msg,
      new RegExp(`Upstream proxy 127.0.0.1:${mitm.port} refused HTTP CONNECT request: 407`),
    );
    await deno.stop();
    deno = null;

    deno = await upstreamDeno(dir, mitm.port, ca, [], ["upstream_auth=user:secret"]);
    const r2 = await curl(["-x", deno.url, `${plain.url}/a`]);
    assert.equal(r2.status, 200, r2.body);
    assert.equal(r2.body, "plain /a");
    const s2 = await curl([
      "--cacert",
      `${dir}/deno-conf/mitmdeno-ca-cert.pem`,
      "-x",
      deno.url,
      `https://localhost:${tlsOrigin.port}/x`,
    ]);
    assert.equal(s2.code, 0, s2.stderr);
    assert.equal(s2.body, `hello /x host=localhost:${tlsOrigin.port}\n`);
  } finally {
    await deno?.stop();
    await mitm.stop();
    await plain.close();
    await tlsOrigin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream mode: mitmdeno chained to a second mitmdeno with proxyauth, HTTP and HTTPS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-upstream-deno-" });
  const seen: string[] = [];
  const plain = startOrigin((req) => {
    seen.push(req.headers.get("proxy-authorization") ?? "-");
    return new Response(`plain ${new URL(req.url).pathname}`);
  });
  const tlsOrigin = await startHttpsOrigin(dir);
  const second = await startInProcess([new TlsConfig(), new ProxyAuth()], [
    `confdir=${dir}/second-conf`,
    "proxyauth=user:secret",
    `ssl_verify_upstream_trusted_ca=${tlsOrigin.caFile}`,
  ]);
  const secondFlows: HTTPFlow[] = [];
  await second.master.addAddons({ name: "rec2", response: (f: HTTPFlow) => void secondFlows.push(f) });
  let deno: InProcessProxy | null = null;
  try {
    const ca = `${dir}/second-conf/mitmdeno-ca-cert.pem`;
    deno = await upstreamDeno(dir, second.port, ca, [], ["upstream_auth=user:secret"]);
    const r = await curl(["-x", deno.url, `${plain.url}/a`, `${plain.url}/b`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(bodies(r.body), "plain /a|plain /b");
    // the second proxy checked and removed the credentials
    assert.deepEqual(seen, ["-", "-"]);
    const s = await curl([
      "--cacert",
      `${dir}/deno-conf/mitmdeno-ca-cert.pem`,
      "-x",
      deno.url,
      `https://localhost:${tlsOrigin.port}/x`,
      `https://localhost:${tlsOrigin.port}/y`,
    ]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(
      bodies(s.body),
      `hello /x host=localhost:${tlsOrigin.port}\n|hello /y host=localhost:${tlsOrigin.port}\n`,
    );
    assert.deepEqual(secondFlows.map((f) => f.request.prettyUrl), [
      `${plain.url}/a`,
      `${plain.url}/b`,
      `https://localhost:${tlsOrigin.port}/x`,
      `https://localhost:${tlsOrigin.port}/y`,
    ]);
    // both HTTPS requests came through one tunnel into the second proxy
    assert.equal(secondFlows[2].clientConn, secondFlows[3].clientConn);
    await deno.stop();
    deno = null;
    // without credentials: the second proxy's 407 reaches the client for HTTP, HTTPS fails with a 502
    deno = await upstreamDeno(dir, second.port, ca, []);
    const r2 = await curl(["-x", deno.url, `${plain.url}/a`]);
    assert.equal(r2.status, 407);
    const s2 = await curl(["-k", "-x", deno.url, `https://localhost:${tlsOrigin.port}/x`]);
    assert.notEqual(s2.code, 0);
    assert.match(s2.stderr, /502/);
  } finally {
    await deno?.stop();
    await second.stop();
    await plain.close();
    await tlsOrigin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream mode: an upstream proxy that is not there: 502 naming it, for HTTP and CONNECT", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-upstream-refused-" });
  const port = await freePort();
  const deno = await upstreamDeno(dir, port, "/dev/null", []).catch(() =>
    startInProcess([new TlsConfig()], [`confdir=${dir}/deno-conf`, `mode=upstream:http://127.0.0.1:${port}`])
  );
  try {
    const r = await curl(["-x", deno.url, "http://example.invalid/a"]);
    assert.equal(r.status, 502);
    assert.match(
      r.body,
      new RegExp(`Cannot connect to upstream proxy 127.0.0.1:${port}: connection refused`),
    );
    const s = await curl(["-v", "-k", "-x", deno.url, "https://example.invalid/a"]);
    assert.notEqual(s.code, 0);
    assert.match(s.stderr, /< HTTP\/1.1 502/);
  } finally {
    await deno.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstream mode: an https:// upstream proxy (TLS to the proxy, our TLS to the origin inside it)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-upstream-https-" });
  const plain = startOrigin((req) => new Response(`plain ${new URL(req.url).pathname}`));
  const tlsOrigin = await startHttpsOrigin(dir);
  const second = await startInProcess([new TlsConfig()], [
    `confdir=${dir}/second-conf`,
    `ssl_verify_upstream_trusted_ca=${tlsOrigin.caFile}`,
  ]);
  // a TLS front (certificate for localhost from the origin's CA) before the second proxy
  const leaf = new CertStore(tlsOrigin.ca, { secureContext: false }).getCert({
    commonName: "localhost",
    sans: ["localhost"],
  });
  const sockets = new Set<net.Socket>();
  const front = tls.createServer({ key: leaf.keyPem, cert: leaf.chainPem }, (s) => {
    const up = net.connect(second.port, "127.0.0.1");
    sockets.add(s).add(up);
    s.pipe(up).pipe(s);
    s.on("error", () => up.destroy());
    up.on("error", () => s.destroy());
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  const frontPort = (front.address() as net.AddressInfo).port;
  const trust = `${dir}/trust.pem`;
  await Deno.writeTextFile(
    trust,
    (await Deno.readTextFile(tlsOrigin.caFile)) +
      (await Deno.readTextFile(`${dir}/second-conf/mitmdeno-ca-cert.pem`)),
  );
  const deno = await startInProcess([new TlsConfig()], [
    `confdir=${dir}/deno-conf`,
    `mode=upstream:https://localhost:${frontPort}`,
    `ssl_verify_upstream_trusted_ca=${trust}`,
  ]);
  try {
    const r = await curl(["-x", deno.url, `${plain.url}/a`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.body, "plain /a");
    const s = await curl([
      "--cacert",
      `${dir}/deno-conf/mitmdeno-ca-cert.pem`,
      "-x",
      deno.url,
      `https://localhost:${tlsOrigin.port}/x`,
      `https://localhost:${tlsOrigin.port}/y`,
    ]);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(
      bodies(s.body),
      `hello /x host=localhost:${tlsOrigin.port}\n|hello /y host=localhost:${tlsOrigin.port}\n`,
    );
  } finally {
    await deno.stop();
    await second.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => front.close(r));
    await plain.close();
    await tlsOrigin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
