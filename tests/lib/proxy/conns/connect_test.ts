/** Opening TCP connections and TLS handshakes with servers, against real loopback listeners. */
import assert from "node:assert/strict";
import type tls from "node:tls";
import {
  clientTls,
  connectTcp,
  defaultSni,
  describeTlsError,
  isIpLiteral,
  parseSubjectAltName,
  tlsInfoOf,
} from "../../../../lib/proxy/conns/connect.ts";
import { Resources, testPki, until, within } from "../io_utils.ts";

Deno.test("connectTcp: resolves with the connected socket (half-open allowed); rejects with the socket error", async () => {
  const res = new Resources();
  try {
    const l = await res.listen(() => {});
    const s = res.socket(await within(connectTcp("127.0.0.1", l.port, 1000), "the connection"));
    assert.equal(s.remotePort, l.port);
    assert.equal(s.allowHalfOpen, true);
    const free = await res.freePort();
    await assert.rejects(
      connectTcp("127.0.0.1", free, 0),
      (e: { code?: string }) => e.code === "ECONNREFUSED",
    );
  } finally {
    await res.close();
  }
});

Deno.test("SNI defaults: the host name, none for IP literals", () => {
  assert.ok(isIpLiteral("127.0.0.1") && isIpLiteral("::1"));
  assert.ok(!isIpLiteral("example.com"));
  assert.equal(defaultSni("example.com", undefined), "example.com");
  assert.equal(defaultSni("192.168.1.1", undefined), null);
  assert.equal(defaultSni("::1", undefined), null);
  assert.equal(defaultSni("example.com", null), null, "explicitly none");
  assert.equal(defaultSni("10.0.0.1", "named.example"), "named.example");
  assert.equal(defaultSni("example.com", "10.0.0.2"), null, "an IP is never sent as SNI");
});

Deno.test("describeTlsError: names the server, marks verification failures, appends a code not in the message", () => {
  assert.equal(
    describeTlsError(
      Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }),
      "h:443",
    ),
    "TLS handshake with h:443 failed: certificate verify failed: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)",
  );
  assert.equal(
    describeTlsError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), "h:443"),
    "TLS handshake with h:443 failed: read ECONNRESET",
  );
  assert.equal(describeTlsError("odd", "h:1"), "TLS handshake with h:1 failed: odd");
});

Deno.test("parseSubjectAltName: DNS names and IP addresses, other kinds skipped", () => {
  assert.deepEqual(parseSubjectAltName(undefined), []);
  assert.deepEqual(
    parseSubjectAltName("DNS:a.example, IP Address:127.0.0.1, email:x@y, DNS:*.b.example"),
    ["a.example", "127.0.0.1", "*.b.example"],
  );
});

Deno.test("clientTls + tlsInfoOf: handshake over an open socket, SNI and ALPN sent, the server's chain and names", async () => {
  const res = new Resources();
  try {
    const { ca, leaf } = await testPki();
    let seenSni: string | undefined;
    const l = await res.listen(
      (s) => void (seenSni = (s as tls.TLSSocket & { servername?: string }).servername || undefined),
      {
        tls: { key: leaf.keyPem, cert: leaf.chainPem, ALPNProtocols: ["h2", "http/1.1"] },
      },
    );
    const raw = res.socket(await connectTcp("127.0.0.1", l.port, 1000));
    const sock = res.socket(
      await within(
        clientTls(raw, {
          host: "127.0.0.1",
          sni: "localhost",
          alpn: ["http/1.1"],
          insecure: false,
          ca: [ca.certPem],
          timeoutMs: 5000,
        }),
        "the handshake",
      ),
    );
    await until(() => seenSni !== undefined, "the server to see the SNI");
    assert.equal(seenSni, "localhost");
    const info = tlsInfoOf(sock, true);
    assert.equal(info.alpn, "http/1.1");
    assert.equal(info.tlsVersion, "TLSv1.3");
    assert.equal(info.certificateList.length, 2, "leaf and the (self-signed) CA");
    assert.ok(info.certificateList[1].includes(ca.certPem.split("\n")[1]), "the CA comes second");
    assert.deepEqual(info.peerNames, { cn: "localhost", sans: ["localhost", "127.0.0.1"], o: "IO Test Org" });
    const own = tlsInfoOf(sock, false);
    assert.deepEqual(own.certificateList, []);
    assert.equal(own.peerNames, undefined);
  } finally {
    await res.close();
  }
});

Deno.test("clientTls: verification failure, a server that hangs up, and a timeout are rejections", async () => {
  const res = new Resources();
  try {
    const { leaf } = await testPki();
    const l = await res.listen(() => {}, { tls: { key: leaf.keyPem, cert: leaf.chainPem } });
    const opts = { host: "127.0.0.1", sni: "localhost", alpn: [], insecure: false, timeoutMs: 5000 };
    await assert.rejects(
      clientTls(res.socket(await connectTcp("127.0.0.1", l.port, 1000)), opts),
      (e: { code?: string }) => /CERT|SIGNED|ISSUER/.test(e.code ?? ""),
    );
    const hangup = await res.listen((s) => s.destroy());
    await assert.rejects(
      clientTls(res.socket(await connectTcp("127.0.0.1", hangup.port, 1000)), opts),
      /closed|ECONNRESET|socket/i,
    );
    const mute = await res.listen((s) => s.on("data", () => {}));
    const t0 = Date.now();
    await assert.rejects(
      clientTls(res.socket(await connectTcp("127.0.0.1", mute.port, 1000)), { ...opts, timeoutMs: 150 }),
      (e: { code?: string; message: string }) =>
        e.code === "TIMEOUT" && /timed out after 0\.15s/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    await res.close();
  }
});
