/**
 * The certificate authority of a conf dir: created on first start like mitmproxy's `create_ca`
 * (MITMPROXY.md §8.1), stored in the same set of files with mitmdeno names (§8.2), loaded afterwards.
 * @module
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  X509Certificate,
} from "node:crypto";
import { promisify } from "node:util";
import { Buffer } from "node:buffer";
import * as x509 from "./x509.ts";

/** The default conf dir basename, also the CA's CN and O and the file name prefix. */
export const DEFAULT_BASENAME = "mitmdeno";

/** mitmproxy's file prefix: a conf dir with `mitmproxy-ca.pem` and no mitmdeno CA uses that CA. */
export const MITMPROXY_BASENAME = "mitmproxy";

/** Where the CA files of a conf dir live. */
export interface CaFilePaths {
  /** `<basename>-ca.pem`: private key (PKCS#1 "RSA PRIVATE KEY") followed by the cert. Mode 0600. */
  pem: string;
  /** `<basename>-ca.p12`: PKCS#12 with key and cert, no password. Mode 0600. */
  p12: string;
  /** `<basename>-ca-cert.pem`: the cert in PEM. */
  certPem: string;
  /** `<basename>-ca-cert.cer`: the cert in DER (for Android and Windows). */
  certCer: string;
  /** `<basename>-ca-cert.p12`: PKCS#12 with the cert only, no password. */
  certP12: string;
}

/** The public files {@link CertAuthority.exportTo} writes. */
export type PublicCaFilePaths = Pick<CaFilePaths, "certPem" | "certCer" | "certP12">;

/** A loaded CA: what leaf minting needs plus what the `ca` command and browsers need. */
export interface CertAuthority {
  /** The conf dir it was loaded from. */
  confdir: string;
  /** The file paths in the conf dir. */
  paths: CaFilePaths;
  /** The CA certificate, PEM. */
  certPem: string;
  /** The CA certificate, DER. */
  certDer: Uint8Array;
  /** Extra certificates that followed the CA cert in `<basename>-ca.pem` (PEM, possibly empty). */
  chainPem: string;
  /** The private key (PEM as stored, PKCS#1 for generated CAs; encrypted when the file's is). */
  keyPem: string;
  /** The private key as a native key object, for signing. */
  key: KeyObject;
  /** The CA subject Name, DER: leaves copy it verbatim as their issuer. */
  subject: Uint8Array;
  /** The CA's subjectKeyIdentifier (computed from the key if the cert has none): leaves' AKI. */
  subjectKeyId: Uint8Array;
  /** SHA-256 of the DER cert, upper-case hex with colons (as `openssl x509 -fingerprint -sha256`). */
  fingerprintSha256: string;
  /** Base64 SHA-256 of the SubjectPublicKeyInfo, for Chromium's `--ignore-certificate-errors-spki-list`. */
  spkiSha256Base64: string;
  /** Validity start. */
  notBefore: Date;
  /** Validity end. */
  notAfter: Date;
  /** True when the CA has expired: tell the user to delete the CA files in the conf dir. */
  expired: boolean;
  /** Writes the public forms (PEM, DER .cer, cert-only PKCS#12) into `dir` (created if needed). */
  exportTo(dir: string): Promise<PublicCaFilePaths>;
}

/** Options of {@link loadOrCreateCA}. */
export interface CaOptions {
  /** RSA key size for a new CA (mitmproxy's `key_size`), default 2048. */
  keySize?: number;
  /** File prefix and CA CN/O, default "mitmdeno". */
  basename?: string;
  /** Passphrase of an encrypted CA private key (mitmproxy's `cert_passphrase`). */
  passphrase?: string | null;
}

/** `~/.mitmdeno` (HOME, or USERPROFILE on Windows). */
export function defaultConfdir(): string {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return `${home}/.${DEFAULT_BASENAME}`;
}

/** The CA file paths of a conf dir. */
export function caFilePaths(confdir: string, basename = DEFAULT_BASENAME): CaFilePaths {
  const p = (suffix: string) => `${confdir}/${basename}-${suffix}`;
  return {
    pem: p("ca.pem"),
    p12: p("ca.p12"),
    certPem: p("ca-cert.pem"),
    certCer: p("ca-cert.cer"),
    certP12: p("ca-cert.p12"),
  };
}

const DAY = 24 * 3600 * 1000;

/**
 * Loads the CA of `confdir`, creating it (and the conf dir) when `<basename>-ca.pem` does not exist.
 * A CA file that exists but cannot be read or parsed throws an Error naming the file; it is never
 * replaced. Missing derived files (.p12, -cert.*) are rewritten from a loaded CA.
 */
