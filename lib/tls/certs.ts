/**
 * Leaf certificate minting (MITMPROXY.md §8.3) with one shared leaf key pair and an LRU cache of
 * certificates and their `node:tls` SecureContexts.
 * @module
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { createSecureContext, type SecureContext, type SecureVersion } from "node:tls";
import type { CertAuthority } from "./ca.ts";
import * as x509 from "./x509.ts";

/** What a leaf certificate must name. */
export interface CertRequest {
  /** Subject CN; omitted from the cert when 64 characters or longer (as mitmproxy does). */
  commonName?: string;
  /** subjectAltNames: host names (IDNA-encoded here) and IP literals (become iPAddress entries). */
  sans: string[];
  /** Subject O, e.g. copied from the upstream certificate. */
  organization?: string;
}

/** A minted leaf. */
export interface LeafCert {
  /** The leaf certificate, PEM. */
  certPem: string;
  /** The leaf certificate, DER. */
  certDer: Uint8Array;
  /** The leaf followed by the CA (and its chain): what a TLS server sends. */
  chainPem: string;
  /** The shared leaf private key, PEM (PKCS#8). */
  keyPem: string;
  /** A ready `node:tls` context with key and chain (absent when the store was built with `secureContext: false`). */
  secureContext?: SecureContext;
  /** Validity end. */
  notAfter: Date;
}

/** The leaf key algorithm: ECDSA P-256 (default: fast handshakes) or RSA-2048 (what mitmproxy uses). */
export type LeafKeyType = "ec" | "rsa";

/** Options of {@link CertStore}. */
export interface CertStoreOptions {
  /** Leaf key type, or a private key to use for all leaves. Default "ec". */
  leafKey?: LeafKeyType | KeyObject;
  /** Cache capacity (entries), default 1000. */
  capacity?: number;
  /** Leaf validity in days from notBefore (= now - 2 days), default 199 (browsers reject > 398). */
  validityDays?: number;
  /** Build a SecureContext for each leaf (default true). */
  secureContext?: boolean;
  /** Extra settings of every SecureContext built (TLS version bounds of client connections). */
  contextOptions?: { minVersion?: SecureVersion; maxVersion?: SecureVersion };
}

const DAY = 24 * 3600 * 1000;
const sharedKeys = new Map<LeafKeyType, KeyObject>();

/** The process-wide leaf private key of the given type, generated on first use. */
export function sharedLeafKey(type: LeafKeyType): KeyObject {
  let key = sharedKeys.get(type);
  if (!key) {
    key = type === "ec"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
      : generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    sharedKeys.set(type, key);
  }
  return key;
}

/** The cache key of a request: CN, O and the sorted, deduplicated SANs. */
export function certCacheKey(req: CertRequest): string {
  return [req.commonName ?? "", req.organization ?? "", ...[...new Set(req.sans)].sort()].join("\0");
}

/**
 * The names a certificate registered for `dn` is looked up under (mitmproxy's `asterisk_forms`):
 * www.example.com -> www.example.com, *.example.com, *.com.
 */
export function asteriskForms(dn: string): string[] {
  const parts = dn.split(".");
  const out = [dn];
  for (let i = 1; i < parts.length; i++) out.push("*." + parts.slice(i).join("."));
  return out;
}

/** Mints leaf certificates signed by a CA and keeps the most recently used ones. */
export class CertStore {
  readonly #ca: CertAuthority;
  readonly #key: KeyObject;
  readonly #keyPem: string;
  readonly #spki: Uint8Array;
  readonly #capacity: number;
  readonly #validityDays: number;
  readonly #withContext: boolean;
  readonly #cache = new Map<string, LeafCert>();
  readonly #contextOptions: CertStoreOptions["contextOptions"];
  /** Certificates given by the user (`certs`), by domain pattern. */
  readonly #custom = new Map<string, LeafCert>();

