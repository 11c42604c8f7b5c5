/**
 * HTTP/1.x parsing: pure functions over bytes, no I/O (RFC 9112).
 *
 * Heads are parsed whole (the caller finds the end with {@link findHeadEnd}); bodies are framed with
 * {@link bodyFraming} and chunked bodies decoded incrementally with {@link ChunkedDecoder}.
 */
import { latin1 } from "../http/bytes.ts";

/** A syntax or validation error in a message; `message` is a one-line reason fit for a 400 page. */
export class HttpSyntaxError extends Error {
  /** The status to answer with: 400 by default, 431 for oversized headers, 501/505 where they apply. */
  status: number;
  constructor(reason: string, status = 400) {
    super(reason);
    this.name = "HttpSyntaxError";
    this.status = status;
  }
}

/** Limits applied while parsing a head. */
export interface HeadLimits {
  /** Maximum bytes of request line plus headers. */
  maxHeadSize: number;
  /** Maximum number of header fields. */
  maxHeaders: number;
}

/** Defaults like common servers: 64 KiB of head, 256 fields. */
export const DEFAULT_LIMITS: HeadLimits = { maxHeadSize: 64 * 1024, maxHeaders: 256 };

/**
 * Find the end of a message head in `buf`: the index just past the blank line ("\r\n\r\n", or a bare
 * "\n\n" as RFC 9112 allows recipients to accept), or -1 if it is not there yet.
 * `from` lets a caller resume the scan after bytes it already searched.
 */
export function findHeadEnd(buf: Uint8Array, from = 0): number {
  let i = buf.indexOf(10, from);
  while (i !== -1) {
    if (buf[i + 1] === 10) return i + 2;
    if (buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
    i = buf.indexOf(10, i + 1);
  }
  return -1;
}

const VERSION = /^HTTP\/(\d)\.(\d)$/;

/** A parsed request head. */
export interface RequestHead {
  method: string;
  /** The request target as sent: origin-form, absolute-form, authority-form or "*". */
  target: string;
  httpVersion: string;
  headers: [string, string][];
}

/** A parsed response head. */
export interface ResponseHead {
  httpVersion: string;
  statusCode: number;
  reason: string;
  headers: [string, string][];
}

function splitLines(head: Uint8Array, limits: HeadLimits): string[] {
  if (head.length > limits.maxHeadSize) {
    throw new HttpSyntaxError(`header section too large (over ${limits.maxHeadSize} bytes)`, 431);
  }
  const text = latin1(head);
  const lines = text.split("\n");
  // drop the final blank line(s)
  while (lines.length && (lines[lines.length - 1] === "" || lines[lines.length - 1] === "\r")) lines.pop();
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].endsWith("\r")) lines[i] = lines[i].slice(0, -1);
  }
  return lines;
}

/** Token characters (RFC 9110 §5.6.2), indexed by char code below 128. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** Whether `s[from..to)` is a non-empty token (same as the TOKEN regex, without a regex). */
function isToken(s: string, from = 0, to = s.length): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

function parseHeaderLines(lines: string[], limits: HeadLimits, from = 0): [string, string][] {
  if (lines.length - from > limits.maxHeaders) {
    throw new HttpSyntaxError(`too many header fields (over ${limits.maxHeaders})`, 431);
  }
  const out: [string, string][] = [];
  for (let li = from; li < lines.length; li++) {
    const line = lines[li];
    const n = line.length;
    if (n === 0) continue;
    const c0 = line.charCodeAt(0);
    if (c0 === 32 || c0 === 9) {
      throw new HttpSyntaxError("obsolete line folding in header field");
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HttpSyntaxError(`malformed header line: ${JSON.stringify(line.slice(0, 60))}`);
    if (!isToken(line, 0, colon)) {
      throw new HttpSyntaxError(`invalid header name: ${JSON.stringify(line.slice(0, colon).slice(0, 60))}`);
    }
    // only SP and HTAB are optional whitespace (String.trim would also strip 0xA0, a valid obs-text byte)
    let a = colon + 1;
    let b = n;
    for (let c = line.charCodeAt(a); a < b && (c === 32 || c === 9); c = line.charCodeAt(++a));
    for (let c = line.charCodeAt(b - 1); b > a && (c === 32 || c === 9); c = line.charCodeAt(--b - 1));
    for (let i = a; i < b; i++) {
      const c = line.charCodeAt(i);
      if (c === 0 || c === 13 || c === 10) {
        throw new HttpSyntaxError(`invalid character in header ${line.slice(0, colon)}`);
      }
    }
    out.push([line.slice(0, colon), line.slice(a, b)]);
  }
  return out;
}

/** Parse a request head (request line + header fields, including the blank line). */
export function parseRequestHead(head: Uint8Array, limits: HeadLimits = DEFAULT_LIMITS): RequestHead {
  const lines = splitLines(head, limits);
  // RFC 9112 §2.2: ignore at least one empty line before the request line
  while (lines.length && lines[0] === "") lines.shift();
  if (lines.length === 0) throw new HttpSyntaxError("empty request");
  const first = lines[0];
  const parts = first.split(" ");
  if (parts.length !== 3) {
    throw new HttpSyntaxError(`malformed request line: ${JSON.stringify(first.slice(0, 100))}`);
  }
  const [method, target, version] = parts;
  if (!isToken(method)) {
    throw new HttpSyntaxError(`invalid method: ${JSON.stringify(method.slice(0, 40))}`);
  }
  if (!target) throw new HttpSyntaxError("empty request target");
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f]/.test(target)) throw new HttpSyntaxError("invalid character in request target");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    const vm = VERSION.exec(version);
    if (!vm) throw new HttpSyntaxError(`invalid HTTP version: ${JSON.stringify(version.slice(0, 20))}`);
    if (vm[1] !== "1") throw new HttpSyntaxError(`unsupported HTTP version ${version}`, 505);
  }
  return { method, target, httpVersion: version, headers: parseHeaderLines(lines, limits, 1) };
}

