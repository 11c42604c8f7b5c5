/** HTTP/1.x serialization: pure functions from message parts to bytes, no I/O. */
import { allocBytes, fromLatin1, writeLatin1 } from "../http/bytes.ts";
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
 * The header lines (`name: value\r\n` each), checked on the way: an addon that puts CR/LF into a header
 * value must not be able to split the message (response splitting). Throws an Error naming the header.
 */
function fieldLines(headers: Iterable<[string, string]>): string {
  let s = "";
  for (const [k, v] of headers) {
    if (!isToken(k)) throw new Error(`invalid header name ${JSON.stringify(k)}`);
    if (hasBreak(v)) throw new Error(`invalid character (CR, LF or NUL) in the value of header ${k}`);
    s += `${k}: ${v}\r\n`;
  }
  return s;
}

/** The head (latin1) followed by `body` in one buffer, so the wire write needs no further copy. */
function withBody(head: string, body?: Uint8Array): Uint8Array {
  if (!body || body.length === 0) return fromLatin1(head);
  const out = allocBytes(head.length + body.length);
  writeLatin1(head, out);
  out.set(body, head.length);
  return out;
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
  return withBody(`${method} ${target} ${httpVersion}\r\n${fieldLines(headers)}\r\n`, body);
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
  return withBody(`${httpVersion} ${statusCode} ${reason}\r\n${fieldLines(headers)}\r\n`, body);
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
