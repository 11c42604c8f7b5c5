/** HTTP/1.x serialization: pure functions from message parts to bytes, no I/O. */
import { fromLatin1 } from "../http/bytes.ts";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;
// deno-lint-ignore no-control-regex
const BAD_VALUE = /[\r\n\x00]/;

/**
 * Check fields before they go on the wire: an addon that puts CR/LF into a header value must not be able
 * to split the message (response splitting). Throws an Error naming the header.
 */
export function checkFields(headers: Iterable<[string, string]>): void {
  for (const [k, v] of headers) {
    if (!TOKEN.test(k)) throw new Error(`invalid header name ${JSON.stringify(k)}`);
    if (BAD_VALUE.test(v)) throw new Error(`invalid character (CR, LF or NUL) in the value of header ${k}`);
  }
}

/** Serialize a request line and header fields, ending with the blank line. */
export function requestHead(
  method: string,
  target: string,
  httpVersion: string,
  headers: Iterable<[string, string]>,
): Uint8Array {
  // deno-lint-ignore no-control-regex
  if (/[\s\x00-\x1f]/.test(method + target)) throw new Error("invalid character in the request line");
  let s = `${method} ${target} ${httpVersion}\r\n`;
  checkFields(headers);
  for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
  return fromLatin1(s + "\r\n");
}

/** Serialize a status line and header fields, ending with the blank line. */
export function responseHead(
  httpVersion: string,
  statusCode: number,
  reason: string,
  headers: Iterable<[string, string]>,
): Uint8Array {
  // deno-lint-ignore no-control-regex
  if (/[\r\n\x00]/.test(reason)) throw new Error("invalid character in the reason phrase");
  let s = `${httpVersion} ${statusCode} ${reason}\r\n`;
  checkFields(headers);
  for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
  return fromLatin1(s + "\r\n");
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