/** Parse a response head. */
export function parseResponseHead(head: Uint8Array, limits: HeadLimits = DEFAULT_LIMITS): ResponseHead {
  const lines = splitLines(head, limits);
  if (lines.length === 0) throw new HttpSyntaxError("empty response");
  const first = lines[0];
  const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(first);
  if (!m) throw new HttpSyntaxError(`malformed status line: ${JSON.stringify(first.slice(0, 100))}`);
  return {
    httpVersion: m[1],
    statusCode: Number(m[2]),
    reason: m[3] ?? "",
    headers: parseHeaderLines(lines, limits, 1),
  };
}

/** A request target split into its parts. */
export interface Target {
  form: "origin" | "absolute" | "authority" | "asterisk";
  scheme?: string;
  host?: string;
  port?: number;
  /** Path with query, for origin and absolute forms. */
  path?: string;
}

/** Split "host:port" (with [v6] brackets). The port is required unless `defaultPort` is given. */
export function parseAuthority(authority: string, defaultPort?: number): { host: string; port: number } {
  let host: string;
  let portStr: string | undefined;
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    if (end === -1) throw new HttpSyntaxError(`invalid authority: ${authority}`);
    host = authority.slice(1, end);
    const rest = authority.slice(end + 1);
    if (rest && !rest.startsWith(":")) throw new HttpSyntaxError(`invalid authority: ${authority}`);
    portStr = rest ? rest.slice(1) : undefined;
  } else {
    const i = authority.lastIndexOf(":");
    if (i === -1) host = authority;
    else {
      host = authority.slice(0, i);
      portStr = authority.slice(i + 1);
    }
  }
  if (!host || /[\s/?#@]/.test(host)) {
    throw new HttpSyntaxError(`invalid host in ${JSON.stringify(authority)}`);
  }
  let port: number;
  if (portStr === undefined || portStr === "") {
    if (defaultPort === undefined) throw new HttpSyntaxError(`missing port in ${JSON.stringify(authority)}`);
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portStr) || Number(portStr) > 65535) {
      throw new HttpSyntaxError(`invalid port in ${JSON.stringify(authority)}`);
    }
    port = Number(portStr);
  }
  return { host, port };
}

/** Classify and split a request target (RFC 9112 §3.2). */
export function parseTarget(method: string, target: string): Target {
  if (method === "CONNECT") {
    return { form: "authority", ...parseAuthority(target) };
  }
  if (target === "*") return { form: "asterisk" };
  if (target.startsWith("/")) return { form: "origin", path: target };
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(target);
  if (!m) throw new HttpSyntaxError(`invalid request target: ${JSON.stringify(target.slice(0, 100))}`);
  const scheme = m[1].toLowerCase();
  if (scheme !== "http" && scheme !== "https") {
    throw new HttpSyntaxError(`unsupported scheme in request target: ${scheme}`);
  }
  let authority = m[2];
  const at = authority.lastIndexOf("@");
  if (at !== -1) authority = authority.slice(at + 1); // userinfo is deprecated; drop it
  const { host, port } = parseAuthority(authority, scheme === "https" ? 443 : 80);
  let path = m[3] || "/";
  if (path.startsWith("?")) path = "/" + path;
  return { form: "absolute", scheme, host, port, path };
}

/** How a message body is delimited. */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

function headerValues(headers: [string, string][], name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) if (k.length === name.length && k.toLowerCase() === name) out.push(v);
  return out;
}

/**
 * How the body of a message is framed (RFC 9112 §6.3), with mitmproxy's anti-smuggling validation:
 * Transfer-Encoding and Content-Length together, several differing Content-Lengths, a Transfer-Encoding
 * that does not end in chunked (for requests) or an invalid Content-Length are errors.
 *
 * For responses pass the request method and status code (HEAD, 1xx, 204 and 304 have no body).
 */
