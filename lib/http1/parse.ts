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
  /**
   * Accept header lines RFC 9112 forbids but that do not change the framing (`validate_inbound_headers=false`,
   * as mitmproxy): obsolete line folding (unfolded into the previous value with one space), a name that is
   * not a token, whitespace before the colon (stripped). Framing errors (Content-Length, Transfer-Encoding,
   * chunks) and CR/NUL in values are refused either way: they are how requests are smuggled.
   */
  lenientHeaders?: boolean;
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

function checkSize(head: Uint8Array, limits: HeadLimits): void {
  if (head.length > limits.maxHeadSize) {
    throw new HttpSyntaxError(`header section too large (over ${limits.maxHeadSize} bytes)`, 431);
  }
}

/** The end of the line starting at `from` in `text` (index of its "\n", or the text's length). */
function lineEnd(text: string, from: number): number {
  const nl = text.indexOf("\n", from);
  return nl === -1 ? text.length : nl;
}

/** `text[from..to)` without a final "\r". */
function lineAt(text: string, from: number, to: number): string {
  return text.slice(from, to > from && text.charCodeAt(to - 1) === 13 ? to - 1 : to);
}

/** Token characters (RFC 9110 §5.6.2), indexed by char code below 128. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** Whether `s[from..to)` is a non-empty token (same as the TOKEN regex, without a regex). */
export function isToken(s: string, from = 0, to = s.length): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * Parse the header field lines of `text` from offset `pos` to its end (a head's blank line included, or
 * trailer lines), one pass without splitting the text into lines first.
 */
function parseFields(text: string, pos: number, limits: HeadLimits): [string, string][] {
  const out: [string, string][] = [];
  const n = text.length;
  while (pos < n) {
    const nl = lineEnd(text, pos);
    let end = nl;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--;
    const start = pos;
    pos = nl + 1;
    if (end === start) continue; // the blank line(s) ending the head
    if (out.length === limits.maxHeaders) {
      throw new HttpSyntaxError(`too many header fields (over ${limits.maxHeaders})`, 431);
    }
    const c0 = text.charCodeAt(start);
    if (c0 === 32 || c0 === 9) {
      if (limits.lenientHeaders && out.length) {
        const value = text.slice(start, end).replace(/^[ \t]+|[ \t]+$/g, "");
        if (/[\0\r]/.test(value)) throw new HttpSyntaxError("invalid character in folded header line");
        const last = out[out.length - 1];
        last[1] = last[1] ? `${last[1]} ${value}` : value;
        continue;
      }
      throw new HttpSyntaxError("obsolete line folding in header field");
    }
    const colon = text.indexOf(":", start);
    if (colon <= start || colon >= end) {
      throw new HttpSyntaxError(
        `malformed header line: ${JSON.stringify(text.slice(start, end).slice(0, 60))}`,
      );
    }
    let nameEnd = colon;
    if (!isToken(text, start, colon)) {
      if (limits.lenientHeaders) {
        while (
          nameEnd > start && (text.charCodeAt(nameEnd - 1) === 32 || text.charCodeAt(nameEnd - 1) === 9)
        ) {
          nameEnd--;
        }
      }
      if (!limits.lenientHeaders || nameEnd === start || /[\0\r]/.test(text.slice(start, nameEnd))) {
        throw new HttpSyntaxError(
          `invalid header name: ${JSON.stringify(text.slice(start, colon).slice(0, 60))}`,
        );
      }
    }
    // only SP and HTAB are optional whitespace (String.trim would also strip 0xA0, a valid obs-text byte)
    let a = colon + 1;
    let b = end;
    for (let c = text.charCodeAt(a); a < b && (c === 32 || c === 9); c = text.charCodeAt(++a));
    for (let c = text.charCodeAt(b - 1); b > a && (c === 32 || c === 9); c = text.charCodeAt(--b - 1));
    for (let i = a; i < b; i++) {
      const c = text.charCodeAt(i);
      if (c === 0 || c === 13) {
        throw new HttpSyntaxError(`invalid character in header ${text.slice(start, colon)}`);
      }
    }
    out.push([text.slice(start, nameEnd), text.slice(a, b)]);
  }
  return out;
}

/** Parse header field lines (e.g. a trailer section), each without its line break. */
function parseHeaderLines(lines: string[], limits: HeadLimits): [string, string][] {
  return parseFields(lines.map((l) => l + "\n").join(""), 0, limits);
}

