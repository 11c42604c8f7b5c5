/**
 * Reusing a CA the user already trusts for mitmproxy: a conf dir with mitmproxy's `mitmproxy-ca.pem` (made by
 * real mitmproxy 8.1 here) is used as is, and `mitmdeno ca --import DIR` makes it the mitmdeno CA. curl that
 * trusts only mitmproxy's CA file then reaches an HTTPS origin through mitmdeno.
 */
import assert from "node:assert/strict";
import { curl, runCli, startProxy } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { loadOrCreateCA } from "../../lib/tls/ca.ts";

const PY = "/usr/bin/python3";
let hasMitmproxy = false;
try {
  hasMitmproxy =
    (await new Deno.Command(PY, { args: ["-c", "import mitmproxy.certs"], stderr: "null" }).output())
      .code === 0;
} catch { /* no python */ }

async function mitmproxyConfdir(dir: string): Promise<string> {
  const r = await new Deno.Command(PY, {
    args: [
      "-c",
      `from mitmproxy.certs import CertStore; CertStore.from_store(${
        JSON.stringify(dir)
      }, "mitmproxy", 2048)`,
    ],
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return dir;
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

const ignore = !hasMitmproxy;
const suffix = ignore ? " [ignored: mitmproxy (Debian python3-mitmproxy) not installed]" : "";

Deno.test({
  name: "mitmproxy CA: --confdir ~/.mitmproxy uses mitmproxy-ca.pem, no new CA; curl trusting it works" +
    suffix,
  ignore,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "mitmdeno-mmca-" });
    const origin = await startHttpsOrigin(tmp);
    try {
      const conf = await mitmproxyConfdir(`${tmp}/dot-mitmproxy`);
      const before = await Deno.readTextFile(`${conf}/mitmproxy-ca-cert.pem`);
      const ca = await loadOrCreateCA(conf);
      assert.equal(ca.paths.pem, `${conf}/mitmproxy-ca.pem`);
      assert.equal(ca.certPem.trim(), before.trim());
      assert.equal(await exists(`${conf}/mitmdeno-ca.pem`), false, "no mitmdeno CA created");

      const info = await runCli(["ca", "--confdir", conf]);
      assert.equal(info.code, 0, info.stderr);
      assert.match(info.stdout, new RegExp(`CA certificate: ${conf}/mitmproxy-ca-cert\\.pem`));

      const proxy = await startProxy([
        "--confdir",
        conf,
        "--set",
        `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
      ]);
      try {
        const r = await curl([
          "--cacert",
          `${conf}/mitmproxy-ca-cert.pem`,
          "-x",
          proxy.url,
          `https://localhost:${origin.port}/x`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.body, /^hello \/x/);
        assert.match(proxy.output(), /Using mitmproxy's CA: .*mitmproxy-ca\.pem/);
      } finally {
        await proxy.stop();
      }
      assert.equal(
        await Deno.readTextFile(`${conf}/mitmproxy-ca-cert.pem`),
        before,
        "mitmproxy's files untouched",
      );
    } finally {
      await origin.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "mitmproxy CA: `mitmdeno ca --import DIR` makes it the mitmdeno CA; an existing one needs --force" +
    suffix,
  ignore,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "mitmdeno-mmca-" });
    const origin = await startHttpsOrigin(tmp);
    try {
      const theirs = await mitmproxyConfdir(`${tmp}/dot-mitmproxy`);
      const conf = `${tmp}/dot-mitmdeno`;
      const r = await runCli(["ca", "--confdir", conf, "--import", theirs]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Imported the CA into ${conf}/mitmdeno-ca\\.pem`));
      const mine = await loadOrCreateCA(conf);
      const orig = await loadOrCreateCA(theirs);
      assert.equal(mine.fingerprintSha256, orig.fingerprintSha256);
      assert.equal(mine.paths.pem, `${conf}/mitmdeno-ca.pem`);
      assert.equal((await Deno.stat(mine.paths.pem)).mode! & 0o777, 0o600);
      assert.match(r.stdout, new RegExp(orig.fingerprintSha256));

      // a second import over an existing mitmdeno CA is refused, --force replaces it
      const other = await mitmproxyConfdir(`${tmp}/other`);
      const again = await runCli(["ca", "--confdir", conf, "--import", other]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /mitmdeno-ca\.pem exists: devices may trust that CA\. Use --force/);
      const forced = await runCli([
        "ca",
        "--confdir",
        conf,
        "--import",
        `${other}/mitmproxy-ca.pem`,
        "--force",
      ]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(
        (await loadOrCreateCA(conf)).fingerprintSha256,
        (await loadOrCreateCA(other)).fingerprintSha256,
      );
      const bad = await runCli(["ca", "--confdir", conf, "--import", `${tmp}/nowhere`]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /cannot import a CA from .*nowhere/);

      const proxy = await startProxy([
        "--confdir",
        conf,
        "--set",
        `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
      ]);
      try {
        const c = await curl([
          "--cacert",
          `${other}/mitmproxy-ca-cert.pem`,
          "-x",
          proxy.url,
          `https://localhost:${origin.port}/y`,
        ]);
        assert.equal(c.code, 0, c.stderr);
        assert.match(c.body, /^hello \/y/);
      } finally {
        await proxy.stop();
      }
    } finally {
      await origin.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
