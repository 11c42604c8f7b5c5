import { Buffer } from "node:buffer";
/** Byte helpers shared by the parsers and the message model. Pure, no I/O. */

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Decode bytes as latin1: one char per byte, lossless (unlike TextDecoder's windows-1252 "latin1"). */
export function latin1(bytes: Uint8Array, start = 0, end: number = bytes.length): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1", start, end);
}

/** Encode a binary string (chars 0..255) back into bytes. Chars above 255 are truncated to their low byte. */
export function fromLatin1(s: string): Uint8Array {
  // its own ArrayBuffer (not a slice of Buffer's shared pool), so it can be transferred to a worker
  const b = Buffer.allocUnsafeSlow(s.length);
  b.write(s, 0, "latin1");
  return new Uint8Array(b.buffer, 0, s.length);
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
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Human size like mitmproxy: 512b, 1.2k, 3.4m, 1.0g. */
export function prettySize(n: number): string {
  if (n < 1024) return `${n}b`;
  const units = ["k", "m", "g", "t"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}

/** Parse a size like "1m", "512k", "10" (bytes; k/m/g/t are powers of 1024, like mitmproxy). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+)\s*([kmgt]?)b?\s*$/i.exec(s);
  if (!m) throw new Error(`invalid size "${s}": expected a number with an optional k/m/g/t suffix`);
  const pow = { "": 0, k: 1, m: 2, g: 3, t: 4 }[m[2].toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Number(m[1]) * 1024 ** pow;
}
