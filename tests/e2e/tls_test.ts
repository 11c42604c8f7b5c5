/**
 * HTTPS interception through the real CLI: curl trusting mitmdeno's CA (from a temp conf dir) against
 * an HTTPS origin with its own self-signed CA, plus passthrough, verification failures, clients that do
 * not trust us, bad input after CONNECT, reverse proxy to https, the `ca` subcommand, a corrupt CA.
 */
import assert from "node:assert/strict";
import { curl, runCli, startProxy } from "./helpers.ts";
import {
  captureClientHello,
  connectTunnel,
  count,
  peerCertThrough,
  startHttpsOrigin,
} from "./tls_helpers.ts";

/** The bodies of a multi-URL curl (the helper's `-w` status marker follows each transfer). */
function bodies(body: string): string {
  return body.replace(/\n__STATUS__\d{3}/g, "");
}

function waitClosed(s: import("node:net").Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    s.on("error", () => {});
    s.once("close", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

Deno.test("tls: curl through the proxy to an HTTPS origin: bodies, headers, keep-alive, one upstream connection", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tls-" });
  const origin = await startHttpsOrigin(dir);
  const confdir = `${dir}/conf`;
  const proxy = await startProxy([
    "--set",
    `confdir=${confdir}`,
    "--set",
    `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
    "--set",
    "tcp_timeout=1",
  ]);
  const cacert = `${confdir}/mitmdeno-ca-cert.pem`;
  try {
    await t.step(
      "127.0.0.1 and localhost, two URLs per curl over one tunnel and one upstream connection",
      async () => {
        for (const host of ["127.0.0.1", "localhost"]) {
          const before = origin.connections;
          const r = await curl([
            "-v",
            "--cacert",
            cacert,
            "-x",
            proxy.url,
            `https://${host}:${origin.port}/one`,
            `https://${host}:${origin.port}/two?x=1`,
          ]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.status, 200);
          assert.equal(
            bodies(r.body),
            `hello /one host=${host}:${origin.port}\nhello /two?x=1 host=${host}:${origin.port}\n`,
          );
          assert.match(r.headers, /x-origin: yes/i);
          // our certificate: issued by mitmdeno, names copied from the origin's (upstream_cert)
          assert.match(r.stderr, /issuer: CN=mitmdeno; O=mitmdeno/);
          assert.match(r.stderr, /subject: CN=localhost; O=Origin Org/);
          assert.equal(count(r.stderr, /> CONNECT /), 1, r.stderr);
          assert.match(r.stderr, /Re-using existing connection/);
          // the eager CONNECT connection was upgraded to TLS, not replaced by a second one
          assert.equal(origin.connections - before, 1);
        }
        await proxy.waitFor(/GET https:\/\/localhost:\d+\/two\?x=1/);
      },
    );

    await t.step("a client that does not trust our CA is reported once per host", async () => {
      for (let i = 0; i < 2; i++) {
        const r = await curl(["-x", proxy.url, `https://localhost:${origin.port}/`]);
        assert.equal(r.code, 60, r.stderr); // curl: SSL certificate problem
      }
      await proxy.waitFor(/client does not trust the mitmdeno CA.*see http:\/\/mitm\.it/);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(count(proxy.output(), /client does not trust the mitmdeno CA/), 1, proxy.output());
    });

    await t.step("garbage after CONNECT ends that connection with a logged reason", async () => {
      const s = await connectTunnel(proxy.port, `localhost:${origin.port}`);
      s.write(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x08, 0x02, 0, 0, 4, 1, 2, 3, 4]));
      assert.ok(await waitClosed(s, 5000), "connection not closed");
      await proxy.waitFor(/invalid TLS ClientHello/);
    });

    await t.step("a ClientHello cut in half, then close", async () => {
      const hello = await captureClientHello("localhost");
      const s = await connectTunnel(proxy.port, `localhost:${origin.port}`);
      s.end(hello.subarray(0, hello.length >> 1));
      assert.ok(await waitClosed(s, 5000), "connection not closed");
      await proxy.waitFor(/client closed the connection in the middle of the ClientHello/);
    });

    await t.step("a ClientHello cut in half, then silence: the idle timeout ends it", async () => {
      const hello = await captureClientHello("localhost");
      const s = await connectTunnel(proxy.port, `localhost:${origin.port}`);
      s.write(hello.subarray(0, hello.length >> 1));
      assert.ok(await waitClosed(s, 5000), "connection not closed");
      await proxy.waitFor(/no complete TLS ClientHello within 1s/);
    });

    await t.step("a client that never speaks after CONNECT", async () => {
      const s = await connectTunnel(proxy.port, `localhost:${origin.port}`);
      assert.ok(await waitClosed(s, 5000), "connection not closed");
      await proxy.waitFor(/client sent nothing for 1s after CONNECT localhost:\d+/);
    });

    await t.step("the proxy keeps serving", async () => {
      const r = await curl(["--cacert", cacert, "-x", proxy.url, `https://localhost:${origin.port}/still`]);
      assert.equal(r.body, `hello /still host=localhost:${origin.port}\n`);
    });
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls: upstream verification failure -> 502 naming it; --ignore-hosts passes the origin's certificate through", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tls-" });
  const origin = await startHttpsOrigin(dir);
  const confdir = `${dir}/conf`;
  const proxy = await startProxy(["--set", `confdir=${confdir}`, "--ignore-hosts", "^localhost:"]);
  try {
    // not trusted by the proxy (no ssl_verify_upstream_trusted_ca, no -k)
    const r = await curl([
      "--cacert",
      `${confdir}/mitmdeno-ca-cert.pem`,
      "-x",
      proxy.url,
      `https://127.0.0.1:${origin.port}/`,
    ]);
    assert.equal(r.status, 502);
    assert.match(
      r.body,
      /TLS handshake with 127\.0\.0\.1:\d+ failed: certificate verify failed: self-signed certificate/,
    );
    assert.equal(origin.requests, 0);

    // ignored: the client talks TLS with the origin itself
    const p = await curl([
      "-v",
      "--cacert",
      origin.caFile,
      "-x",
      proxy.url,
      `https://localhost:${origin.port}/pass`,
    ]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.body, `hello /pass host=localhost:${origin.port}\n`);
    assert.match(p.stderr, /issuer: CN=testorigin; O=testorigin/);
    const cert = await peerCertThrough(proxy.port, `localhost:${origin.port}`, "localhost");
    assert.equal(cert.issuer.CN, "testorigin");
    const mitm = await peerCertThrough(proxy.port, `127.0.0.1:${origin.port}`, "example.test");
    assert.equal(mitm.issuer.CN, "mitmdeno");
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls: reverse proxy to an https origin with --ssl-insecure, plain and TLS clients", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tls-" });
  const origin = await startHttpsOrigin(dir);
  const confdir = `${dir}/conf`;
  const proxy = await startProxy([
    "--set",
    `confdir=${confdir}`,
    "-k",
    "--mode",
    `reverse:https://localhost:${origin.port}`,
  ]);
  try {
    const plain = await curl([`${proxy.url}/rev`]);
    assert.equal(plain.status, 200, plain.body);
    assert.equal(plain.body, `hello /rev host=localhost:${origin.port}\n`);
    const secure = await curl([
      "--cacert",
      `${confdir}/mitmdeno-ca-cert.pem`,
      `https://localhost:${proxy.port}/rev2`,
      `https://localhost:${proxy.port}/rev3`,
    ]);
    assert.equal(secure.code, 0, secure.stderr);
    assert.equal(
      bodies(secure.body),
      `hello /rev2 host=localhost:${origin.port}\nhello /rev3 host=localhost:${origin.port}\n`,
    );
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls: `mitmdeno ca` prints where the CA is and its fingerprint, --export writes the public forms; a corrupt CA stops start-up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tls-" });
  try {
    const r = await runCli(["ca", "--confdir", `${dir}/conf`, "--export", `${dir}/out`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`CA certificate: ${dir}/conf/mitmdeno-ca-cert.pem`));
    const fp = /SHA-256 fingerprint: ([0-9A-F:]{95})/.exec(r.stdout);
    assert.ok(fp, r.stdout);
    for (const ext of ["pem", "cer", "p12"]) await Deno.stat(`${dir}/out/mitmdeno-ca-cert.${ext}`);
    // the same CA next time
    const again = await runCli(["ca", "--confdir", `${dir}/conf`]);
    assert.ok(again.stdout.includes(fp[1]));

    await Deno.writeTextFile(`${dir}/conf/mitmdeno-ca.pem`, "-----BEGIN RSA PRIVATE KEY-----\nnope\n");
    const bad = await runCli(["--set", `confdir=${dir}/conf`, "--listen-host", "127.0.0.1", "-p", "0"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot load the CA from .*mitmdeno-ca\.pem/);
    // never replaced
    assert.match(await Deno.readTextFile(`${dir}/conf/mitmdeno-ca.pem`), /nope/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
