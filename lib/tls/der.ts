/**
 * Minimal ASN.1 DER encoding and decoding: just what building and reading X.509 certificates needs.
 * Pure functions over Uint8Array, no I/O.
 * @module
 */

/** Universal and context-specific tags used in certificates. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Encodes one TLV with the given tag byte; `content` may be several parts that are concatenated. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const c of content) len += c.length;
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else {
    const lenBytes: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) lenBytes.unshift(l & 0xff);
    header = [tag, 0x80 | lenBytes.length, ...lenBytes];
  }
  return concat([Uint8Array.from(header), ...content]);
}

/** SEQUENCE of already encoded items. */
export const seq = (...items: Uint8Array[]): Uint8Array => tlv(Tag.SEQUENCE, ...items);
/** SET of already encoded items (the caller provides DER order; certificates only use 1-element sets). */
export const set = (...items: Uint8Array[]): Uint8Array => tlv(Tag.SET, ...items);
/** NULL. */
export const nul = (): Uint8Array => Uint8Array.of(Tag.NULL, 0);
/** BOOLEAN. */
export const bool = (v: boolean): Uint8Array => Uint8Array.of(Tag.BOOLEAN, 1, v ? 0xff : 0);
/** OCTET STRING. */
export const octets = (b: Uint8Array): Uint8Array => tlv(Tag.OCTET_STRING, b);
/** UTF8String. */
export const utf8 = (s: string): Uint8Array => tlv(Tag.UTF8_STRING, new TextEncoder().encode(s));
/** IA5String (ASCII). */
export const ia5 = (s: string): Uint8Array => tlv(Tag.IA5_STRING, new TextEncoder().encode(s));
/** BIT STRING with `unused` padding bits in the last byte. */
export const bitString = (b: Uint8Array, unused = 0): Uint8Array =>
  tlv(Tag.BIT_STRING, Uint8Array.of(unused), b);
/** Context-specific constructed (EXPLICIT) tag `[n]`. */
export const explicit = (n: number, inner: Uint8Array): Uint8Array => tlv(0xa0 | n, inner);
/** Context-specific primitive (IMPLICIT) tag `[n]` around raw content bytes. */
export const implicit = (n: number, content: Uint8Array): Uint8Array => tlv(0x80 | n, content);

/** INTEGER from unsigned big-endian magnitude bytes (adds/strips leading zeros as DER requires). */
export function uint(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let b = magnitude.subarray(i);
  if (b.length === 0) b = Uint8Array.of(0);
  if (b[0] & 0x80) b = concat([Uint8Array.of(0), b]);
  return tlv(Tag.INTEGER, b);
}

/** Small non-negative INTEGER. */
export const smallInt = (n: number): Uint8Array => uint(Uint8Array.of(n >> 24, n >> 16, n >> 8, n));

/** OBJECT IDENTIFIER from dotted form, e.g. "2.5.29.17". */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const out: number[] = [arcs[0] * 40 + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let a = Math.floor(arc / 128); a > 0; a = Math.floor(a / 128)) chunk.unshift(0x80 | (a & 0x7f));
    out.push(...chunk);
  }
  return tlv(Tag.OID, Uint8Array.from(out));
}

/** Time as UTCTime for years 1950..2049 and GeneralizedTime otherwise (RFC 5280 4.1.2.5). */
export function time(d: Date): Uint8Array {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${
    p(d.getUTCSeconds())
  }Z`;
  const enc = new TextEncoder();
  if (y >= 1950 && y < 2050) return tlv(Tag.UTC_TIME, enc.encode(p(y % 100) + rest));
  return tlv(Tag.GENERALIZED_TIME, enc.encode(p(y, 4) + rest));
}

/** A decoded TLV: positions are offsets into the buffer it was read from. */
export interface Node {
  /** The tag byte. */
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads the TLV at `offset`. Throws on truncated or unsupported (multi-byte tag, indefinite) encodings. */
export function read(buf: Uint8Array, offset = 0): Node {
  if (offset + 2 > buf.length) throw new Error("DER: truncated header");
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error("DER: multi-byte tags are not supported");
  let len = buf[offset + 1];
  let contentStart = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("DER: unsupported length encoding");
    if (contentStart + n > buf.length) throw new Error("DER: truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[contentStart + i];
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > buf.length) throw new Error("DER: content runs past the end of the data");
  return { tag, start: offset, contentStart, end };
}

/** The children of a constructed node. */
export function children(buf: Uint8Array, node: Node): Node[] {
  const out: Node[] = [];
  for (let o = node.contentStart; o < node.end;) {
    const c = read(buf, o);
    out.push(c);
    o = c.end;
  }
  return out;
}

/** The whole encoding (header + content) of a node. */
export const raw = (buf: Uint8Array, n: Node): Uint8Array => buf.subarray(n.start, n.end);
/** The content bytes of a node. */
export const content = (buf: Uint8Array, n: Node): Uint8Array => buf.subarray(n.contentStart, n.end);

/** Decodes the content of an OBJECT IDENTIFIER to dotted form. */
export function oidToString(c: Uint8Array): string {
  if (c.length === 0) return "";
  const arcs = [Math.min(2, Math.floor(c[0] / 40)), c[0] - Math.min(2, Math.floor(c[0] / 40)) * 40];
  let v = 0;
  for (let i = 1; i < c.length; i++) {
    v = v * 128 + (c[i] & 0x7f);
    if (!(c[i] & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  return arcs.join(".");
}