export async function loadOrCreateCA(confdir: string, opts: CaOptions = {}): Promise<CertAuthority> {
  const basename = opts.basename ?? DEFAULT_BASENAME;
  const paths = caFilePaths(confdir, basename);
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(paths.pem);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw caFileError(paths.pem, e);
  }
  if (text === undefined && opts.basename === undefined) {
    // a conf dir of mitmproxy's (or one a mitmproxy CA was copied into): use the CA already trusted
    const theirs = caFilePaths(confdir, MITMPROXY_BASENAME);
    try {
      const mine = await Deno.readTextFile(theirs.pem);
      let ca: CertAuthority;
      try {
        ca = parseCaPem(mine, confdir, theirs, opts.passphrase);
      } catch (e) {
        throw caFileError(theirs.pem, e);
      }
      await writeAllFiles(ca, true);
      return ca;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  if (text === undefined) {
    await Deno.mkdir(confdir, { recursive: true });
    const ca = await createCA(confdir, paths, basename, opts.keySize ?? 2048);
    await writeAllFiles(ca, false);
    return ca;
  }
  let ca: CertAuthority;
  try {
    ca = parseCaPem(text, confdir, paths, opts.passphrase);
  } catch (e) {
    throw caFileError(paths.pem, e);
  }
  await writeAllFiles(ca, true);
  return ca;
}

/**
 * Import a CA (a key and certificate in one PEM, as mitmproxy's `mitmproxy-ca.pem`) into `confdir` as its
 * mitmdeno CA. `from` is that file or a directory holding `mitmproxy-ca.pem` (e.g. `~/.mitmproxy`). An
 * existing mitmdeno CA in `confdir` is replaced only with `force`: devices may trust it. An encrypted key
 * needs `passphrase` (and stays encrypted in the conf dir).
 */
export async function importCA(
  from: string,
  confdir: string,
  opts: { force?: boolean; passphrase?: string | null } = {},
): Promise<CertAuthority> {
  let file = from;
  try {
    if ((await Deno.stat(from)).isDirectory) file = caFilePaths(from, MITMPROXY_BASENAME).pem;
  } catch (e) {
    throw new Error(`cannot import a CA from ${from}: ${(e as Error).message}`);
  }
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new Error(`cannot import a CA from ${file}: ${(e as Error).message}`);
  }
  const paths = caFilePaths(confdir, DEFAULT_BASENAME);
  let ca: CertAuthority;
  try {
    ca = parseCaPem(text, confdir, paths, opts.passphrase);
  } catch (e) {
    throw new Error(`cannot import a CA from ${file}: ${(e as Error).message}`);
  }
  if (!opts.force && await exists(paths.pem)) {
    throw new Error(
      `${paths.pem} exists: devices may trust that CA. Use --force to replace it with the one from ${file}`,
    );
  }
  await Deno.mkdir(confdir, { recursive: true });
  for (const p of [paths.p12, paths.certP12]) await Deno.remove(p).catch(() => {});
  await writeAllFiles(ca, false);
  return ca;
}

function caFileError(path: string, cause: unknown): Error {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new Error(
    `cannot load the CA from ${path}: ${why}. Fix or delete the CA files (${
      path.replace(/-ca\.pem$/, "-ca*")
    }) ` +
      `to generate a new CA.`,
    { cause },
  );
}

async function createCA(confdir: string, paths: CaFilePaths, basename: string, keySize: number) {
  const { privateKey } = await promisify(generateKeyPair)("rsa", {
    modulusLength: keySize,
    publicExponent: 65537,
  });
  const spki = new Uint8Array(createPublicKey(privateKey).export({ type: "spki", format: "der" }));
  const subject = x509.name({ cn: basename, o: basename });
  const notBefore = new Date(Date.now() - 2 * DAY);
  const certDer = x509.signCertificate({
    serial: x509.randomSerial(),
    issuer: subject,
    subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 3650 * DAY),
    spki,
    extensions: [
      x509.basicConstraintsCA(),
      x509.extKeyUsageServerAuth(),
      x509.keyUsageCA(),
      x509.subjectKeyIdentifier(x509.keyIdentifier(spki)),
    ],
  }, privateKey);
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }) as string;
  return parseCaPem(keyPem + x509.toPem("CERTIFICATE", certDer), confdir, paths);
}

/** Whether a PEM private key block is encrypted (PKCS#8 "ENCRYPTED PRIVATE KEY" or legacy Proc-Type). */
export function isEncryptedKey(block: { label: string; pem: string }): boolean {
  return block.label === "ENCRYPTED PRIVATE KEY" || /Proc-Type: 4,ENCRYPTED/.test(block.pem);
}

/**
 * A private key from a PEM block, decrypted with `passphrase` when it is encrypted (mitmproxy's
 * `cert_passphrase`). A passphrase given for an unencrypted key is ignored, as mitmproxy does.
 */
