/**
 * OpenSSL cipher strings (`ciphers_client`, `ciphers_server`, as mitmproxy's `set_cipher_list`): which TLS 1.2
 * (and older) cipher suites a string selects, and which of those Deno's TLS can negotiate.
 *
 * The evaluator knows mitmproxy's default suites (tlsconfig.py DEFAULT_CIPHERS) and OpenSSL's syntax: names,
 * aliases (ALL, DEFAULT, HIGH, MEDIUM, ECDHE, DHE, kRSA, aRSA, aECDSA, AES, AES128, AES256, AESGCM,
 * CHACHA20, 3DES, SHA1, SHA256, SHA384, TLSv1.2, ...), `A+B` (both), `!X` (removed for good), `-X` (removed),
 * `+X` (moved to the end) and `@STRENGTH`; `@SECLEVEL=n` is accepted and ignored. As in OpenSSL, the string
 * governs TLS 1.2 and older only: TLS 1.3 suites are not affected.
 *
 * Deno's node:tls (rustls) ignores the `ciphers` option and negotiates six TLS 1.2 suites (ECDHE with
 * AES-GCM or ChaCha20-Poly1305), so the proxy enforces the list itself: it checks what the peer offers and
 * what was negotiated (see addons/tlsconfig.ts).
 * @module
 */

/** A TLS 1.2-or-older cipher suite and the attributes OpenSSL aliases select on. */
export interface CipherSuite {
  /** OpenSSL name, e.g. ECDHE-RSA-AES128-GCM-SHA256. */
  name: string;
  /** IANA code point. */
  code: number;
  kx: "ECDHE" | "DHE" | "RSA";
  au: "ECDSA" | "RSA";
  enc: "AESGCM128" | "AESGCM256" | "CHACHA20" | "AES128" | "AES256" | "3DES";
  mac: "AEAD" | "SHA1" | "SHA256" | "SHA384";
  bits: number;
}

const S = (
  name: string,
  code: number,
  kx: CipherSuite["kx"],
  au: CipherSuite["au"],
  enc: CipherSuite["enc"],
  mac: CipherSuite["mac"],
): CipherSuite => ({
  name,
  code,
  kx,
  au,
  enc,
  mac,
  bits: enc === "3DES" ? 112 : /128/.test(enc) ? 128 : 256,
});

/** The suites known here, in mitmproxy's default order (which is also the order of `DEFAULT` here). */
export const CIPHER_SUITES: readonly CipherSuite[] = [
  S("ECDHE-ECDSA-AES128-GCM-SHA256", 0xc02b, "ECDHE", "ECDSA", "AESGCM128", "AEAD"),
  S("ECDHE-RSA-AES128-GCM-SHA256", 0xc02f, "ECDHE", "RSA", "AESGCM128", "AEAD"),
  S("ECDHE-ECDSA-AES256-GCM-SHA384", 0xc02c, "ECDHE", "ECDSA", "AESGCM256", "AEAD"),
  S("ECDHE-RSA-AES256-GCM-SHA384", 0xc030, "ECDHE", "RSA", "AESGCM256", "AEAD"),
  S("ECDHE-ECDSA-CHACHA20-POLY1305", 0xcca9, "ECDHE", "ECDSA", "CHACHA20", "AEAD"),
  S("ECDHE-RSA-CHACHA20-POLY1305", 0xcca8, "ECDHE", "RSA", "CHACHA20", "AEAD"),
  S("DHE-RSA-AES128-GCM-SHA256", 0x009e, "DHE", "RSA", "AESGCM128", "AEAD"),
  S("DHE-RSA-AES256-GCM-SHA384", 0x009f, "DHE", "RSA", "AESGCM256", "AEAD"),
  S("DHE-RSA-CHACHA20-POLY1305", 0xccaa, "DHE", "RSA", "CHACHA20", "AEAD"),
  S("ECDHE-ECDSA-AES128-SHA256", 0xc023, "ECDHE", "ECDSA", "AES128", "SHA256"),
  S("ECDHE-RSA-AES128-SHA256", 0xc027, "ECDHE", "RSA", "AES128", "SHA256"),
  S("ECDHE-ECDSA-AES128-SHA", 0xc009, "ECDHE", "ECDSA", "AES128", "SHA1"),
  S("ECDHE-RSA-AES128-SHA", 0xc013, "ECDHE", "RSA", "AES128", "SHA1"),
  S("ECDHE-ECDSA-AES256-SHA384", 0xc024, "ECDHE", "ECDSA", "AES256", "SHA384"),
  S("ECDHE-RSA-AES256-SHA384", 0xc028, "ECDHE", "RSA", "AES256", "SHA384"),
  S("ECDHE-ECDSA-AES256-SHA", 0xc00a, "ECDHE", "ECDSA", "AES256", "SHA1"),
  S("ECDHE-RSA-AES256-SHA", 0xc014, "ECDHE", "RSA", "AES256", "SHA1"),
  S("DHE-RSA-AES128-SHA256", 0x0067, "DHE", "RSA", "AES128", "SHA256"),
  S("DHE-RSA-AES256-SHA256", 0x006b, "DHE", "RSA", "AES256", "SHA256"),
  S("AES128-GCM-SHA256", 0x009c, "RSA", "RSA", "AESGCM128", "AEAD"),
  S("AES256-GCM-SHA384", 0x009d, "RSA", "RSA", "AESGCM256", "AEAD"),
  S("AES128-SHA256", 0x003c, "RSA", "RSA", "AES128", "SHA256"),
  S("AES256-SHA256", 0x003d, "RSA", "RSA", "AES256", "SHA256"),
  S("AES128-SHA", 0x002f, "RSA", "RSA", "AES128", "SHA1"),
  S("AES256-SHA", 0x0035, "RSA", "RSA", "AES256", "SHA1"),
  S("DES-CBC3-SHA", 0x000a, "RSA", "RSA", "3DES", "SHA1"),
];

