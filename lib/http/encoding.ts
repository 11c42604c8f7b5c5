/**
 * Content-Encoding codecs: gzip, deflate, br, zstd and identity, via node:zlib (native).
 */
import zlib from "node:zlib";

/** The encodings mitmdeno can decode and encode. */
export const SUPPORTED_ENCODINGS = ["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "none"];

function toU8(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Decode `data` encoded with `encoding` (a single token, case-insensitive). Throws on corrupt data. */
export function decode(data: Uint8Array, encoding: string): Uint8Array {
  switch (encoding.trim().toLowerCase()) {
    case "":
    case "identity":
    case "none":
      return data;
    case "gzip":
    case "x-gzip":
      return toU8(zlib.gunzipSync(data));
    case "deflate":
      try {
        return toU8(zlib.inflateSync(data));
      } catch {
        return toU8(zlib.inflateRawSync(data)); // some servers send raw deflate
      }
    case "br":
      return toU8(zlib.brotliDecompressSync(data));
    case "zstd":
      return toU8((zlib as any).zstdDecompressSync(data));
    default:
      throw new Error(`unknown content encoding: ${encoding}`);
  }
}

/** Encode `data` with `encoding`. */
export function encode(data: Uint8Array, encoding: string): Uint8Array {
  switch (encoding.trim().toLowerCase()) {
    case "":
    case "identity":
    case "none":
      return data;
    case "gzip":
    case "x-gzip":
      return toU8(zlib.gzipSync(data));
    case "deflate":
      return toU8(zlib.deflateSync(data));
    case "br":
      return toU8(zlib.brotliCompressSync(data));
    case "zstd":
      return toU8((zlib as any).zstdCompressSync(data));
    default:
      throw new Error(`unknown content encoding: ${encoding}`);
  }
}

/** Decode a body with a full Content-Encoding header value ("gzip, br" is applied right to left). */
export function decodeAll(data: Uint8Array, header: string | undefined): Uint8Array {
  if (!header) return data;
  const codings = header.split(",").map((s) => s.trim()).filter(Boolean);
  let out = data;
  for (let i = codings.length - 1; i >= 0; i--) out = decode(out, codings[i]);
  return out;
}

/** Encode a body with a full Content-Encoding header value (applied left to right). */
export function encodeAll(data: Uint8Array, header: string | undefined): Uint8Array {
  if (!header) return data;
  let out = data;
  for (const c of header.split(",").map((s) => s.trim()).filter(Boolean)) out = encode(out, c);
  return out;
}
