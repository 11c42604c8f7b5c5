/**
 * Peeking at a TLS ClientHello (SNI, ALPN, cipher suites, extensions) from the first bytes a client
 * sends. Pure functions over Uint8Array, no I/O.
 * @module
 */

/** A parsed ClientHello. */
export interface ClientHello {
  /** The server_name (host_name) extension, if present. */
  sni?: string;
  /** The ALPN protocols offered, in client order (empty without the extension). */
  alpnProtocols: string[];
  /** The cipher suite code points offered, in client order (GREASE values included). */
  cipherSuites: number[];
  /** Every extension as [type, data], in client order. */
  extensions: [number, Uint8Array][];
  /** legacy_version of the ClientHello body (0x0303 for TLS 1.2 and 1.3). */
  legacyVersion: number;
  /** Where the TLS record holding the end of the ClientHello ends (may exceed the input if that record is cut short after the ClientHello). */
  recordBytes: number;
}

/** Extension type codes used here. */
export const EXT_SERVER_NAME = 0;
/** application_layer_protocol_negotiation. */
export const EXT_ALPN = 16;

/** Largest ClientHello accepted (post-quantum key shares make them ~2 KiB; this leaves ample room). */
export const MAX_CLIENT_HELLO = 64 * 1024;
const MAX_RECORD = 16384 + 2048;

/**
 * True when `buf` starts like a TLS handshake record: content type 0x16, version 3.0 to 3.3
 * (`16 03 00..03`). Needs 3 bytes; fewer give false (wait for more before deciding).
 */
export function isTlsHandshakeStart(buf: Uint8Array): boolean {
  return buf.length >= 3 && buf[0] === 0x16 && buf[1] === 0x03 && buf[2] <= 0x03;
}

/**
 * Parses the ClientHello at the start of `buf`, which may be split across several TLS records.
 * Returns "need-more" when `buf` ends before the ClientHello does; throws an Error naming the
 * problem for anything that is not a well-formed ClientHello.
 */
export function parseClientHello(buf: Uint8Array): ClientHello | "need-more" {
  const parts: Uint8Array[] = [];
  let have = 0; // handshake bytes collected
  let need = -1; // total handshake bytes (4-byte header + body), once known
  let off = 0;
  for (;;) {
    if (off < buf.length && buf[off] !== 0x16) throw new Error(recordTypeError(buf[off]));
    if (buf.length - off < 5) return "need-more";
    if (buf[off + 1] !== 0x03 || buf[off + 2] > 0x04) {
      throw new Error(`not a TLS record: version bytes ${hex(buf[off + 1])} ${hex(buf[off + 2])}`);
    }
    const len = (buf[off + 3] << 8) | buf[off + 4];
    if (len === 0) throw new Error("malformed TLS record: empty handshake record");
    if (len > MAX_RECORD) throw new Error(`malformed TLS record: length ${len} exceeds the maximum`);
    const frag = buf.subarray(off + 5, Math.min(buf.length, off + 5 + len));
    parts.push(frag);
    have += frag.length;
    if (need < 0 && have >= 4) {
      const head = joinPrefix(parts, 4);
      if (head[0] !== 0x01) throw new Error(`not a ClientHello: handshake message type ${head[0]}`);
      need = 4 + ((head[1] << 16) | (head[2] << 8) | head[3]);
      if (need > MAX_CLIENT_HELLO) throw new Error(`ClientHello too large: ${need - 4} bytes`);
    }
    off += 5 + len;
    if (need >= 0 && have >= need) break;
    if (frag.length < len) return "need-more";
  }
  const hello = parseBody(joinPrefix(parts, need).subarray(4));
  hello.recordBytes = off;
  return hello;
}

function recordTypeError(b: number): string {
  return `not a TLS handshake record: content type ${hex(b)} (expected 0x16)`;
}

function hex(b: number): string {
  return "0x" + b.toString(16).padStart(2, "0");
}