/** Parse a request head (request line + header fields, including the blank line). */
export function parseRequestHead(head: Uint8Array, limits: HeadLimits = DEFAULT_LIMITS): RequestHead {
  checkSize(head, limits);
  const text = latin1(head);
  let pos = 0;
  let end = lineEnd(text, 0);
  // RFC 9112 §2.2: ignore at least one empty line before the request line
  while (pos < text.length && (end === pos || (end === pos + 1 && text.charCodeAt(pos) === 13))) {
    pos = end + 1;
    end = lineEnd(text, pos);
  }
  if (pos >= text.length) throw new HttpSyntaxError("empty request");
  const first = lineAt(text, pos, end);
  const sp1 = first.indexOf(" ");
  const sp2 = sp1 === -1 ? -1 : first.indexOf(" ", sp1 + 1);
  if (sp2 === -1 || first.indexOf(" ", sp2 + 1) !== -1) {
    throw new HttpSyntaxError(`malformed request line: ${JSON.stringify(first.slice(0, 100))}`);
  }
  const method = first.slice(0, sp1);
  const target = first.slice(sp1 + 1, sp2);
  const version = first.slice(sp2 + 1);
  if (!isToken(method)) {
    throw new HttpSyntaxError(`invalid method: ${JSON.stringify(method.slice(0, 40))}`);
  }
  if (!target) throw new HttpSyntaxError("empty request target");
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 32 || c === 127) throw new HttpSyntaxError("invalid character in request target");
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    const vm = VERSION.exec(version);
    if (!vm) throw new HttpSyntaxError(`invalid HTTP version: ${JSON.stringify(version.slice(0, 20))}`);
    if (vm[1] !== "1") throw new HttpSyntaxError(`unsupported HTTP version ${version}`, 505);
  }
  return { method, target, httpVersion: version, headers: parseFields(text, end + 1, limits) };
}

const STATUS_LINE = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/;

/** Whether `line` is `HTTP/1.x NNN[ reason]` with a reason STATUS_LINE accepts (the common case, no regex). */
function isPlainStatusLine(line: string): boolean {
  if (line.length < 12 || !line.startsWith("HTTP/1.") || line.charCodeAt(8) !== 32) return false;
  const v = line.charCodeAt(7);
  if (v !== 48 && v !== 49) return false;
  for (let i = 9; i < 12; i++) {
    const c = line.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  if (line.length === 12) return true;
  if (line.charCodeAt(12) !== 32) return false;
  // "." in STATUS_LINE stops at line terminators
  for (let i = 13; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) return false;
  }
  return true;
}

/** Parse a response head. */
export function parseResponseHead(head: Uint8Array, limits: HeadLimits = DEFAULT_LIMITS): ResponseHead {
  checkSize(head, limits);
  const text = latin1(head);
  const end = lineEnd(text, 0);
  const first = lineAt(text, 0, end);
  if (first === "" && text.trim() === "") throw new HttpSyntaxError("empty response");
  if (isPlainStatusLine(first)) {
    return {
      httpVersion: first.slice(0, 8),
      statusCode: Number(first.slice(9, 12)),
      reason: first.length > 12 ? first.slice(13) : "",
      headers: parseFields(text, end + 1, limits),
    };
  }
  const m = STATUS_LINE.exec(first);
  if (!m) throw new HttpSyntaxError(`malformed status line: ${JSON.stringify(first.slice(0, 100))}`);
  return {
    httpVersion: m[1],
    statusCode: Number(m[2]),
    reason: m[3] ?? "",
    headers: parseFields(text, end + 1, limits),
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

/**
 * The request's Host field value, checked as RFC 9112 §3.2 asks: more than one Host field line, an invalid
 * value, or no Host in an HTTP/1.1 request in origin or asterisk form is a 400 (a proxy must not guess
 * where such a request goes). Absolute-form and CONNECT requests may lack it (their target names the
 * authority, which wins over Host: see the HTTP/1 layer). Returns null when absent.
 */
export function requestHost(
  fields: [string, string][],
  httpVersion: string,
  form: Target["form"],
): string | null {
  let value: string | null = null;
  for (const [k, v] of fields) {
    if (k.length !== 4 || k.toLowerCase() !== "host") continue;
    if (value !== null) throw new HttpSyntaxError("more than one Host header field");
    value = v;
  }
  if (value === null) {
    if (httpVersion === "HTTP/1.1" && (form === "origin" || form === "asterisk")) {
      throw new HttpSyntaxError("missing Host header (required in HTTP/1.1)");
    }
    return null;
  }
  if (value !== "" || (form !== "absolute" && form !== "authority")) {
    try {
      parseAuthority(value, 0);
    } catch {
      throw new HttpSyntaxError(`invalid Host header: ${JSON.stringify(value.slice(0, 100))}`);
    }
  }
  return value;
}

/** Whether `host` holds whitespace, "/", "?", "#" or "@" (as the regex /[\s/?#@]/, without one). */
function badHostChar(host: string): boolean {
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c === 32 || c === 47 || c === 63 || c === 35 || c === 64 || (c >= 9 && c <= 13)) return true;
    if (c > 127 && /\s/.test(host[i])) return true;
  }
  return false;
}