/** The TLS 1.2 suites Deno's TLS (rustls) can negotiate. */
export const DENO_TLS12_SUITES: ReadonlySet<string> = new Set([
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
]);

const ALIASES: Record<string, (c: CipherSuite) => boolean> = {
  ALL: () => true,
  DEFAULT: () => true,
  COMPLEMENTOFDEFAULT: () => false,
  HIGH: (c) => c.enc !== "3DES",
  MEDIUM: (c) => c.enc === "3DES",
  LOW: () => false,
  EXPORT: () => false,
  eNULL: () => false,
  NULL: () => false,
  aNULL: () => false,
  kECDHE: (c) => c.kx === "ECDHE",
  kEECDH: (c) => c.kx === "ECDHE",
  ECDHE: (c) => c.kx === "ECDHE",
  EECDH: (c) => c.kx === "ECDHE",
  ECDH: (c) => c.kx === "ECDHE",
  kDHE: (c) => c.kx === "DHE",
  kEDH: (c) => c.kx === "DHE",
  DHE: (c) => c.kx === "DHE",
  EDH: (c) => c.kx === "DHE",
  DH: (c) => c.kx === "DHE",
  kRSA: (c) => c.kx === "RSA",
  RSA: (c) => c.kx === "RSA",
  aRSA: (c) => c.au === "RSA",
  aECDSA: (c) => c.au === "ECDSA",
  ECDSA: (c) => c.au === "ECDSA",
  AES: (c) => c.enc.startsWith("AES"),
  AES128: (c) => c.enc === "AES128" || c.enc === "AESGCM128",
  AES256: (c) => c.enc === "AES256" || c.enc === "AESGCM256",
  AESGCM: (c) => c.enc.startsWith("AESGCM"),
  CHACHA20: (c) => c.enc === "CHACHA20",
  "3DES": (c) => c.enc === "3DES",
  SHA1: (c) => c.mac === "SHA1",
  SHA: (c) => c.mac === "SHA1",
  SHA256: (c) => c.mac === "SHA256",
  SHA384: (c) => c.mac === "SHA384",
  "TLSv1.2": (c) => c.mac === "AEAD" || c.mac === "SHA256" || c.mac === "SHA384",
  TLSv1: (c) => c.mac === "SHA1",
  "TLSv1.0": (c) => c.mac === "SHA1",
  SSLv3: (c) => c.mac === "SHA1",
};

function matcher(term: string): ((c: CipherSuite) => boolean) | null {
  const parts = term.split("+");
  const fns: ((c: CipherSuite) => boolean)[] = [];
  for (const p of parts) {
    const byName = CIPHER_SUITES.find((c) => c.name === p);
    if (byName) fns.push((c) => c === byName);
    else if (ALIASES[p]) fns.push(ALIASES[p]);
    else return null; // unknown names select nothing, as in OpenSSL
  }
  return (c) => fns.every((f) => f(c));
}

