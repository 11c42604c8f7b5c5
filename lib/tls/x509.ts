/**
 * Building and reading X.509 certificates with the native signer of `node:crypto`.
 *
 * node-forge can build certificates but signs in JavaScript (~15 ms per RSA-2048 signature) and only
 * knows RSA keys; here the TBSCertificate is assembled with {@link ./der.ts} and signed natively, so a
 * leaf costs well under a millisecond and its public key may be RSA or EC.
 * @module
 */
import { createHash, type KeyObject, randomBytes, sign } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { Buffer } from "node:buffer";
import * as der from "./der.ts";

/** Object identifiers used here. */
export const OID = {
  commonName: "2.5.4.3",
  organizationName: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
} as const;

/** What goes into a certificate; all DER parts are complete encodings. */
export interface CertificateSpec {
  /** Serial number magnitude (see {@link randomSerial}). */
  serial: Uint8Array;
  /** Issuer Name (DER). */
  issuer: Uint8Array;
  /** Subject Name (DER). */
  subject: Uint8Array;
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** SubjectPublicKeyInfo of the certified key (DER). */
  spki: Uint8Array;
  /** Extensions, each built with {@link extension}. */
  extensions: Uint8Array[];
}

/** Builds and signs a v3 certificate with `signingKey` (RSA or EC private key); returns its DER. */
export function signCertificate(spec: CertificateSpec, signingKey: KeyObject): Uint8Array {
  const algId = signatureAlgorithm(signingKey);
  const tbs = der.seq(
    der.explicit(0, der.smallInt(2)),
    der.uint(spec.serial),
    algId,
    spec.issuer,
    der.seq(der.time(spec.notBefore), der.time(spec.notAfter)),
    spec.subject,
    spec.spki,
    ...(spec.extensions.length ? [der.explicit(3, der.seq(...spec.extensions))] : []),
  );
  const sig = sign("sha256", tbs, signingKey);
  return der.seq(tbs, algId, der.bitString(new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)));
}

function signatureAlgorithm(key: KeyObject): Uint8Array {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return der.seq(der.oid(OID.sha256WithRSAEncryption), der.nul());
    case "ec":
      return der.seq(der.oid(OID.ecdsaWithSHA256));
    default:
      throw new Error(`unsupported CA key type ${key.asymmetricKeyType} (use RSA or EC)`);
  }
}

/** A Name with an optional CN and O, in that order, as UTF8Strings (what mitmproxy writes). */
export function name(attrs: { cn?: string; o?: string }): Uint8Array {
  const rdns: Uint8Array[] = [];
  if (attrs.cn !== undefined) rdns.push(der.set(der.seq(der.oid(OID.commonName), der.utf8(attrs.cn))));
  if (attrs.o !== undefined) rdns.push(der.set(der.seq(der.oid(OID.organizationName), der.utf8(attrs.o))));
  return der.seq(...rdns);
}

/** One Extension: `value` is the DER that goes inside the extnValue OCTET STRING. */
export function extension(extOid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return der.seq(der.oid(extOid), ...(critical ? [der.bool(true)] : []), der.octets(value));
}

/** basicConstraints CA:TRUE (no pathlen), critical. */
export const basicConstraintsCA = (): Uint8Array =>
  extension(OID.basicConstraints, true, der.seq(der.bool(true)));

/** keyUsage keyCertSign + cRLSign, critical. */
export const keyUsageCA = (): Uint8Array =>
  // bits 5 (keyCertSign) and 6 (cRLSign) -> 0b0000_0110, one unused trailing bit
  extension(OID.keyUsage, true, der.bitString(Uint8Array.of(0x06), 1));

/** extendedKeyUsage serverAuth, non-critical. */
export const extKeyUsageServerAuth = (): Uint8Array =>
  extension(OID.extKeyUsage, false, der.seq(der.oid(OID.serverAuth)));

/** subjectKeyIdentifier, non-critical. */
export const subjectKeyIdentifier = (keyId: Uint8Array): Uint8Array =>
  extension(OID.subjectKeyIdentifier, false, der.octets(keyId));

/** authorityKeyIdentifier with only the keyIdentifier field, non-critical. */
export const authorityKeyIdentifier = (keyId: Uint8Array): Uint8Array =>
  extension(OID.authorityKeyIdentifier, false, der.seq(der.implicit(0, keyId)));

/**
 * subjectAltName from host names and IP literals (IPv4, IPv6, optionally in brackets). DNS names are
 * IDNA-encoded (wildcard labels kept). Critical iff `critical` (mitmproxy: when there is no CN).
 */
export function subjectAltName(names: readonly string[], critical: boolean): Uint8Array {
  const entries = names.map((n) => {
    const ip = ipToBytes(n);
    return ip ? der.implicit(7, ip) : der.tlv(0x82, new TextEncoder().encode(idnaEncode(n)));
  });
  return extension(OID.subjectAltName, critical, der.seq(...entries));
}

