/**
 * mitmproxy's TLS options against real TLS peers: curl (OpenSSL) as the client, node:tls servers and
 * `openssl s_server` as origins, certificates made by the `openssl` tool: certs, cert_passphrase, client_certs,
 * ciphers_client/ciphers_server, tls_version_*, add_upstream_certs_to_client_chain,
 * ssl_verify_upstream_trusted_confdir, connect_addr.
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { curl, type CurlResult, runCli, startInProcess } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await p.output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${out}`);
  return out;
}

/** A self-signed certificate and key made by openssl: `${base}.key`, `${base}.crt`, `${base}.pem` (both). */
async function opensslCert(
  base: string,
  cn: string,
  sans: string,
  key = ["-newkey", "rsa:2048"],
): Promise<string> {
  await run("openssl", [
    "req",
    "-x509",
    ...key,
    "-nodes",
    "-keyout",
    `${base}.key`,
    "-out",
    `${base}.crt`,
    "-days",
    "5",
    "-subj",
    `/CN=${cn}/O=Custom Org`,
    "-addext",
    `subjectAltName=${sans}`,
  ]);
  const pem = (await Deno.readTextFile(`${base}.key`)) + (await Deno.readTextFile(`${base}.crt`));
  await Deno.writeTextFile(`${base}.pem`, pem);
  return `${base}.pem`;
}

/** A TLS origin (node:tls) answering one HTTP/1.1 response per connection with `describe(socket)`. */
async function startTlsOrigin(
  opts: tls.TlsOptions,
  describe: (s: tls.TLSSocket) => string,
): Promise<{ port: number; errors: string[]; close(): Promise<void> }> {
  const errors: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(opts, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.once("data", () => {
      const body = describe(s);
      s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
  server.on("tlsClientError", (e) => errors.push(e.message));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    errors,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function ok(r: CurlResult, body?: string | RegExp): void {
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200, r.body);
  if (typeof body === "string") assert.equal(r.body, body);
  else if (body) assert.match(r.body, body);
}

async function proxyWith(sets: string[]) {
  return await startInProcess([new TlsConfig()], sets);
}

Deno.test("tls options: client_certs (a file, a directory of <host>.pem) to a server that requires one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsopt-" });
  const originCert = await opensslCert(`${dir}/origin`, "localhost", "DNS:localhost,IP:127.0.0.1");
  const client = await opensslCert(`${dir}/client`, "myclient", "DNS:myclient", [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
  ]);
  const other = await opensslCert(`${dir}/other`, "otherclient", "DNS:otherclient");
  const origin = await startTlsOrigin(
    {
      key: await Deno.readTextFile(`${dir}/origin.key`),
      cert: await Deno.readTextFile(`${dir}/origin.crt`),
      requestCert: true,
      rejectUnauthorized: true,
      ca: [await Deno.readTextFile(`${dir}/client.crt`)],
    },
    (s) =>
      `client cert CN=${
        (s.getPeerCertificate() as tls.PeerCertificate).subject?.CN
      } authorized=${s.authorized}`,
  );
  const url = `https://localhost:${origin.port}/`;
  const base = [`confdir=${dir}/conf`, `ssl_verify_upstream_trusted_ca=${originCert}`];
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  try {
    let proxy = await proxyWith([...base, `client_certs=${client}`]);
    try {
      ok(await curl(["--cacert", cacert, "-x", proxy.url, url]), "client cert CN=myclient authorized=true");
    } finally {
      await proxy.stop();
    }
    // a directory: <sni>.pem for localhost, <address>.pem for an IP (no SNI); a file for another host only
    await Deno.mkdir(`${dir}/byhost`);
    await Deno.copyFile(client, `${dir}/byhost/localhost.pem`);
    await Deno.copyFile(other, `${dir}/byhost/127.0.0.1.pem`);
    proxy = await proxyWith([...base, `client_certs=${dir}/byhost`]);
    try {
      ok(await curl(["--cacert", cacert, "-x", proxy.url, url]), "client cert CN=myclient authorized=true");
      // 127.0.0.1 gets otherclient's certificate, which the origin does not trust: the handshake fails
      const r = await curl(["--cacert", cacert, "-x", proxy.url, `https://127.0.0.1:${origin.port}/`]);
      assert.equal(r.status, 502, r.body);
      assert.ok(origin.errors.length >= 1, "the origin rejected the certificate");
    } finally {
      await proxy.stop();
    }
    // without client_certs the origin refuses the handshake: 502 naming the TLS failure
    proxy = await proxyWith(base);
    try {
      const r = await curl(["--cacert", cacert, "-x", proxy.url, url]);
      assert.equal(r.status, 502, r.body);
      // TLS 1.3: the server checks the client's certificate after the client finished, then hangs up
      assert.match(r.body, /TLS handshake with localhost:\d+ failed|Server closed the connection/);
    } finally {
      await proxy.stop();
    }
    // a path that does not exist, a file without its key: errors at start naming the option
    await assert.rejects(
      proxyWith([...base, `client_certs=${dir}/nope.pem`]),
      /client_certs.*does not exist/,
    );
    await assert.rejects(
      proxyWith([...base, `client_certs=${dir}/client.crt`]),
      /Option "client_certs":.*needs its private key/,
    );
  } finally {
    await origin.close();
  }
});