/**
 * The suites an OpenSSL cipher string selects, in order. Throws an Error when it selects none
 * (OpenSSL's "no cipher match").
 */
export function evaluateCipherString(spec: string): CipherSuite[] {
  let list: CipherSuite[] = [];
  const banned = new Set<CipherSuite>();
  for (const raw of spec.split(/[:, ]+/)) {
    if (!raw) continue;
    if (raw === "@STRENGTH") {
      list = list.map((c, i) => [c, i] as const).sort((a, b) => b[0].bits - a[0].bits || a[1] - b[1]).map(
        (x) => x[0],
      );
      continue;
    }
    if (raw.startsWith("@")) continue; // @SECLEVEL=n
    const op = "!-+".includes(raw[0]) ? raw[0] : "";
    const m = matcher(op ? raw.slice(1) : raw);
    if (!m) continue;
    if (op === "!") {
      for (const c of CIPHER_SUITES) if (m(c)) banned.add(c);
      list = list.filter((c) => !m(c));
    } else if (op === "-") list = list.filter((c) => !m(c));
    else if (op === "+") list = [...list.filter((c) => !m(c)), ...list.filter(m)];
    else for (const c of CIPHER_SUITES) if (m(c) && !banned.has(c) && !list.includes(c)) list.push(c);
  }
  if (!list.length) throw new Error(`no cipher match in "${spec}"`);
  return list;
}

/** An evaluated cipher string, ready for checks on the request path (sets, no parsing). */
export interface CipherPolicy {
  /** The string as given. */
  spec: string;
  /** Allowed OpenSSL names (TLS 1.2 and older). */
  names: ReadonlySet<string>;
  /** Allowed IANA codes. */
  codes: ReadonlySet<number>;
  /** Allowed suites Deno can negotiate (may be empty: then only TLS 1.3 works). */
  usable: readonly string[];
  /** Allowed suites Deno cannot negotiate (for a start-up warning). */
  unusable: readonly string[];
}

/** Evaluate `spec` into a {@link CipherPolicy}; throws as {@link evaluateCipherString}. */
export function cipherPolicy(spec: string): CipherPolicy {
  const list = evaluateCipherString(spec);
  return {
    spec,
    names: new Set(list.map((c) => c.name)),
    codes: new Set(list.map((c) => c.code)),
    usable: list.filter((c) => DENO_TLS12_SUITES.has(c.name)).map((c) => c.name),
    unusable: list.filter((c) => !DENO_TLS12_SUITES.has(c.name)).map((c) => c.name),
  };
}

/**
 * Whether a negotiated (protocol, cipher) pair obeys the policy: TLS 1.3 always does (cipher strings do not
 * govern it), older versions only with an allowed suite.
 */
export function cipherAllowed(
  policy: CipherPolicy | null,
  protocol: string | null,
  cipher: string | null,
): boolean {
  if (!policy || protocol === "TLSv1.3") return true;
  return cipher !== null && policy.names.has(cipher);
}

/** Whether a ClientHello's extensions offer TLS 1.3 (supported_versions lists 0x0304). */
export function offersTls13(extensions: readonly [number, Uint8Array][]): boolean {
  const ext = extensions.find(([t]) => t === 43);
  if (!ext) return false;
  const d = ext[1];
  for (let i = 1; i + 1 < d.length && i <= d[0]; i += 2) if (d[i] === 0x03 && d[i + 1] === 0x04) return true;
  return false;
}

/**
 * Whether a client can get a suite the policy allows (OpenSSL's "no shared cipher" otherwise): always when
 * TLS 1.3 will be used (`tls13`: the client offers it and the proxy allows it), else when it offers an allowed
 * TLS 1.2 suite Deno can negotiate.
 */
export function clientCanMeet(policy: CipherPolicy, offered: readonly number[], tls13: boolean): boolean {
  if (tls13) return true;
  for (const code of offered) {
    const suite = BY_CODE.get(code);
    if (suite && policy.names.has(suite.name) && DENO_TLS12_SUITES.has(suite.name)) return true;
  }
  return false;
}

const BY_CODE = new Map(CIPHER_SUITES.map((c) => [c.code, c]));