function joinPrefix(parts: Uint8Array[], n: number): Uint8Array {
  if (parts[0].length >= n) return parts[0].subarray(0, n);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    const take = Math.min(p.length, n - o);
    out.set(p.subarray(0, take), o);
    o += take;
    if (o === n) break;
  }
  return out;
}

/** A bounds-checked big-endian reader over a ClientHello body. */
class Reader {
  constructor(private b: Uint8Array, public pos = 0, private end = b.length) {}
  left(): number {
    return this.end - this.pos;
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.pos++];
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.b[this.pos] << 8) | this.b[this.pos + 1];
    this.pos += 2;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  private need(n: number, what: string) {
    if (this.pos + n > this.end) throw new Error(`malformed ClientHello: truncated ${what}`);
  }
}

function parseBody(body: Uint8Array): ClientHello {
  const r = new Reader(body);
  const legacyVersion = r.u16("version");
  r.bytes(32, "random");
  const sidLen = r.u8("session id length");
  if (sidLen > 32) throw new Error(`malformed ClientHello: session id length ${sidLen} > 32`);
  r.bytes(sidLen, "session id");
  const csLen = r.u16("cipher suites length");
  if (csLen % 2 !== 0 || csLen === 0) throw new Error(`malformed ClientHello: cipher suites length ${csLen}`);
  const cs = r.bytes(csLen, "cipher suites");
  const cipherSuites: number[] = [];
  for (let i = 0; i < cs.length; i += 2) cipherSuites.push((cs[i] << 8) | cs[i + 1]);
  const compLen = r.u8("compression methods length");
  if (compLen === 0) throw new Error("malformed ClientHello: no compression methods");
  r.bytes(compLen, "compression methods");
  const hello: ClientHello = {
    alpnProtocols: [],
    cipherSuites,
    extensions: [],
    legacyVersion,
    recordBytes: 0,
  };
  if (r.left() === 0) return hello; // no extensions (SSLv3-era hello)
  const extLen = r.u16("extensions length");
  if (extLen !== r.left()) {
    throw new Error(`malformed ClientHello: extensions length ${extLen} but ${r.left()} bytes remain`);
  }
  const seen = new Set<number>();
  while (r.left() > 0) {
    const type = r.u16("extension type");
    const data = r.bytes(r.u16("extension length"), `extension ${type}`);
    if (seen.has(type)) throw new Error(`malformed ClientHello: duplicate extension ${type}`);
    seen.add(type);
    hello.extensions.push([type, data]);
    if (type === EXT_SERVER_NAME) hello.sni = parseServerName(data);
    else if (type === EXT_ALPN) hello.alpnProtocols = parseAlpn(data);
  }
  return hello;
}

/** One shared decoder (constructing one per ClientHello cost ~15 µs under load). */
const UTF8 = new TextDecoder();

/** The host_name from a server_name extension body (undefined if it has none). */
export function parseServerName(data: Uint8Array): string | undefined {
  const r = new Reader(data);
  const listLen = r.u16("server_name list length");
  if (listLen !== r.left()) throw new Error("malformed ClientHello: server_name list length mismatch");
  let host: string | undefined;
  while (r.left() > 0) {
    const type = r.u8("server_name type");
    const name = r.bytes(r.u16("server_name length"), "server_name");
    if (type === 0 && host === undefined) {
      if (name.length === 0) throw new Error("malformed ClientHello: empty server_name");
      host = UTF8.decode(name);
    }
  }
  return host;
}

/** The protocol names from an ALPN extension body. */
export function parseAlpn(data: Uint8Array): string[] {
  const r = new Reader(data);
  const listLen = r.u16("ALPN list length");
  if (listLen !== r.left()) throw new Error("malformed ClientHello: ALPN list length mismatch");
  const out: string[] = [];
  while (r.left() > 0) {
    const n = r.u8("ALPN protocol length");
    if (n === 0) throw new Error("malformed ClientHello: empty ALPN protocol name");
    out.push(UTF8.decode(r.bytes(n, "ALPN protocol")));
  }
  return out;
}