Deno.test("tls options: certs ([domain=]path, key in the file or the CA's), cert_passphrase for it and the CA", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsopt-" });
  const origin = await startHttpsOrigin(dir);
  const url = `https://localhost:${origin.port}/x`;
  const custom = await opensslCert(`${dir}/custom`, "localhost", "DNS:localhost");
  const base = [`confdir=${dir}/conf`, `ssl_verify_upstream_trusted_ca=${origin.caFile}`];
  // "localhost=path": curl trusts the custom certificate itself, not our CA
  let proxy = await proxyWith([...base, `certs=localhost=${custom}`]);
  try {
    const r = await curl(["-v", "--cacert", `${dir}/custom.crt`, "-x", proxy.url, url]);
    ok(r, /^hello \/x/);
    assert.match(r.stderr, /subject: CN=localhost; O=Custom Org/);
    // a bad value at run time is refused and changes nothing
    await assert.rejects(
      proxy.master.options.set([`certs=${dir}/missing.pem`, "ciphers_client=ECDHE+AESGCM"]),
      /certificate file does not exist/,
    );
    assert.deepEqual(proxy.master.options.certs, [`localhost=${custom}`]);
    ok(
      await curl([
        "--tls-max",
        "1.2",
        "--ciphers",
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
        "--cacert",
        `${dir}/custom.crt`,
        "-x",
        proxy.url,
        url,
      ]),
      /^hello \/x/,
    );
  } finally {
    await proxy.stop();
  }
  // an encrypted key: needs cert_passphrase; a wrong one is an error at start
  await run("openssl", [
    "pkey",
    "-in",
    `${dir}/custom.key`,
    "-aes256",
    "-passout",
    "pass:s3cret",
    "-out",
    `${dir}/enc.key`,
  ]);
  await Deno.writeTextFile(
    `${dir}/enc.pem`,
    (await Deno.readTextFile(`${dir}/enc.key`)) + (await Deno.readTextFile(`${dir}/custom.crt`)),
  );
  await assert.rejects(
    proxyWith([...base, `certs=${dir}/enc.pem`]),
    /Option "certs":.*encrypted: set cert_passphrase/,
  );
  await assert.rejects(
    proxyWith([...base, `certs=${dir}/enc.pem`, "cert_passphrase=wrong"]),
    /Option "certs":.*wrong cert_passphrase/,
  );
  await assert.rejects(proxyWith([...base, `certs=${dir}/missing.pem`]), /certificate file does not exist/);
  proxy = await proxyWith([...base, `certs=${dir}/enc.pem`, "cert_passphrase=s3cret"]);
  try {
    // no domain: "*", every host gets it
    const r = await curl(["-v", "-k", "-x", proxy.url, `https://127.0.0.1:${origin.port}/y`]);
    ok(r, /^hello \/y/);
    assert.match(r.stderr, /subject: CN=localhost; O=Custom Org/);
  } finally {
    await proxy.stop();
  }
  // a PEM without a key: the CA's key is used (a certificate for the CA's public key, signed by the CA)
  const caPem = `${dir}/conf/mitmdeno-ca.pem`;
  await run("openssl", [
    "req",
    "-new",
    "-key",
    caPem,
    "-subj",
    "/CN=localhost/O=CA Key Org",
    "-out",
    `${dir}/cakey.csr`,
  ]);
  await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=DNS:localhost\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    `${dir}/cakey.csr`,
    "-CA",
    `${dir}/conf/mitmdeno-ca-cert.pem`,
    "-CAkey",
    caPem,
    "-CAcreateserial",
    "-days",
    "5",
    "-extfile",
    `${dir}/ext.cnf`,
    "-out",
    `${dir}/cakey.crt`,
  ]);
  proxy = await proxyWith([...base, `certs=localhost=${dir}/cakey.crt`]);
  try {
    const r = await curl(["-v", "--cacert", `${dir}/conf/mitmdeno-ca-cert.pem`, "-x", proxy.url, url]);
    ok(r, /^hello \/x/);
    assert.match(r.stderr, /subject: CN=localhost; O=CA Key Org/);
  } finally {
    await proxy.stop();
  }
  // cert_passphrase opens an encrypted CA, too (mitmproxy's CertStore.from_store)
  const enc = `${dir}/encconf`;
  await Deno.mkdir(enc);
  await run("openssl", [
    "pkey",
    "-in",
    caPem,
    "-aes256",
    "-passout",
    "pass:capass",
    "-out",
    `${dir}/caenc.key`,
  ]);
  await Deno.writeTextFile(
    `${enc}/mitmdeno-ca.pem`,
    (await Deno.readTextFile(`${dir}/caenc.key`)) +
      (await Deno.readTextFile(`${dir}/conf/mitmdeno-ca-cert.pem`)),
  );
  await assert.rejects(proxyWith([`confdir=${enc}`]), /Option "cert_passphrase":.*encrypted/);
  // the ca subcommand, too
  const noPass = await runCli(["ca", "--confdir", enc]);
  assert.equal(noPass.code, 1);
  assert.match(noPass.stderr, /the private key is encrypted: set cert_passphrase/);
  const withPass = await runCli(["ca", "--confdir", enc, "--set", "cert_passphrase=capass"]);
  assert.equal(withPass.code, 0, withPass.stderr);
  assert.match(withPass.stdout, /SHA-256 fingerprint: [0-9A-F:]{95}/);
  proxy = await proxyWith([
    `confdir=${enc}`,
    "cert_passphrase=capass",
    `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
  ]);
  try {
    ok(await curl(["--cacert", `${dir}/conf/mitmdeno-ca-cert.pem`, "-x", proxy.url, url]), /^hello \/x/);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("tls options: tls_version_client/server_min/max, bad values rejected with the allowed list", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsopt-" });
  const originCert = await opensslCert(`${dir}/origin`, "localhost", "DNS:localhost,IP:127.0.0.1");
  const origin12 = await startTlsOrigin({
    key: await Deno.readTextFile(`${dir}/origin.key`),
    cert: await Deno.readTextFile(`${dir}/origin.crt`),
    maxVersion: "TLSv1.2",
  }, (s) => `origin saw ${s.getProtocol()}`);
  const url = `https://localhost:${origin12.port}/`;
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  const base = [`confdir=${dir}/conf`, `ssl_verify_upstream_trusted_ca=${originCert}`];
  try {
    let proxy = await proxyWith(base);
    try {
      const r = await curl(["-v", "--tls-max", "1.2", "--cacert", cacert, "-x", proxy.url, url]);
      ok(r, "origin saw TLSv1.2");
      assert.match(r.stderr, /SSL connection using TLSv1\.2/);
    } finally {
      await proxy.stop();
    }
    proxy = await proxyWith([...base, "tls_version_client_min=TLS1_3", "tls_version_server_min=TLS1_3"]);
    try {
      // a TLS 1.2 client is refused
      const r = await curl(["--tls-max", "1.2", "--cacert", cacert, "-x", proxy.url, url]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /alert|protocol version|SSL/i);
      // a TLS 1.3 client gets through to the proxy, but the TLS 1.2-only origin is refused: 502
      const r2 = await curl(["--cacert", cacert, "-x", proxy.url, url]);
      assert.equal(r2.status, 502, r2.body);
      assert.match(r2.body, /TLS handshake with localhost:\d+ failed/);
    } finally {
      await proxy.stop();
    }
    proxy = await proxyWith([...base, "tls_version_client_max=TLS1_2", "tls_version_server_max=TLS1_2"]);
    try {
      const r = await curl(["-v", "--cacert", cacert, "-x", proxy.url, url]);
      ok(r, "origin saw TLSv1.2");
      assert.match(r.stderr, /SSL connection using TLSv1\.2/);
    } finally {
      await proxy.stop();
    }
    await assert.rejects(
      proxyWith([...base, "tls_version_client_min=TLS12"]),
      /tls_version_client_min.*expected one of UNBOUNDED, SSL3, TLS1, TLS1_1, TLS1_2, TLS1_3/,
    );
    await assert.rejects(
      proxyWith([...base, "tls_version_server_max=TLS1_1"]),
      /tls_version_server_max": TLS1_1 is below/,
    );
    await assert.rejects(
      proxyWith([...base, "tls_version_client_min=TLS1_3", "tls_version_client_max=TLS1_2"]),
      /minimum is above the maximum/,
    );
  } finally {
    await origin12.close();
  }
});

