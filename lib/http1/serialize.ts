/** HTTP/1.x serialization: pure functions from message parts to bytes, no I/O. */
import { allocBytes, fromLatin1 } from "../http/bytes.ts";
import { isToken } from "./parse.ts";

/** Whether `v` holds CR, LF or NUL (what would split or cut a message). */
function hasBreak(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 14 && (c === 13 || c === 10 || c === 0)) return true;
  }
  return false;
}

/** Whether `s` holds whitespace or a control character (invalid in a method or request target). */
function hasSpaceOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 32 || (c > 127 && /\s/.test(s[i]))) return true;
  }
  return false;
}

/**
 * The first line, the header lines (`name: value\r\n` each) and the blank line, written straight into one
 * buffer (followed by `body` when given, so the wire write needs no further copy): no intermediate string.
 * The fields are checked on the way: an addon that puts CR/LF into a header value must not be able to split
 * the message (response splitting). Throws an Error naming the header. Chars above 255 keep their low byte.
 */
function writeHead(first: string, headers: Iterable<[string, string]>, body?: Uint8Array): Uint8Array {
  const fields = Array.isArray(headers) ? headers as [string, string][] : [...headers];
  let n = first.length + 4;
  for (let i = 0; i < fields.length; i++) {
    const [k, v] = fields[i];
    if (!isToken(k)) throw new Error(`invalid header name ${JSON.stringify(k)}`);
    if (hasBreak(v)) throw new Error(`invalid character (CR, LF or NUL) in the value of header ${k}`);
    n += k.length + v.length + 4;
  }
  const out = allocBytes(n + (body ? body.length : 0));
  let o = put(first, out, 0);
  out[o++] = 13;
  out[o++] = 10;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    o = put(f[0], out, o);
    out[o++] = 58;
    out[o++] = 32;
    o = put(f[1], out, o);
    out[o++] = 13;
    out[o++] = 10;
  }
  out[o++] = 13;
  out[o++] = 10;
  if (body && body.length) out.set(body, o);
  return out;
}

/** Write the chars of `s` (low bytes) into `out` at `at`; returns the offset after them. */
function put(s: string, out: Uint8Array, at: number): number {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
  return at + s.length;
}

/**
 * Serialize a request line and header fields, ending with the blank line (followed by `body` in the same
 * buffer when given).
 */
export function requestHead(
  method: string,
  target: string,
  httpVersion: string,
  headers: Iterable<[string, string]>,
  body?: Uint8Array,
): Uint8Array {
  if (hasSpaceOrControl(method) || hasSpaceOrControl(target)) {
    throw new Error("invalid character in the request line");
  }
  return writeHead(`${method} ${target} ${httpVersion}`, headers, body);
}

/**
 * Serialize a status line and header fields, ending with the blank line (followed by `body` in the same
 * buffer when given).
 */
export function responseHead(
  httpVersion: string,
  statusCode: number,
  reason: string,
  headers: Iterable<[string, string]>,
  body?: Uint8Array,
): Uint8Array {
  if (hasBreak(reason)) throw new Error("invalid character in the reason phrase");
  if (!(statusCode >= 100 && statusCode <= 999 && Number.isInteger(statusCode))) {
    throw new Error(`invalid status code ${statusCode}: expected 100 to 999`);
  }
  return writeHead(`${httpVersion} ${statusCode} ${reason}`, headers, body);
}

/** One chunk of chunked transfer coding (empty input yields nothing: use {@link lastChunk}). */
export function chunk(data: Uint8Array): Uint8Array[] {
  if (data.length === 0) return [];
  return [fromLatin1(`${data.length.toString(16)}\r\n`), data, CRLF];
}

/** The terminating zero-size chunk with optional trailer fields. */
export function lastChunk(trailers?: Iterable<[string, string]> | null): Uint8Array {
  let s = "0\r\n";
  if (trailers) { for (const [k, v] of trailers) s += `${k}: ${v}\r\n`; }
  return fromLatin1(s + "\r\n");
}

const CRLF = new Uint8Array([13, 10]);