export function readPrivateKey(block: { label: string; pem: string }, passphrase?: string | null): KeyObject {
  if (!isEncryptedKey(block)) return createPrivateKey(block.pem);
  if (!passphrase) throw new Error("the private key is encrypted: set cert_passphrase");
  try {
    return createPrivateKey({ key: block.pem, passphrase });
  } catch {
    throw new Error("cannot decrypt the private key: wrong cert_passphrase?");
  }
}

/** Parses the contents of `<basename>-ca.pem` (a private key and one or more certs, in any order). */
function parseCaPem(
  text: string,
  confdir: string,
  paths: CaFilePaths,
  passphrase?: string | null,
): CertAuthority {
  const blocks = x509.fromPem(text);
  const keyBlock = blocks.find((b) => /PRIVATE KEY$/.test(b.label));
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  if (!keyBlock) throw new Error("no PEM private key in the file");
  if (certs.length === 0) throw new Error("no PEM certificate in the file");
  const key = readPrivateKey(keyBlock, passphrase);
  const certDer = certs[0].der;
  const cert = new X509Certificate(certDer);
  const info = x509.readCertificate(certDer);
  const keySpki = new Uint8Array(createPublicKey(key).export({ type: "spki", format: "der" }));
  if (!Buffer.from(keySpki).equals(Buffer.from(info.spki))) {
    throw new Error("the private key does not match the certificate");
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  const ca: CertAuthority = {
    confdir,
    paths,
    certPem: certs[0].pem,
    certDer,
    chainPem: certs.slice(1).map((c) => c.pem).join(""),
    keyPem: keyBlock.pem,
    key,
    subject: info.subject,
    subjectKeyId: info.subjectKeyId ?? x509.keyIdentifier(info.spki),
    fingerprintSha256: cert.fingerprint256,
    spkiSha256Base64: createHash("sha256").update(info.spki).digest("base64"),
    notBefore,
    notAfter,
    expired: notAfter.getTime() < Date.now(),
    exportTo: (dir) => exportPublic(ca, dir),
  };
  return ca;
}

/**
 * PKCS#12 (no password, SHA-1 MAC, what forge and OpenSSL both read) with the cert and optionally the key.
 * node-forge is loaded only here: imported at start-up it cost every proxy process ~3 MiB of RSS (anonymous
 * memory of an idle proxy), and the .p12 files are written once, when the CA is created.
 */
async function pkcs12(ca: CertAuthority, withKey: boolean): Promise<Uint8Array> {
  const { default: forge } = await import("node-forge");
  const cert = forge.pki.certificateFromPem(ca.certPem);
  // the key as stored may be encrypted (cert_passphrase): forge gets the decrypted one
  const key = withKey
    ? forge.pki.privateKeyFromPem(ca.key.export({ type: "pkcs1", format: "pem" }) as string)
    : null;
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, [cert], null, { algorithm: "3des", friendlyName: "mitmdeno" });
  return new Uint8Array(Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary"));
}

async function writeFile(
  path: string,
  data: () => string | Uint8Array | Promise<Uint8Array>,
  mode: number,
  onlyIfMissing: boolean,
): Promise<void> {
  if (onlyIfMissing && await exists(path)) return;
  const d = await data();
  const bytes = typeof d === "string" ? new TextEncoder().encode(d) : d;
  // write to a temp file and rename, so a crash never leaves a half-written CA file behind
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, bytes, { mode });
  if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, path);
}

async function writeAllFiles(ca: CertAuthority, onlyIfMissing: boolean): Promise<void> {
  const p = ca.paths;
  // public forms and the .p12 first, the key+cert PEM last: it is what marks the CA as existing
  await writeFile(p.certPem, () => ca.certPem, 0o644, onlyIfMissing);
  await writeFile(p.certCer, () => ca.certDer, 0o644, onlyIfMissing);
  if (ca.key.asymmetricKeyType === "rsa") { // node-forge writes PKCS#12 for RSA only
    await writeFile(p.certP12, () => pkcs12(ca, false), 0o644, onlyIfMissing);
    await writeFile(p.p12, () => pkcs12(ca, true), 0o600, onlyIfMissing);
  }
  await writeFile(p.pem, () => ca.keyPem + ca.certPem + ca.chainPem, 0o600, onlyIfMissing);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function exportPublic(ca: CertAuthority, dir: string): Promise<PublicCaFilePaths> {
  await Deno.mkdir(dir, { recursive: true });
  const basename = ca.paths.pem.slice(ca.paths.pem.lastIndexOf("/") + 1).replace(/-ca\.pem$/, "");
  const out = caFilePaths(dir, basename);
  await writeFile(out.certPem, () => ca.certPem, 0o644, false);
  await writeFile(out.certCer, () => ca.certDer, 0o644, false);
  await writeFile(out.certP12, () => pkcs12(ca, false), 0o644, false);
  return { certPem: out.certPem, certCer: out.certCer, certP12: out.certP12 };
}