Deno.test("tls options: ciphers_client and ciphers_server (OpenSSL syntax) against curl and openssl s_server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsopt-" });
  const originCert = await opensslCert(`${dir}/origin`, "localhost", "DNS:localhost,IP:127.0.0.1");
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  const base = [`confdir=${dir}/conf`, `ssl_verify_upstream_trusted_ca=${originCert}`];
  // openssl s_server speaking TLS 1.2 with one cipher only
  const port = await new Promise<number>((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
  const sserver = new Deno.Command("openssl", {
    args: [
      "s_server",
      "-accept",
      `127.0.0.1:${port}`,
      "-key",
      `${dir}/origin.key`,
      "-cert",
      `${dir}/origin.crt`,
      "-tls1_2",
      "-cipher",
      "ECDHE-RSA-CHACHA20-POLY1305",
      "-www",
      "-quiet",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((r) => {
        const c = net.connect(port, "127.0.0.1", () => (c.destroy(), r(true)));
        c.on("error", () => r(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const url = `https://localhost:${port}/`;
    let proxy = await proxyWith([
      ...base,
      "ciphers_server=ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256",
    ]);
    try {
      const r = await curl(["--cacert", cacert, "-x", proxy.url, url]);
      ok(r, /Cipher is ECDHE-RSA-CHACHA20-POLY1305/); // s_server -www prints its session
    } finally {
      await proxy.stop();
    }
    proxy = await proxyWith([...base, "ciphers_server=ECDHE+AESGCM"]);
    try {
      const r = await curl(["--cacert", cacert, "-x", proxy.url, url]);
      assert.equal(r.status, 502, r.body);
      assert.match(
        r.body,
        /TLSv1\.2 cipher ECDHE-RSA-CHACHA20-POLY1305 is not allowed by ciphers_server \(ECDHE\+AESGCM\)/,
      );
    } finally {
      await proxy.stop();
    }
    // ciphers_client: curl offering one TLS 1.2 cipher (our leaves are ECDSA)
    proxy = await proxyWith([
      ...base,
      "ciphers_client=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
    ]);
    try {
      const c = ["--tls-max", "1.2", "--cacert", cacert, "-x", proxy.url];
      const r = await curl(["-v", ...c, "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384", url]);
      ok(r);
      assert.match(r.stderr, /SSL connection using TLSv1\.2 \/ ECDHE-ECDSA-AES256-GCM-SHA384/);
      const bad = await curl([
        ...c,
        "--ciphers",
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256",
        url,
      ]);
      // Deno's TLS takes the client's first choice, outside ciphers_client: the proxy refuses it
      assert.notEqual(bad.code, 0, "a cipher outside ciphers_client is refused");
      assert.ok(
        proxy.logs.some((l) =>
          /cipher ECDHE-ECDSA-CHACHA20-POLY1305 is not allowed by ciphers_client/.test(l)
        ),
        proxy.logs.join("\n"),
      );
      // a client offering no allowed suite at all gets OpenSSL's answer: a handshake_failure alert
      const none = await curl(["-v", ...c, "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA", url]);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /alert handshake failure/);
      assert.ok(proxy.logs.some((l) => /no shared cipher: the client offers none of ciphers_client/.test(l)));
      // TLS 1.3 is not governed by cipher strings (as in OpenSSL)
      ok(await curl(["--cacert", cacert, "-x", proxy.url, url]));
    } finally {
      await proxy.stop();
    }
    await assert.rejects(
      proxyWith([...base, "ciphers_client=NOPE"]),
      /Option "ciphers_client": no cipher match/,
    );
    await assert.rejects(
      proxyWith([...base, "ciphers_server=AES128-SHA", "tls_version_server_max=TLS1_2"]),
      /Option "ciphers_server": none of AES128-SHA can be negotiated by Deno's TLS/,
    );
  } finally {
    sserver.kill();
    await sserver.status;
  }
});

Deno.test("tls options: add_upstream_certs_to_client_chain, ssl_verify_upstream_trusted_confdir", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsopt-" });
  const origin = await startHttpsOrigin(dir);
  const url = `https://localhost:${origin.port}/z`;
  const cacert = `${dir}/conf/mitmdeno-ca-cert.pem`;
  // a c_rehash directory with the origin's CA: verification succeeds
  await Deno.mkdir(`${dir}/trusted`);
  await Deno.copyFile(origin.caFile, `${dir}/trusted/origin-ca.pem`);
  await run("openssl", ["rehash", `${dir}/trusted`]);
  let proxy = await proxyWith([`confdir=${dir}/conf`, `ssl_verify_upstream_trusted_confdir=${dir}/trusted`]);
  try {
    ok(await curl(["--cacert", cacert, "-x", proxy.url, url]), /^hello \/z/);
  } finally {
    await proxy.stop();
  }
  proxy = await proxyWith([`confdir=${dir}/conf`]);
  try {
    const r = await curl(["--cacert", cacert, "-x", proxy.url, url]);
    assert.equal(r.status, 502, "without the trusted dir the origin's certificate does not verify");
  } finally {
    await proxy.stop();
  }
  await Deno.mkdir(`${dir}/empty`);
  await assert.rejects(
    proxyWith([`confdir=${dir}/conf`, `ssl_verify_upstream_trusted_confdir=${dir}/empty`]),
    /Option "ssl_verify_upstream_trusted_confdir": no PEM certificate/,
  );
  // the chain a client sees: our leaf and CA, plus the origin's leaf and CA as extras
  const chainThrough = async (sets: string[]) => {
    const p = await proxyWith([
      `confdir=${dir}/conf`,
      `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
      ...sets,
    ]);
    try {
      const out = await run("openssl", [
        "s_client",
        "-proxy",
        `127.0.0.1:${p.port}`,
        "-connect",
        `localhost:${origin.port}`,
        "-servername",
        "localhost",
        "-showcerts",
      ], "");
      return [...out.matchAll(/^ *\d+ s:(.*)$/gm)].map((m) => m[1]);
    } finally {
      await p.stop();
    }
  };
  assert.deepEqual((await chainThrough([])).length, 2);
  const chain = await chainThrough(["add_upstream_certs_to_client_chain=true"]);
  assert.equal(chain.length, 4, chain.join("\n"));
  assert.match(chain[2], /O ?= ?Origin Org/);
  assert.match(chain[3], /CN ?= ?testorigin/);
  await assert.rejects(
    proxyWith([`confdir=${dir}/conf`, "add_upstream_certs_to_client_chain=true", "upstream_cert=false"]),
    /add_upstream_certs_to_client_chain" requires the upstream_cert option/,
  );
  await origin.close();
});

Deno.test("tls options: connect_addr binds upstream connections to a local address", async () => {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.socket.remoteAddress ?? "");
    res.end("ok");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tlsopt-" });
  try {
    const proxy = await proxyWith([`confdir=${dir}/conf`, "connect_addr=127.0.0.2"]);
    try {
      ok(await curl(["-x", proxy.url, `http://127.0.0.1:${port}/`]), "ok");
      assert.deepEqual(seen, ["127.0.0.2"]);
      await proxy.master.options.set(["connect_addr"]);
      ok(await curl(["-x", proxy.url, `http://127.0.0.1:${port}/`]), "ok");
      assert.deepEqual(seen, ["127.0.0.2", "127.0.0.1"]);
    } finally {
      await proxy.stop();
    }
    await assert.rejects(
      proxyWith([`confdir=${dir}/conf`, "connect_addr=nope"]),
      /Option "connect_addr": invalid connection address "nope"/,
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
