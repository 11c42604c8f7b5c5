import assert from "node:assert/strict";
import { context, tclientConn, tflow } from "mitmdeno/testing";
import bcrypt from "bcryptjs";
import { ProxyAuth } from "../../addons/proxyauth.ts";
import { verifyHtpasswdHash } from "../../lib/auth/htpasswd_hash.ts";

const basic = (u: string, p: string) => "Basic " + btoa(`${u}:${p}`);

Deno.test("proxyauth: user:pass in regular mode, 407 with Proxy-Authenticate", async () => {
  const pa = new ProxyAuth();
  await using tctx = await context(pa);
  await tctx.configure(pa, { proxyauth: "test:test" });
  const bad = tflow();
  await tctx.invoke(pa, "requestheaders", bad);
  assert.equal(bad.response?.statusCode, 407);
  assert.equal(bad.response?.headers.get("proxy-authenticate"), 'Basic realm="mitmproxy"');
  const wrong = tflow();
  wrong.request.headers.set("proxy-authorization", basic("test", "nope"));
  await tctx.invoke(pa, "requestheaders", wrong);
  assert.equal(wrong.response?.statusCode, 407);
  const good = tflow();
  good.request.headers.set("proxy-authorization", basic("test", "test"));
  await tctx.invoke(pa, "requestheaders", good);
  assert.equal(good.response, null);
  assert.deepEqual(good.metadata.proxyauth, ["test", "test"]);
  assert.equal(good.request.headers.has("proxy-authorization"), false);
});

Deno.test("proxyauth: reverse mode uses Authorization / 401; any; CONNECT keeps the connection authenticated", async () => {
  const pa = new ProxyAuth();
  await using tctx = await context(pa);
  await tctx.configure(pa, { proxyauth: "any" });
  const rev = tflow({ clientConn: tclientConn({ proxyMode: "reverse:http://x" }) });
  await tctx.invoke(pa, "requestheaders", rev);
  assert.equal(rev.response?.statusCode, 401);
  assert.equal(rev.response?.headers.get("www-authenticate"), 'Basic realm="mitmproxy"');
  const ok = tflow({ clientConn: tclientConn({ proxyMode: "reverse:http://x" }) });
  ok.request.headers.set("authorization", basic("anyone", "anything"));
  await tctx.invoke(pa, "requestheaders", ok);
  assert.equal(ok.response, null);

  await tctx.configure(pa, { proxyauth: "u:p" });
  const client = tclientConn();
  const connect = tflow({ clientConn: client });
  connect.request.method = "CONNECT";
  connect.request.headers.set("proxy-authorization", basic("u", "p"));
  await tctx.invoke(pa, "http_connect", connect);
  assert.equal(connect.response, null);
  const inner = tflow({ clientConn: client });
  await tctx.invoke(pa, "requestheaders", inner);
  assert.equal(inner.response, null);
  assert.deepEqual(inner.metadata.proxyauth, ["u", "p"]);
  const badConnect = tflow();
  badConnect.request.method = "CONNECT";
  await tctx.invoke(pa, "http_connect", badConnect);
  assert.equal(badConnect.response?.statusCode, 407);
});

Deno.test("proxyauth: htpasswd with bcrypt, apr1, SHA, crypt, plain; bad specs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sha = "{SHA}" + btoa(String.fromCharCode(
      ...new Uint8Array(
        await crypto.subtle.digest("SHA-1", new TextEncoder().encode("shapass")),
      ),
    ));
    const lines = [
      "# comment",
      `bc:${bcrypt.hashSync("bcpass", 4).replace("$2b$", "$2y$")}`,
      "apr:$apr1$abcdefgh$rK/lObuciIG5ziaV8BdHR/", // openssl passwd -apr1 -salt abcdefgh pass
      `sha:${sha}`,
      "plain:plainpass",
    ];
    await Deno.writeTextFile(`${dir}/htpasswd`, lines.join("\n") + "\n");
    const pa = new ProxyAuth();
    await using tctx = await context(pa);
    await tctx.configure(pa, { proxyauth: `@${dir}/htpasswd` });
    for (
      const [u, p, ok] of [
        ["bc", "bcpass", true],
        ["bc", "wrong", false],
        ["apr", "pass", true],
        ["apr", "pas", false],
        ["sha", "shapass", true],
        ["plain", "plainpass", true],
        ["nobody", "x", false],
      ] as const
    ) {
      const f = tflow();
      f.request.headers.set("proxy-authorization", basic(u, p));
      await tctx.invoke(pa, "requestheaders", f);
      assert.equal(f.response === null, ok, `${u}:${p}`);
    }
    assert.ok(verifyHtpasswdHash("secret", "abNANd1rDfiNc")); // perl crypt("secret", "ab")
    await Deno.writeTextFile(`${dir}/bad`, "no colon here\n");
    await assert.rejects(tctx.configure(pa, { proxyauth: `@${dir}/bad` }), /Option "proxyauth".*malformed/);
    await Deno.writeTextFile(`${dir}/sha512`, "u:$6$salt$abc\n");
    await assert.rejects(tctx.configure(pa, { proxyauth: `@${dir}/sha512` }), /unsupported hash scheme/);
    await assert.rejects(tctx.configure(pa, { proxyauth: `@${dir}/missing` }), /could not open htpasswd/);
    await assert.rejects(tctx.configure(pa, { proxyauth: "nocolon" }), /Option "proxyauth": invalid/);
    await assert.rejects(tctx.configure(pa, { proxyauth: "ldap:localhost:cn=x:pw:dc=y" }), /LDAP/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