/** One to five ASCII digits. */
function isPortDigits(s: string): boolean {
  if (s.length < 1 || s.length > 5) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
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
  if (!host || badHostChar(host)) {
    throw new HttpSyntaxError(`invalid host in ${JSON.stringify(authority)}`);
  }
  let port: number;
  if (portStr === undefined || portStr === "") {
    if (defaultPort === undefined) throw new HttpSyntaxError(`missing port in ${JSON.stringify(authority)}`);
    port = defaultPort;
  } else {
    if (!isPortDigits(portStr) || Number(portStr) > 65535) {
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
  let scheme: string;
  let authority: string;
  let rest: string;
  const fast = target.startsWith("http://") ? 7 : target.startsWith("https://") ? 8 : 0;
  if (fast) {
    // the usual absolute form, split as the regex below would
    scheme = fast === 7 ? "http" : "https";
    let a = fast;
    while (a < target.length) {
      const c = target.charCodeAt(a);
      if (c === 47 || c === 63 || c === 35) break;
      a++;
    }
    authority = target.slice(fast, a);
    const hash = target.indexOf("#", a);
    rest = hash === -1 ? target.slice(a) : target.slice(a, hash);
  } else {
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(target);
    if (!m) throw new HttpSyntaxError(`invalid request target: ${JSON.stringify(target.slice(0, 100))}`);
    scheme = m[1].toLowerCase();
    if (scheme !== "http" && scheme !== "https") {
      throw new HttpSyntaxError(`unsupported scheme in request target: ${scheme}`);
    }
    authority = m[2];
    rest = m[3];
  }
  const at = authority.lastIndexOf("@");
  if (at !== -1) authority = authority.slice(at + 1); // userinfo is deprecated; drop it
  const { host, port } = parseAuthority(authority, scheme === "https" ? 443 : 80);
  let path = rest || "/";
  if (path.startsWith("?")) path = "/" + path;
  return { form: "absolute", scheme, host, port, path };
}

/** How a message body is delimited. */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

function headerValues(headers: [string, string][], name: string): string[] | null {
  let out: string[] | null = null;
  for (const [k, v] of headers) {
    if (k.length === name.length && k.toLowerCase() === name) (out ??= []).push(v);
  }
  return out;
}

const CONTENT_LENGTH = /^(0|[1-9][0-9]{0,15})$/;
const NO_BODY: Framing = Object.freeze({ kind: "none" });

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
    if (msg.requestMethod === "HEAD" || (s >= 100 && s < 200) || s === 204 || s === 304) return NO_BODY;
    if (msg.requestMethod === "CONNECT" && s >= 200 && s < 300) return NO_BODY;
  }
  const te = headerValues(headers, "transfer-encoding");
  const cl = headerValues(headers, "content-length");
  if (te) {
    if (cl) throw new HttpSyntaxError("both Transfer-Encoding and Content-Length present");
    if (msg.httpVersion === "HTTP/1.0") throw new HttpSyntaxError("Transfer-Encoding in an HTTP/1.0 message");
    const codings = te.join(",").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
    if (codings.length === 0) throw new HttpSyntaxError("empty Transfer-Encoding");
    // Only chunked is decoded. Another coding (gzip, ...) could not be forwarded either: Transfer-Encoding is
    // hop-by-hop and the body is re-framed, so dropping it would corrupt the body. Refused like nginx does:
    // 501 for a request, 502 for a response.
    if (codings.length > 1 || codings[0] !== "chunked") {
      const what = codings.filter((c, i) => c !== "chunked" || i !== codings.length - 1);
      if (codings.filter((c) => c === "chunked").length > 1) {
        throw new HttpSyntaxError("chunked applied more than once");
      }
      throw new HttpSyntaxError(
        `unsupported Transfer-Encoding: ${te.join(", ")} (only chunked is supported, not ${what.join(", ")})`,
        501,
      );
    }
    return { kind: "chunked" };
  }
  if (cl) {
    let v = cl[0];
    if (cl.length > 1 || !CONTENT_LENGTH.test(v)) {
      const values = new Set(cl.join(",").split(",").map((s) => s.trim()));
      if (values.size !== 1) throw new HttpSyntaxError("conflicting Content-Length values");
      v = [...values][0];
      if (!CONTENT_LENGTH.test(v)) throw new HttpSyntaxError(`invalid Content-Length: ${v.slice(0, 20)}`);
    }
    const n = Number(v);
    return n === 0 ? NO_BODY : { kind: "length", length: n };
  }
  return msg.request ? NO_BODY : { kind: "close" };
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
