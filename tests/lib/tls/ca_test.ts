import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import forge from "node-forge";
import { caFilePaths, loadOrCreateCA } from "../../../lib/tls/ca.ts";
import { OID, readCertificate } from "../../../lib/tls/x509.ts";

const DAY = 24 * 3600 * 1000;

async function withTempDir(f: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-ca-test-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadOrCreateCA creates the CA files with the right modes and formats", async () => {
  await withTempDir(async (dir) => {
    const confdir = `${dir}/conf`;
    const ca = await loadOrCreateCA(confdir);
    const p = caFilePaths(confdir);
    assert.deepEqual(ca.paths, p);
    assert.match(p.pem, /\/mitmdeno-ca\.pem$/);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(p.pem)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(p.p12)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(p.certPem)).mode! & 0o077 & 0o022, 0); // not group/other writable
    }
    const pem = await Deno.readTextFile(p.pem);
    assert.match(pem, /^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+-----BEGIN CERTIFICATE-----/);
    assert.equal(await Deno.readTextFile(p.certPem), ca.certPem);
    assert.doesNotMatch(ca.certPem, /PRIVATE/);
    // .cer is DER, byte-identical to the cert
    assert.deepEqual(new Uint8Array(await Deno.readFile(p.certCer)), ca.certDer);
    // PKCS#12 files read back with node-forge: key+cert, and cert only
    const p12 = (path: string) =>
      Deno.readFile(path).then((b) =>
        forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.binary.raw.encode(b)), true, null)
      );
    const full = await p12(p.p12);
    const keyBags = full.getBags({ bagType: forge.pki.oids.keyBag })[forge.pki.oids.keyBag]!;
    const certBags = full.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag]!;
    assert.equal(keyBags.length, 1);
    assert.equal(certBags.length, 1);
    assert.equal(certBags[0].cert!.subject.getField("CN").value, "mitmdeno");
    const pub = await p12(p.certP12);
    assert.equal(pub.getBags({ bagType: forge.pki.oids.keyBag })[forge.pki.oids.keyBag]?.length ?? 0, 0);
    assert.equal(pub.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag]!.length, 1);
  });
});

Deno.test("the generated CA has mitmproxy's properties", async () => {
  await withTempDir(async (dir) => {
    const before = Date.now();
    const ca = await loadOrCreateCA(dir);
    const cert = new X509Certificate(ca.certDer);
    assert.equal(cert.subject.replace(/\n/g, ","), "CN=mitmdeno,O=mitmdeno");
    assert.equal(cert.issuer, cert.subject);
    assert.equal(cert.ca, true);
    assert.ok(cert.verify(cert.publicKey), "self-signed");
    assert.equal(cert.publicKey.asymmetricKeyType, "rsa");
    assert.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const nb = new Date(cert.validFrom).getTime();
    const na = new Date(cert.validTo).getTime();
    assert.ok(Math.abs(nb - (before - 2 * DAY)) < 60_000, "notBefore = now - 2 days");
    assert.equal(na - nb, 3650 * DAY);
    assert.equal(ca.notAfter.getTime(), na);
    assert.equal(ca.expired, false);
    // extensions, parsed with node-forge
    const f = forge.pki.certificateFromPem(ca.certPem);
    assert.equal(f.siginfo.algorithmOid, forge.pki.oids.sha256WithRSAEncryption);
    const bc = f.getExtension("basicConstraints") as {
      cA: boolean;
      critical: boolean;
      pathLenConstraint?: number;
    };
    assert.equal(bc.cA, true);
    assert.equal(bc.critical, true);
    assert.equal(bc.pathLenConstraint, undefined);
    const ku = f.getExtension("keyUsage") as Record<string, boolean>;
    assert.equal(ku.critical, true);
    assert.equal(ku.keyCertSign, true);
    assert.equal(ku.cRLSign, true);
    assert.equal(ku.digitalSignature, false);
    const eku = f.getExtension("extKeyUsage") as Record<string, boolean>;
    assert.equal(eku.serverAuth, true);
    assert.equal(eku.critical, false);
    const ski = f.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier: string };
    assert.equal(ski.subjectKeyIdentifier, f.generateSubjectKeyIdentifier().toHex());
    assert.equal(Buffer.from(ca.subjectKeyId).toString("hex"), ski.subjectKeyIdentifier);
    assert.equal(f.getExtension("authorityKeyIdentifier") ?? undefined, undefined);
    // fingerprint and SPKI hash
    assert.equal(ca.fingerprintSha256, cert.fingerprint256);
    assert.match(ca.fingerprintSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const spki = cert.publicKey.export({ type: "spki", format: "der" });
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(spki)));
    assert.equal(ca.spkiSha256Base64, btoa(String.fromCharCode(...digest)));
    assert.ok(readCertificate(ca.certDer).extensions.get(OID.basicConstraints)?.critical);
  });
});

Deno.test("loadOrCreateCA loads an existing CA instead of replacing it, and restores missing files", async () => {
  await withTempDir(async (dir) => {
    const a = await loadOrCreateCA(dir);
    await Deno.remove(a.paths.certCer);
    await Deno.remove(a.paths.p12);
    const b = await loadOrCreateCA(dir);
    assert.equal(b.fingerprintSha256, a.fingerprintSha256);
    assert.deepEqual(new Uint8Array(await Deno.readFile(b.paths.certCer)), a.certDer);
    assert.ok((await Deno.stat(b.paths.p12)).isFile);
  });
});

Deno.test("a corrupt CA file throws an error naming the file and is left alone", async () => {
  await withTempDir(async (dir) => {
    const paths = caFilePaths(dir);
    const cases: [string, RegExp][] = [
      ["garbage, not PEM at all\n", /no PEM private key/],
      ["-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", /.+/],
    ];
    const other = await loadOrCreateCA(`${dir}/other`);
    const mine = await loadOrCreateCA(`${dir}/mine`);
    // key of one CA with the cert of another
    cases.push([mine.keyPem + other.certPem, /does not match/]);
    // a key without a cert
    cases.push([mine.keyPem, /no PEM certificate/]);
    // a truncated cert
    cases.push([mine.keyPem + mine.certPem.slice(0, 200) + "\n-----END CERTIFICATE-----\n", /.+/]);
    for (const [content, why] of cases) {
      await Deno.writeTextFile(paths.pem, content);
      await assert.rejects(loadOrCreateCA(dir), (e: Error) => {
        assert.ok(e.message.includes(paths.pem), e.message);
        assert.match(e.message, why);
        return true;
      });
      assert.equal(await Deno.readTextFile(paths.pem), content, "never replaced");
    }
  });
});

Deno.test("exportTo writes the public forms only", async () => {
  await withTempDir(async (dir) => {
    const ca = await loadOrCreateCA(`${dir}/conf`, { keySize: 2048 });
    const out = await ca.exportTo(`${dir}/export`);
    assert.deepEqual(
      [...Deno.readDirSync(`${dir}/export`)].map((e) => e.name).sort(),
      ["mitmdeno-ca-cert.cer", "mitmdeno-ca-cert.p12", "mitmdeno-ca-cert.pem"],
    );
    assert.equal(await Deno.readTextFile(out.certPem), ca.certPem);
    assert.deepEqual(new Uint8Array(await Deno.readFile(out.certCer)), ca.certDer);
    const p12 = await Deno.readFile(out.certP12);
    assert.ok(!new TextDecoder("latin1").decode(p12).includes("PRIVATE"));
  });
});
