import { Buffer } from "node:buffer";
/** Byte helpers shared by the parsers and the message model. Pure, no I/O. */

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Decode bytes as latin1: one char per byte, lossless (unlike TextDecoder's windows-1252 "latin1"). */
export function latin1(bytes: Uint8Array, start = 0, end: number = bytes.length): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1", start, end);
}

/**
 * Bytes for the proxy's own output, e.g. a serialized head. Small sizes come from node's shared Buffer pool:
 * `new Uint8Array(n)` costs ~0.8 µs in Deno (a fresh backing store each time), a pool slice ~0.05 µs. The
 * result may therefore be a view into a larger ArrayBuffer: never transfer its `.buffer` (the worker wire
 * copies such views, see `ownBuffer` in lib/addons/script/wire.ts).
 */
export function allocBytes(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** Write the chars of a binary string (0..255) into `out` at `at` (a plain loop: ~15x faster than Buffer#write). */
export function writeLatin1(s: string, out: Uint8Array, at = 0): void {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
}

/** Encode a binary string (chars 0..255) back into bytes. Chars above 255 are truncated to their low byte. */
export function fromLatin1(s: string): Uint8Array {
  const out = allocBytes(s.length);
  writeLatin1(s, out);
  return out;
}

/** UTF-8 encode. */
export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** UTF-8 decode (invalid sequences become U+FFFD). */
export function fromUtf8(b: Uint8Array): string {
  return utf8Decoder.decode(b);
}

/** Concatenate byte arrays into a new one. */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = allocBytes(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Human size like mitmproxy's `pretty_size` (at most 5 characters): 512b, 1.2k, 99.9k, 100k, 3.4m. */
export function prettySize(n: number): string {
  if (n < 1024) return `${n}b`;
  let s = n;
  for (const suffix of ["k", "m", "g", "t"]) {
    s /= 1024;
    if (s < 99.95) return `${s.toFixed(1)}${suffix}`;
    if (s < 1024 || suffix === "t") return `${s.toFixed(0)}${suffix}`;
  }
  return `${n}b`;
}

/** Parse a size like "1m", "512k", "10" (bytes; k/m/g/t are powers of 1024, like mitmproxy). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+)\s*([kmgt]?)b?\s*$/i.exec(s);
  if (!m) throw new Error(`invalid size "${s}": expected a number with an optional k/m/g/t suffix`);
  const pow = { "": 0, k: 1, m: 2, g: 3, t: 4 }[m[2].toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Number(m[1]) * 1024 ** pow;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The bytes as text if they are valid UTF-8 without control characters other than tab, line breaks and form
 * feed (so `utf8(text)` gives the same bytes back), else null: the test for "show or store as text, not
 * as binary".
 */
export function asUtf8Text(b: Uint8Array): string | null {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c < 0x20 ? c !== 9 && c !== 10 && c !== 12 && c !== 13 : c === 0x7f) return null;
  }
  try {
    return strictUtf8.decode(b);
  } catch {
    return null;
  }
}
