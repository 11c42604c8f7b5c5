import assert from "node:assert/strict";
import { createPublicKey, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { type CertAuthority, loadOrCreateCA } from "../../../lib/tls/ca.ts";
import { asteriskForms, certCacheKey, CertStore } from "../../../lib/tls/certs.ts";
import * as der from "../../../lib/tls/der.ts";
import { ipToBytes, OID, readCertificate } from "../../../lib/tls/x509.ts";

const DAY = 24 * 3600 * 1000;
let caPromise: Promise<CertAuthority> | undefined;
let tmp: string | undefined;

function getCA(): Promise<CertAuthority> {
  return caPromise ??= (async () => {
    tmp = await Deno.makeTempDir({ prefix: "mitmdeno-certs-test-" });
    return loadOrCreateCA(tmp);
  })();
}

/** SAN entries as [tag, bytes] from the extension value. */
function sanEntries(certDer: Uint8Array): [number, Uint8Array][] {
  const v = readCertificate(certDer).extensions.get(OID.subjectAltName)!.value;
  return der.children(v, der.read(v)).map((n) => [n.tag, der.content(v, n)]);
}

for (const leafKey of ["ec", "rsa"] as const) {
  Deno.test(`a ${leafKey} leaf verifies against the CA and has mitmproxy's properties`, async () => {
    const ca = await getCA();
    const store = new CertStore(ca, { leafKey });
    const before = Date.now();
    const leaf = store.getCert({
      commonName: "example.com",
      sans: ["example.com", "www.example.com"],
      organization: "Org",
    });
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    assert.ok(cert.verify(caCert.publicKey), "signed by the CA key");
    assert.ok(cert.checkIssued(caCert), "issued by the CA");
    assert.equal(cert.issuer, caCert.subject);
    assert.equal(cert.subject.replace(/\n/g, ","), "CN=example.com,O=Org");
    assert.equal(cert.ca, false);
    assert.equal(cert.publicKey.asymmetricKeyType, leafKey);
    assert.equal(cert.checkHost("www.example.com"), "www.example.com");
    assert.equal(cert.checkHost("other.com"), undefined);
    const nb = new Date(cert.validFrom).getTime();
    assert.ok(Math.abs(nb - (before - 2 * DAY)) < 60_000);
    assert.equal(new Date(cert.validTo).getTime() - nb, 199 * DAY);
    assert.ok(new Date(cert.validTo).getTime() - nb < 398 * DAY);
    // the key matches the certificate
    assert.deepEqual(
      createPublicKey(leaf.keyPem).export({ type: "spki", format: "der" }),
      cert.publicKey.export({ type: "spki", format: "der" }),
    );
    // extensions: EKU serverAuth, SAN (non-critical, there is a CN), AKI = CA SKI, no SKI/BC/KU
    const info = readCertificate(leaf.certDer);
    assert.deepEqual(
      [...info.extensions.keys()].sort(),
      [OID.extKeyUsage, OID.subjectAltName, OID.authorityKeyIdentifier].sort(),
    );
    assert.equal(info.extensions.get(OID.subjectAltName)!.critical, false);
    const eku = info.extensions.get(OID.extKeyUsage)!.value;
    assert.equal(der.oidToString(der.content(eku, der.children(eku, der.read(eku))[0])), OID.serverAuth);
    const aki = info.extensions.get(OID.authorityKeyIdentifier)!.value;
    const [keyId] = der.children(aki, der.read(aki));
    assert.equal(keyId.tag, 0x80);
    assert.deepEqual(der.content(aki, keyId), ca.subjectKeyId);
    // the chain is leaf + CA
    assert.equal(leaf.chainPem, leaf.certPem + ca.certPem);
    assert.ok(leaf.secureContext);
  });
}

Deno.test("SAN entries: DNS names vs IPv4 and IPv6 addresses, IDNA", async () => {
  const store = new CertStore(await getCA());
  const leaf = store.getCert({
    commonName: "10.0.0.1",
    sans: [
      "10.0.0.1",
      "::1",
      "[2001:db8::8:800:200c:417a]",
      "example.com",
      "bücher.example",
      "*.wild.test",
      "::ffff:1.2.3.4",
    ],
  });
  const entries = sanEntries(leaf.certDer);
  const dns = entries.filter(([t]) => t === 0x82).map(([, v]) => new TextDecoder().decode(v));
  const ips = entries.filter(([t]) => t === 0x87).map(([, v]) => Buffer.from(v).toString("hex"));
  assert.deepEqual(dns, ["example.com", "xn--bcher-kva.example", "*.wild.test"]);
  assert.deepEqual(ips, [
    "0a000001",
    "00000000000000000000000000000001",
    "20010db8000000000008080020 0c417a".replace(" ", ""),
    "00000000000000000000ffff01020304",
  ]);
  const cert = new X509Certificate(leaf.certPem);
  assert.equal(cert.checkIP("10.0.0.1"), "10.0.0.1");
  assert.equal(cert.checkIP("::1"), "::1");
});

Deno.test("ipToBytes detects IP literals only", () => {
  assert.deepEqual(ipToBytes("127.0.0.1"), Uint8Array.of(127, 0, 0, 1));
  assert.equal(ipToBytes("example.com"), undefined);
  assert.equal(ipToBytes("1.2.3"), undefined);
  assert.equal(ipToBytes("256.1.1.1"), undefined);
  assert.equal(ipToBytes("1::2::3"), undefined);
  assert.deepEqual(ipToBytes("fe80::1%eth0"), Uint8Array.of(0xfe, 0x80, ...new Array(13).fill(0), 1));
  assert.deepEqual(
    ipToBytes("1:2:3:4:5:6:7:8"),
    Uint8Array.of(0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8),
  );
});

Deno.test("no CN: SAN is critical and the subject is empty; a CN of 64+ chars is dropped", async () => {
  const store = new CertStore(await getCA());
  for (const commonName of [undefined, "a".repeat(64) + ".test"]) {
    const leaf = store.getCert({ commonName, sans: ["x.test"] });
    const info = readCertificate(leaf.certDer);
    assert.equal(info.extensions.get(OID.subjectAltName)!.critical, true);
    assert.equal(new X509Certificate(leaf.certPem).subject ?? "", "");
  }
});

Deno.test("cache: same request returns the same object; LRU eviction at capacity", async () => {
  const store = new CertStore(await getCA(), { capacity: 3 });
  const a = store.getCert({ commonName: "a.test", sans: ["a.test", "b.test"] });
  assert.equal(
    store.getCert({ commonName: "a.test", sans: ["b.test", "a.test"] }),
    a,
    "SAN order does not matter",
  );
  assert.notEqual(store.getCert({ commonName: "a.test", sans: ["a.test"] }), a);
  assert.notEqual(store.getCert({ commonName: "a.test", sans: ["a.test", "b.test"], organization: "O" }), a);
  assert.equal(store.size, 3);
  store.getCert({ commonName: "a.test", sans: ["a.test", "b.test"] }); // touch a: now most recent
  store.getCert({ commonName: "d.test", sans: ["d.test"] }); // evicts the least recently used
  assert.equal(store.size, 3);
  assert.equal(store.getCert({ commonName: "a.test", sans: ["a.test", "b.test"] }), a);
  assert.equal(certCacheKey({ sans: ["b", "a", "a"] }), certCacheKey({ sans: ["a", "b"] }));
});

Deno.test("all leaves share one key; each has its own serial", async () => {
  const store = new CertStore(await getCA());
  const a = store.getCert({ sans: ["a.test"] });
  const b = store.getCert({ sans: ["b.test"] });
  assert.equal(a.keyPem, b.keyPem);
  assert.notEqual(new X509Certificate(a.certPem).serialNumber, new X509Certificate(b.certPem).serialNumber);
});

Deno.test({
  name: "cleanup certs test CA",
  fn: async () => {
    if (tmp) await Deno.remove(tmp, { recursive: true });
  },
});

Deno.test("custom certificates (certs): pattern, wildcard forms, own names, '*' last, minted otherwise", async () => {
  const ca = await getCA();
  const store = new CertStore(ca, { secureContext: false });
  const mk = (n: string) => ({ ...store.getCert({ commonName: n, sans: [n] }), certPem: `custom ${n}` });
  const wild = mk("wild"), own = mk("own"), any = mk("any");
  store.addCustom(wild, "*.example.com", []);
  store.addCustom(own, "pattern.test", ["cn.test", "10.0.0.1"]);
  assert.deepEqual(asteriskForms("a.b.example.com"), [
    "a.b.example.com",
    "*.b.example.com",
    "*.example.com",
    "*.com",
  ]);
  assert.equal(store.getCert({ sans: ["www.example.com"] }).certPem, "custom wild");
  assert.equal(store.getCert({ sans: ["a.b.example.com"] }).certPem, "custom wild");
  assert.notEqual(store.getCert({ sans: ["example.com"] }).certPem, "custom wild", "*.x does not cover x");
  assert.equal(store.getCert({ sans: ["pattern.test"] }).certPem, "custom own");
  assert.equal(store.getCert({ sans: ["10.0.0.1"] }).certPem, "custom own", "the certificate's own SAN");
  // the CN is looked up first, then each SAN (mitmproxy's get_cert)
  assert.equal(store.getCert({ commonName: "cn.test", sans: ["www.example.com"] }).certPem, "custom own");
  assert.match(store.getCert({ sans: ["elsewhere.test"] }).certPem, /BEGIN CERTIFICATE/);
  store.addCustom(any, "*", []);
  assert.equal(store.getCert({ sans: ["elsewhere.test"] }).certPem, "custom any");
  assert.equal(store.getCert({ sans: ["www.example.com"] }).certPem, "custom wild", "a pattern beats '*'");
});