  /** A store issuing leaves from `ca`. Generates the shared leaf key on first use of its type. */
  constructor(ca: CertAuthority, opts: CertStoreOptions = {}) {
    this.#ca = ca;
    const leafKey = opts.leafKey ?? "ec";
    this.#key = typeof leafKey === "string" ? sharedLeafKey(leafKey) : leafKey;
    this.#keyPem = this.#key.export({ type: "pkcs8", format: "pem" }) as string;
    this.#spki = new Uint8Array(createPublicKey(this.#key).export({ type: "spki", format: "der" }));
    this.#capacity = opts.capacity ?? 1000;
    this.#validityDays = opts.validityDays ?? 199;
    this.#withContext = opts.secureContext ?? true;
    this.#contextOptions = opts.contextOptions;
  }

  /** A node:tls context for a key and chain with the store's settings. */
  secureContextFor(keyPem: string, chainPem: string): SecureContext {
    return createSecureContext({ key: keyPem, cert: chainPem, ...this.#contextOptions });
  }

  /**
   * Serve `leaf` for every name matching `pattern` ("*" for all; "*.example.com" for its subdomains), and
   * for its own CN and SANs, before minting (mitmproxy's `add_cert`).
   */
  addCustom(leaf: LeafCert, pattern: string, ownNames: string[]): void {
    for (const n of ownNames) this.#custom.set(n, leaf);
    this.#custom.set(pattern, leaf);
  }

  /** The user's certificate for `req` (its CN and SANs, their wildcard forms, then "*"), if any. */
  customFor(req: CertRequest): LeafCert | undefined {
    if (this.#custom.size === 0) return undefined;
    const names = req.commonName ? [req.commonName, ...req.sans] : req.sans;
    for (const n of names) {
      for (const k of asteriskForms(n)) {
        const hit = this.#custom.get(k);
        if (hit) return hit;
      }
    }
    return this.#custom.get("*");
  }

  /** Number of cached leaves. */
  get size(): number {
    return this.#cache.size;
  }

  /**
   * The leaf for `req`: a certificate of the user's (`certs`) whose pattern matches, else from the cache (the
   * same object as before) or freshly minted. A cached leaf that expires within a day is replaced.
   */
  getCert(req: CertRequest): LeafCert {
    const custom = this.customFor(req);
    if (custom) return custom;
    const key = certCacheKey(req);
    const hit = this.#cache.get(key);
    if (hit && hit.notAfter.getTime() - Date.now() > DAY) {
      this.#cache.delete(key); // re-insert: most recently used last
      this.#cache.set(key, hit);
      return hit;
    }
    const leaf = this.#mint(req);
    this.#cache.delete(key);
    this.#cache.set(key, leaf);
    if (this.#cache.size > this.#capacity) this.#cache.delete(this.#cache.keys().next().value!);
    return leaf;
  }

  #mint(req: CertRequest): LeafCert {
    const cn = req.commonName !== undefined && req.commonName.length < 64 ? req.commonName : undefined;
    const sans = [...new Set(req.sans)];
    const notBefore = new Date(Date.now() - 2 * DAY);
    const notAfter = new Date(notBefore.getTime() + this.#validityDays * DAY);
    const extensions = [x509.extKeyUsageServerAuth()];
    if (sans.length) extensions.push(x509.subjectAltName(sans, cn === undefined));
    extensions.push(x509.authorityKeyIdentifier(this.#ca.subjectKeyId));
    const certDer = x509.signCertificate({
      serial: x509.randomSerial(),
      issuer: this.#ca.subject,
      subject: x509.name({ cn, o: req.organization }),
      notBefore,
      notAfter,
      spki: this.#spki,
      extensions,
    }, this.#ca.key);
    const certPem = x509.toPem("CERTIFICATE", certDer);
    const chainPem = certPem + this.#ca.certPem + this.#ca.chainPem;
    return {
      certPem,
      certDer,
      chainPem,
      keyPem: this.#keyPem,
      secureContext: this.#withContext ? this.secureContextFor(this.#keyPem, chainPem) : undefined,
      notAfter,
    };
  }
}
