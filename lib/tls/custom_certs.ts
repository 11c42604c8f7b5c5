/**
 * Certificates the user supplies in PEM files: `certs` ("[domain=]path": shown to clients instead of a minted
 * leaf), `client_certs` (presented to servers that ask), `ssl_verify_upstream_trusted_confdir` (trusted CAs).
 * Files are read and checked once, when the option is set; a bad file is an error naming it.
 * @module
 */
import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { fromPem } from "./x509.ts";
import { readPrivateKey } from "./ca.ts";
import type { CertStore, LeafCert } from "./certs.ts";
import { expandHome } from "../paths.ts";

/** A key and certificate chain read from one PEM file. */
export interface PemIdentity {
  /** The file it came from. */
  path: string;
  /** The private key, unencrypted PKCS#8 PEM (null when the file has none). */
  keyPem: string | null;
  /** The certificates, PEM, in file order (the leaf first). */
  certs: string[];
  /** The leaf, parsed. */
  leaf: X509Certificate;
}

/** One `certs` entry: "[domain=]path", the domain "*" when omitted. */
export function parseCertSpec(spec: string): { pattern: string; path: string } {
  const i = spec.indexOf("=");
  return i < 0 ? { pattern: "*", path: spec } : { pattern: spec.slice(0, i), path: spec.slice(i + 1) };
}

/** Read a PEM file with certificates and maybe a key (decrypted with `passphrase`); throws naming the file. */
export async function readPemIdentity(path: string, passphrase?: string | null): Promise<PemIdentity> {
  const file = expandHome(path);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`certificate file does not exist: ${file}`);
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  const blocks = fromPem(text);
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  if (!certs.length) throw new Error(`invalid certificate format for ${file}: no PEM certificate`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certs[0].der);
  } catch (e) {
    throw new Error(`invalid certificate format for ${file}: ${(e as Error).message}`);
  }
  const keyBlock = blocks.find((b) => /PRIVATE KEY$/.test(b.label));
  let keyPem: string | null = null;
  if (keyBlock) {
    let key: KeyObject;
    try {
      key = readPrivateKey(keyBlock, passphrase);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
    checkKeyMatches(key, leaf, file);
    keyPem = key.export({ type: "pkcs8", format: "pem" }) as string;
  }
  return { path: file, keyPem, certs: certs.map((c) => c.pem), leaf };
}

function checkKeyMatches(key: KeyObject, cert: X509Certificate, file: string): void {
  const a = createPublicKey(key).export({ type: "spki", format: "der" });
  const b = cert.publicKey.export({ type: "spki", format: "der" });
  if (!Buffer.from(a).equals(Buffer.from(b))) {
    throw new Error(`${file}: the private key does not match the first certificate`);
  }
}

/** The CN and DNS/IP SANs of a certificate (what mitmproxy registers a custom certificate under). */
export function certNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn) names.push(cn);
  for (const part of (cert.subjectAltName ?? "").split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.*)$/.exec(part.trim());
    if (m) names.push(m[2]);
  }
  return names;
}

/**
 * Add the `certs` entries to `store`: each file's leaf is served for its domain pattern (and its own names),
 * with the file's key, or `defaultKeyPem` (the CA's key, as mitmproxy) when the file has none.
 */
export async function addCustomCerts(
  store: CertStore,
  specs: readonly string[],
  defaultKeyPem: string,
  passphrase?: string | null,
): Promise<void> {
  for (const spec of specs) {
    const { pattern, path } = parseCertSpec(spec);
    const id = await readPemIdentity(path, passphrase);
    const keyPem = id.keyPem ?? defaultKeyPem;
    const chainPem = id.certs.join("");
    let secureContext;
    try {
      secureContext = store.secureContextFor(keyPem, chainPem);
    } catch (e) {
      throw new Error(
        `${id.path}: ${(e as Error).message}${id.keyPem ? "" : " (the file has no private key)"}`,
      );
    }
    const leaf: LeafCert = {
      certPem: id.certs[0],
      certDer: new Uint8Array(id.leaf.raw),
      chainPem,
      keyPem,
      secureContext,
      notAfter: new Date(id.leaf.validTo),
    };
    store.addCustom(leaf, pattern, certNames(id.leaf));
  }
}

/** A client certificate to present: key and chain, PEM. */
export interface ClientCert {
  key: string;
  cert: string;
}

/**
 * `client_certs`: a file (one certificate for every server) or a directory of `<server name>.pem` files
 * (mitmproxy's lookup by SNI, else the address). All are read and checked now; returns the lookup.
 */
export async function loadClientCerts(
  path: string,
  passphrase?: string | null,
): Promise<(name: string) => ClientCert | null> {
  const p = expandHome(path);
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(p);
  } catch {
    throw new Error(`Client certificate path does not exist: ${path}`);
  }
  const load = async (file: string): Promise<ClientCert> => {
    const id = await readPemIdentity(file, passphrase);
    if (!id.keyPem) throw new Error(`${id.path}: a client certificate file needs its private key`);
    return { key: id.keyPem, cert: id.certs.join("") };
  };
  if (!st.isDirectory) {
    const one = await load(p);
    return () => one;
  }
  const byName = new Map<string, ClientCert>();
  for await (const e of Deno.readDir(p)) {
    if (!e.name.endsWith(".pem") || e.isDirectory) continue;
    byName.set(e.name.slice(0, -4), await load(`${p}/${e.name}`));
  }
  return (name) => byName.get(name) ?? null;
}

/**
 * The CA certificates of a directory (`ssl_verify_upstream_trusted_confdir`, as prepared by c_rehash: PEM
 * files, hash-named links among them); duplicates once. Throws when the directory has none.
 */
export async function readTrustedDir(path: string): Promise<string[]> {
  const p = expandHome(path);
  const out = new Set<string>();
  try {
    for await (const e of Deno.readDir(p)) {
      if (e.isDirectory) continue;
      let text: string;
      try {
        text = await Deno.readTextFile(`${p}/${e.name}`);
      } catch {
        continue; // a dangling link or an unreadable file: c_rehash dirs may have either
      }
      for (const b of fromPem(text)) if (b.label === "CERTIFICATE") out.add(b.pem);
    }
  } catch (e) {
    throw new Error(`cannot read the directory ${p}: ${(e as Error).message}`);
  }
  if (!out.size) throw new Error(`no PEM certificate in ${p}`);
  return [...out];
}