export function bodyFraming(
  headers: [string, string][],
  msg: { request: true; httpVersion: string } | {
    request: false;
    httpVersion: string;
    statusCode: number;
    requestMethod: string;
  },
): Framing {
  if (!msg.request) {
    const s = msg.statusCode;
    if (msg.requestMethod === "HEAD" || (s >= 100 && s < 200) || s === 204 || s === 304) {
      return { kind: "none" };
    }
    if (msg.requestMethod === "CONNECT" && s >= 200 && s < 300) return { kind: "none" };
  }
  const te = headerValues(headers, "transfer-encoding");
  const cl = headerValues(headers, "content-length");
  if (te.length) {
    if (cl.length) throw new HttpSyntaxError("both Transfer-Encoding and Content-Length present");
    if (msg.httpVersion === "HTTP/1.0") throw new HttpSyntaxError("Transfer-Encoding in an HTTP/1.0 message");
    const codings = te.join(",").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
    const last = codings[codings.length - 1];
    if (last === "chunked") {
      if (codings.indexOf("chunked") !== codings.length - 1) {
        throw new HttpSyntaxError("chunked applied more than once");
      }
      return { kind: "chunked" };
    }
    if (msg.request) throw new HttpSyntaxError(`unsupported Transfer-Encoding: ${te.join(", ")}`, 501);
    return { kind: "close" };
  }
  if (cl.length) {
    const values = new Set(cl.join(",").split(",").map((s) => s.trim()));
    if (values.size !== 1) throw new HttpSyntaxError("conflicting Content-Length values");
    const v = [...values][0];
    if (!/^(0|[1-9][0-9]{0,15})$/.test(v)) {
      throw new HttpSyntaxError(`invalid Content-Length: ${v.slice(0, 20)}`);
    }
    const n = Number(v);
    return n === 0 ? { kind: "none" } : { kind: "length", length: n };
  }
  return msg.request ? { kind: "none" } : { kind: "close" };
}

/** Result of feeding bytes to a {@link ChunkedDecoder}. */
export interface ChunkedResult {
  /** Body data decoded from this input. */
  data: Uint8Array[];
  /** True once the last chunk and trailers were read. */
  done: boolean;
  /** Bytes after the end of the body (the next message), when done. */
  rest: Uint8Array | null;
}

/** Incremental decoder for chunked transfer coding (RFC 9112 §7.1). Feed it bytes as they arrive. */
export class ChunkedDecoder {
  #state: "size" | "data" | "data-crlf" | "trailer" | "done" = "size";
  #remaining = 0;
  #line = "";
  #trailerLines: string[] = [];
  /** Trailer fields, once done. */
  trailers: [string, string][] = [];
  /** Limits for the trailer section. */
  limits: HeadLimits;

  constructor(limits: HeadLimits = DEFAULT_LIMITS) {
    this.limits = limits;
  }

  /** Decode as much of `buf` as possible. Throws {@link HttpSyntaxError} on malformed input. */
  feed(buf: Uint8Array): ChunkedResult {
    const data: Uint8Array[] = [];
    let i = 0;
    while (i < buf.length) {
      switch (this.#state) {
        case "size":
        case "trailer":
        case "data-crlf": {
          const nl = buf.indexOf(10, i);
          const end = nl === -1 ? buf.length : nl;
          this.#line += latin1(buf, i, end);
          if (this.#line.length > 8192) throw new HttpSyntaxError("chunk size or trailer line too long");
          if (nl === -1) {
            i = buf.length;
            break;
          }
          i = nl + 1;
          let line = this.#line;
          this.#line = "";
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (this.#state === "data-crlf") {
            if (line !== "") throw new HttpSyntaxError("missing CRLF after chunk data");
            this.#state = "size";
          } else if (this.#state === "size") {
            const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
            if (!m) throw new HttpSyntaxError(`invalid chunk size: ${JSON.stringify(line.slice(0, 40))}`);
            this.#remaining = parseInt(m[1], 16);
            this.#state = this.#remaining === 0 ? "trailer" : "data";
          } else {
            if (line === "") {
              this.#state = "done";
              this.trailers = parseHeaderLines(this.#trailerLines, this.limits);
              return { data, done: true, rest: i < buf.length ? buf.subarray(i) : null };
            }
            this.#trailerLines.push(line);
            if (this.#trailerLines.length > this.limits.maxHeaders) {
              throw new HttpSyntaxError("too many trailer fields", 431);
            }
          }
          break;
        }
        case "data": {
          const n = Math.min(this.#remaining, buf.length - i);
          data.push(buf.subarray(i, i + n));
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = "data-crlf";
          break;
        }
        case "done":
          return { data, done: true, rest: buf.subarray(i) };
      }
    }
    return { data, done: this.#state === "done", rest: null };
  }
}
