/** HTTP/1.x serialization: pure functions from message parts to bytes, no I/O. */
import { fromLatin1 } from "../http/bytes.ts";

/** Serialize a request line and header fields, ending with the blank line. */
export function requestHead(
  method: string,
  target: string,
  httpVersion: string,
  headers: Iterable<[string, string]>,
): Uint8Array {
  let s = `${method} ${target} ${httpVersion}\r\n`;
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
  let s = `${httpVersion} ${statusCode} ${reason}\r\n`;
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