/** IDNA (punycode) encoding of a host name; a leading `*.` wildcard label is kept as is. */
export function idnaEncode(host: string): string {
  if (/^[\x21-\x7e]*$/.test(host)) return host.toLowerCase();
  const wild = host.startsWith("*.");
  const rest = wild ? host.slice(2) : host;
  let ascii: string;
  try {
    ascii = new URL(`http://${rest}/`).hostname;
  } catch {
    ascii = rest;
  }
  return wild ? `*.${ascii}` : ascii;
}

/** The 4 or 16 bytes of an IP literal (brackets allowed around IPv6), or undefined if `s` is not one. */
export function ipToBytes(s: string): Uint8Array | undefined {
  const h = s.startsWith("[") && s.endsWith("]") ? s.slice(1, -1) : s;
  if (isIPv4(h)) return Uint8Array.from(h.split(".").map(Number));
  if (!isIPv6(h)) return undefined;
  const zoneless = h.replace(/%.*$/, "");
  const [head, tail] = zoneless.includes("::") ? zoneless.split("::") : [zoneless, undefined];
  const groups = (part: string | undefined): number[] => {
    if (!part) return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (g.includes(".")) {
        const [a, b, c, d] = g.split(".").map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const hg = groups(head);
  const tg = groups(tail);
  const all = tail === undefined ? hg : [...hg, ...new Array(8 - hg.length - tg.length).fill(0), ...tg];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** A random positive serial of 128 bits (first bit cleared so it stays positive without padding). */
export function randomSerial(): Uint8Array {
  const b = new Uint8Array(randomBytes(16));
  b[0] = (b[0] & 0x7f) | 0x40;
  return b;
}

/** RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey BIT STRING value (what mitmproxy uses). */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const top = der.read(spki);
  const [, bits] = der.children(spki, top);
  const value = der.content(spki, bits).subarray(1); // skip the unused-bits byte
  return new Uint8Array(createHash("sha1").update(value).digest());
}

/** The parts of a certificate that issuing leaves needs. Byte arrays are views into the input. */
export interface CertificateInfo {
  /** Subject Name, DER (copied verbatim as the issuer of leaves so names match byte for byte). */
  subject: Uint8Array;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  /** The subjectKeyIdentifier extension value, if present. */
  subjectKeyId?: Uint8Array;
  /** All extensions by dotted OID: critical flag and the extnValue content. */
  extensions: Map<string, { critical: boolean; value: Uint8Array }>;
}

/** Reads subject, SPKI and extensions of a DER certificate. Throws on malformed input. */
export function readCertificate(certDer: Uint8Array): CertificateInfo {
  const [tbsNode] = der.children(certDer, der.read(certDer));
  let tbs = der.children(certDer, tbsNode);
  if (tbs[0]?.tag === 0xa0) tbs = tbs.slice(1); // version
  // serial, signature, issuer, validity, subject, spki, then optional [1] [2] [3]
  if (tbs.length < 6) throw new Error("not an X.509 certificate");
  const extensions = new Map<string, { critical: boolean; value: Uint8Array }>();
  const extWrap = tbs.slice(6).find((n) => n.tag === 0xa3);
  if (extWrap) {
    const [list] = der.children(certDer, extWrap);
    for (const ext of der.children(certDer, list)) {
      const parts = der.children(certDer, ext);
      const critical = parts.length === 3 && certDer[parts[1].contentStart] !== 0;
      extensions.set(der.oidToString(der.content(certDer, parts[0])), {
        critical,
        value: der.content(certDer, parts[parts.length - 1]),
      });
    }
  }
  const skiExt = extensions.get(OID.subjectKeyIdentifier);
  let subjectKeyId: Uint8Array | undefined;
  if (skiExt) {
    const n = der.read(skiExt.value);
    subjectKeyId = der.content(skiExt.value, n);
  }
  return {
    subject: der.raw(certDer, tbs[4]),
    spki: der.raw(certDer, tbs[5]),
    subjectKeyId,
    extensions,
  };
}

/** PEM-encodes DER bytes under `label` (64-column base64, trailing newline). */
export function toPem(label: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64").replace(
    /.{64}/g,
    "$&\n",
  ).replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** All PEM blocks in `text`, in order. Throws if a block's base64 is invalid. */
export function fromPem(text: string): { label: string; der: Uint8Array; pem: string }[] {
  const out: { label: string; der: Uint8Array; pem: string }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    const b64 = m[2].replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new Error(`invalid base64 in PEM block ${m[1]}`);
    out.push({ label: m[1], der: new Uint8Array(Buffer.from(b64, "base64")), pem: m[0] + "\n" });
  }
  return out;
}
