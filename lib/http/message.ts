/**
 * The HTTP message model addons see: {@link Request} and {@link Response}, as in mitmproxy's `http.py`.
 *
 * Bodies are kept as received (`rawContent`, still content-encoded); `content` and `text` decode on read
 * and re-encode on write, updating Content-Length.
 */
import { Headers } from "./headers.ts";
import { fromLatin1, fromUtf8, latin1, prettySize, utf8 } from "./bytes.ts";
import { decodeAll, encodeAll, SUPPORTED_ENCODINGS } from "./encoding.ts";
import { reasonPhrase } from "./status.ts";
import {
  encodeMultipart,
  type FormPart,
  type FormValue,
  multipartBoundary,
  MultipartForm,
  newBoundary,
  parseMultipart,
} from "./multipart.ts";

/** A chunk transformer for streamed bodies: called per chunk, and with an empty chunk at the end. */
export type StreamTransformer = (chunk: Uint8Array) => Uint8Array | Uint8Array[];

/** Body input accepted by setters and factories. */
export type BodyInit = string | Uint8Array | null | undefined;

/** Header input accepted by factories. */
export type HeadersInit = Headers | Iterable<[string, string]> | Record<string, string>;

function toHeaders(h: HeadersInit | undefined): Headers {
  if (h instanceof Headers) return h;
  return new Headers(h);
}

function toBytes(b: BodyInit): Uint8Array {
  if (b == null) return new Uint8Array(0);
  return typeof b === "string" ? utf8(b) : b;
}

function charsetOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType);
  return m?.[1].toLowerCase();
}

/** Shared by Request and Response. */
export abstract class Message {
  /** "HTTP/1.1", "HTTP/1.0", "HTTP/2.0". */
  httpVersion: string;
  /** The header fields (ordered, case-insensitive, repeatable). */
  headers: Headers;
  /** Body as on the wire (content-encoded), or null when it was not kept (streamed). */
  rawContent: Uint8Array | null;
  /** Trailer fields, if any. */
  trailers: Headers | null;
  /** Seconds since the epoch (float), like mitmproxy. */
  timestampStart: number;
  /** When the message was complete (seconds since the epoch), if it is. */
  timestampEnd: number | null;
  /** Stream the body instead of buffering it: `true`, or a chunk transformer. Set in *headers hooks. */
  stream: boolean | StreamTransformer = false;

  #decodedFor: Uint8Array | null = null;
  #decodedCe = "";
  #decoded: Uint8Array | null = null;

  /** A message with its version, headers, body, trailers and timestamps. */
  constructor(init: {
    httpVersion?: string;
    headers?: HeadersInit;
    content?: BodyInit;
    rawContent?: Uint8Array | null;
    trailers?: Headers | null;
    timestampStart?: number;
    timestampEnd?: number | null;
  }) {
    this.httpVersion = init.httpVersion ?? "HTTP/1.1";
    this.headers = toHeaders(init.headers);
    this.rawContent = init.rawContent !== undefined ? init.rawContent : toBytes(init.content);
    this.trailers = init.trailers ?? null;
    this.timestampStart = init.timestampStart ?? Date.now() / 1000;
    this.timestampEnd = init.timestampEnd ?? null;
  }

  /** Whether the HTTP version is 1.0. */
  get isHttp10(): boolean {
    return this.httpVersion === "HTTP/1.0";
  }
  /** Whether the HTTP version is 1.1. */
  get isHttp11(): boolean {
    return this.httpVersion === "HTTP/1.1";
  }
  /** Whether the HTTP version is 2. */
  get isHttp2(): boolean {
    return this.httpVersion === "HTTP/2.0";
  }

  /**
   * The decoded body (Content-Encoding removed). Throws if the body cannot be decoded;
   * use {@link getContent} with `strict = false` to fall back to the raw bytes.
   */
  get content(): Uint8Array | null {
    return this.getContent(true);
  }
  set content(value: BodyInit) {
    this.setContent(value);
  }

  /** The decoded body; when `strict` is false an undecodable body is returned raw. */
  getContent(strict = true): Uint8Array | null {
    const raw = this.rawContent;
    if (raw === null) return null;
    const ce = this.headers.get("content-encoding");
    if (!ce) return raw;
    if (this.#decodedFor === raw && this.#decodedCe === ce && this.#decoded) return this.#decoded;
    try {
      const d = decodeAll(raw, ce);
      this.#decodedFor = raw;
      this.#decodedCe = ce;
      this.#decoded = d;
      return d;
    } catch (e) {
      if (strict) throw new Error(`cannot decode ${ce} body: ${(e as Error).message}`);
      return raw;
    }
  }

  /** Set the decoded body: re-encodes with the current Content-Encoding and updates Content-Length. */
  setContent(value: BodyInit): void {
    if (value === null) {
      this.rawContent = null;
      return;
    }
    const bytes = toBytes(value);
    let ce = this.headers.get("content-encoding");
    let raw = bytes;
    if (ce) {
      try {
        raw = encodeAll(bytes, ce);
      } catch {
        // an invalid Content-Encoding: drop it, as mitmproxy does
        this.headers.delete("content-encoding");
        ce = undefined;
      }
    }
    this.rawContent = raw;
    if (ce) {
      this.#decodedFor = raw;
      this.#decodedCe = ce;
      this.#decoded = bytes;
    }
    if (!/chunked/i.test(this.headers.get("transfer-encoding") ?? "")) {
      this.headers.set("content-length", String(raw.length));
    }
  }

  /** The body as text, decoded with the Content-Type charset (UTF-8 by default). */
  get text(): string | null {
    return this.getText(true);
  }
  set text(value: string | null) {
    this.setText(value);
  }

  /** The body as text; when `strict` is false an undecodable body is decoded as is. */
  getText(strict = true): string | null {
    const c = this.getContent(strict);
    if (c === null) return null;
    const cs = charsetOf(this.headers.get("content-type"));
    if (!cs || cs === "utf-8" || cs === "utf8") return fromUtf8(c);
    if (cs === "latin1" || cs === "iso-8859-1" || cs === "us-ascii" || cs === "ascii") return latin1(c);
    try {
      return new TextDecoder(cs).decode(c);
    } catch {
      return fromUtf8(c);
    }
  }

  /** Set the body from text, encoded with the Content-Type charset where possible (else UTF-8). */
  setText(value: string | null): void {
    if (value === null) return this.setContent(null);
    const cs = charsetOf(this.headers.get("content-type"));
    if (cs === "latin1" || cs === "iso-8859-1") {
      // deno-lint-ignore no-control-regex
      if (/^[\u0000-\u00ff]*$/.test(value)) return this.setContent(fromLatin1(value));
    }
    this.setContent(utf8(value));
  }

  /** Parse the body as JSON. */
  json(): any {
    const t = this.getText(true);
    if (t === null) throw new Error("message has no content");
    return JSON.parse(t);
  }

  /** Remove the Content-Encoding, leaving a decoded body. */
  decode(strict = true): void {
    const c = this.getContent(strict);
    this.headers.delete("content-encoding");
    this.setContent(c);
  }

  /** Encode the body with `encoding` (gzip, deflate, br, zstd, identity). */
  encode(encoding: string): void {
    if (!SUPPORTED_ENCODINGS.includes(encoding.trim().toLowerCase())) {
      throw new Error(`unknown content encoding: ${encoding}`);
    }
    const c = this.getContent(true);
    this.headers.delete("content-encoding");
    if (encoding !== "identity") this.headers.set("content-encoding", encoding);
    this.setContent(c);
  }
}

/** Request constructor fields. */
export interface RequestInit {
  /** The request method (`GET`, ...). */
  method: string;
  /** `http` (default) or `https`. */
  scheme?: string;
  /** The target host. */
  host: string;
  /** The target port (default: the scheme's). */
  port?: number;
  /** The path with the query string (default `/`). */
  path?: string;
  /** The authority as sent (`host:port`), if any. */
  authority?: string;
  /** `HTTP/1.1` by default. */
  httpVersion?: string;
  /** The header fields. */
  headers?: HeadersInit;
  /** The body (text, bytes or JSON-able), encoded per content-encoding. */
  content?: BodyInit;
  /** The body as sent on the wire (still content-encoded). */
  rawContent?: Uint8Array | null;
  /** Trailer fields, if any. */
  trailers?: Headers | null;
  /** When the request started (seconds since the epoch). */
  timestampStart?: number;
  /** When it was complete (seconds since the epoch). */
  timestampEnd?: number | null;
}

/** The default port of a scheme. */
export function defaultPort(scheme: string): number {
  return scheme === "https" || scheme === "wss" ? 443 : 80;
}

/** Format host:port with brackets around IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An HTTP request. */
export class Request extends Message {
  /** The request method (`GET`, ...). */
  method: string;
  /** `http` or `https`. */
  scheme: string;
  #host: string;
  #port: number;
  /** Path with query, e.g. "/a?b=1" (origin-form), or "*" / "" where that applies. */
  path: string;
  /** The authority for CONNECT and HTTP/2 (":authority"), else "". */
  authority: string;

  /** A request from `init` (see {@link RequestInit}). */
  constructor(init: RequestInit) {
    super(init);
    this.method = init.method;
    this.scheme = init.scheme ?? "http";
    this.#host = init.host;
    this.#port = init.port ?? defaultPort(this.scheme);
    this.path = init.path ?? "/";
    this.authority = init.authority ?? "";
  }

  /**
   * Build a request from a method and absolute URL.
   * @example Request.make("GET", "http://example.com/a?b=c", "", { accept: "*\/*" })
   */
  static make(method: string, url: string, content: BodyInit = "", headers: HeadersInit = {}): Request {
    const u = new URL(url);
    const scheme = u.protocol.replace(/:$/, "");
    const host = u.hostname.replace(/^\[|\]$/g, "");
    const port = u.port ? Number(u.port) : defaultPort(scheme);
    const req = new Request({
      method: method.toUpperCase(),
      scheme,
      host,
      port,
      path: (u.pathname || "/") + u.search,
      headers: toHeaders(headers),
    });
    if (!req.headers.has("host")) req.headers.insert(0, "Host", u.host);
    const body = toBytes(content);
    if (body.length || content !== "") req.setContent(body);
    else req.rawContent = body;
    return req;
  }

  /** The target host (no port). Setting it also updates the Host header and authority if present. */
  get host(): string {
    return this.#host;
  }
  set host(value: string) {
    this.#host = value;
    this.#syncAuthority();
  }

  /** The target port. Setting it also updates the Host header and authority if present. */
  get port(): number {
    return this.#port;
  }
  set port(value: number) {
    this.#port = value;
    this.#syncAuthority();
  }

  /**
   * Set where the request goes without touching its Host header or authority (mitmproxy's
   * `request.data.host`): an origin-form request in a tunnel keeps the Host the client sent.
   */
  setDestination(scheme: string, host: string, port: number): void {
    this.scheme = scheme;
    this.#host = host;
    this.#port = port;
  }

  #syncAuthority(): void {
    const hp = this.#port === defaultPort(this.scheme)
      ? bracket(this.#host)
      : hostPort(this.#host, this.#port);
    if (this.authority) this.authority = hp;
    if (this.headers.has("host")) this.headers.set("host", hp);
  }

  /** The Host header (or HTTP/2 authority), if any. */
  get hostHeader(): string | undefined {
    return this.authority || this.headers.get("host");
  }
  set hostHeader(value: string | undefined) {
    if (value === undefined) this.headers.delete("host");
    else this.headers.set("host", value);
  }

  /** Host from the Host header if present (no port), else {@link host}. */
  get prettyHost(): string {
    const hh = this.hostHeader;
    if (!hh) return this.host;
    const m = /^\[([^\]]+)\](?::\d+)?$/.exec(hh);
    if (m) return m[1];
    const i = hh.lastIndexOf(":");
    return i !== -1 && hh.indexOf(":") === i ? hh.slice(0, i) : hh;
  }

  /** The full URL built from scheme, host, port and path. Setting it updates them and the Host header. */
  get url(): string {
    if (this.method === "CONNECT" || this.path === "*") {
      return this.authority || hostPort(this.host, this.port);
    }
    const hp = this.port === defaultPort(this.scheme) ? bracket(this.host) : hostPort(this.host, this.port);
    return `${this.scheme}://${hp}${this.path}`;
  }
  set url(value: string) {
    const u = new URL(value);
    this.scheme = u.protocol.replace(/:$/, "");
    this.port = u.port ? Number(u.port) : defaultPort(this.scheme);
    this.path = (u.pathname || "/") + u.search;
    this.host = u.hostname.replace(/^\[|\]$/g, "");
  }

  /** Like {@link url} but with the host taken from the Host header (what the user typed). */
  get prettyUrl(): string {
    if (this.method === "CONNECT") return this.authority || hostPort(this.host, this.port);
    const hh = this.hostHeader;
    if (!hh) return this.url;
    return `${this.scheme}://${hh}${this.path}`;
  }

  /** The path without the query string. */
  get pathname(): string {
    const i = this.path.indexOf("?");
    return i === -1 ? this.path : this.path.slice(0, i);
  }

  /** Path components, URL-decoded, e.g. "/a/b%20c" -> ["a", "b c"]. */
  get pathComponents(): string[] {
    return this.pathname.split("/").filter(Boolean).map((c) => {
      try {
        return decodeURIComponent(c);
      } catch {
        return c;
      }
    });
  }

  /** The query string as a live multidict: changes write back into {@link path}. */
  get query(): URLSearchParams {
    const i = this.path.indexOf("?");
    return new LiveParams(i === -1 ? "" : this.path.slice(i + 1), (qs) => {
      this.path = this.pathname + (qs ? `?${qs}` : "");
    });
  }
  set query(value: URLSearchParams | Record<string, string> | [string, string][]) {
    const qs = new URLSearchParams(value as Record<string, string>).toString();
    this.path = this.pathname + (qs ? `?${qs}` : "");
  }

  /** Cookies from the Cookie header(s), in order, as `[name, value]` pairs. */
  get cookies(): [string, string][] {
    const out: [string, string][] = [];
    for (const h of this.headers.getAll("cookie")) {
      for (const part of h.split(";")) {
        const p = part.trim();
        if (!p) continue;
        const eq = p.indexOf("=");
        out.push(eq === -1 ? [p, ""] : [p.slice(0, eq).trim(), p.slice(eq + 1).trim()]);
      }
    }
    return out;
  }
  set cookies(value: [string, string][] | Record<string, string>) {
    const pairs = Array.isArray(value) ? value : Object.entries(value);
    if (pairs.length === 0) this.headers.delete("cookie");
    else this.headers.set("cookie", pairs.map(([k, v]) => `${k}=${v}`).join("; "));
  }

  /**
   * The body as an `application/x-www-form-urlencoded` form: a live multidict, like {@link query} (mitmproxy's
   * `urlencoded_form`). Empty unless the Content-Type says so; any change rewrites the body and sets that
   * Content-Type (replacing a body of another type, as mitmproxy does).
   * @example flow.request.urlencodedForm.set("mitmproxy", "rocks");
   */
  get urlencodedForm(): URLSearchParams {
    const ct = (this.headers.get("content-type") ?? "").toLowerCase();
    const init = ct.includes("application/x-www-form-urlencoded") ? this.getText(false) ?? "" : "";
    return new LiveParams(init, (qs) => this.#setForm(qs));
  }
  set urlencodedForm(value: URLSearchParams | Record<string, string> | [string, string][]) {
    this.#setForm(new URLSearchParams(value as Record<string, string>).toString());
  }

  #setForm(qs: string): void {
    this.headers.set("content-type", "application/x-www-form-urlencoded");
    this.setText(qs);
  }

  /**
   * The body as a `multipart/form-data` form: a live multidict of field name -> bytes (mitmproxy's
   * `multipart_form`). Empty unless the Content-Type says so; any change re-encodes the body (keeping the
   * boundary and the other parts' headers), setting a multipart Content-Type with a fresh boundary if needed.
   * @example flow.request.multipartForm.set("field", "new value");
   */
  get multipartForm(): MultipartForm {
    const ct = this.headers.get("content-type") ?? "";
    const body = /multipart\/form-data/i.test(ct) ? this.getContent(false) : null;
    const parts = body ? parseMultipart(ct, body) : [];
    return new MultipartForm(parts, (p) => this.#setMultipart(p));
  }
  set multipartForm(value: Iterable<[string, FormValue]> | Record<string, FormValue>) {
    const form = new MultipartForm([], () => {});
    const pairs = Symbol.iterator in value ? value as Iterable<[string, FormValue]> : Object.entries(value);
    for (const [k, v] of pairs) form.append(k, v);
    this.#setMultipart(form.parts);
  }

  #setMultipart(parts: FormPart[]): void {
    const ct = this.headers.get("content-type") ?? "";
    let boundary = /^\s*multipart\/form-data/i.test(ct) ? multipartBoundary(ct) : null;
    if (!boundary) {
      boundary = newBoundary();
      this.headers.set("content-type", `multipart/form-data; boundary=${boundary}`);
    }
    this.setContent(encodeMultipart(boundary, parts));
  }

  /** Remove headers that let a server answer "not modified" (what the anticache addon does). */
  anticache(): void {
    this.headers.delete("if-modified-since");
    this.headers.delete("if-none-match");
  }

  /** Ask for an uncompressed response. */
  anticomp(): void {
    this.headers.set("accept-encoding", "identity");
  }

  /** Limit Accept-Encoding to the encodings mitmdeno can decode. */
  constrainEncoding(): void {
    const ae = this.headers.get("accept-encoding");
    if (!ae) return;
    const ok = ae.split(",").map((s) => s.trim()).filter((e) =>
      ["gzip", "identity", "deflate", "br", "zstd"].includes(e.split(";")[0].trim().toLowerCase())
    );
    this.headers.set("accept-encoding", ok.join(", "));
  }

  /** A deep copy. */
  copy(): Request {
    const r = new Request({
      method: this.method,
      scheme: this.scheme,
      host: this.host,
      port: this.port,
      path: this.path,
      authority: this.authority,
      httpVersion: this.httpVersion,
      headers: this.headers.copy(),
      rawContent: this.rawContent,
      trailers: this.trailers?.copy() ?? null,
      timestampStart: this.timestampStart,
      timestampEnd: this.timestampEnd,
    });
    r.stream = this.stream;
    return r;
  }

  /** A short description, as mitmproxy's repr: `Request(GET example.com:80/path)`. */
  override toString(): string {
    const hostport = this.host && this.port ? `${this.host}:${this.port}` : "";
    return `Request(${this.method} ${hostport}${this.path})`;
  }

  /** The request line, URL and headers (no body), for logging and JSON. */
  toJSON(): Record<string, unknown> {
    return {
      method: this.method,
      url: this.url,
      httpVersion: this.httpVersion,
      headers: this.headers.fields,
    };
  }
}

function bracket(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

class LiveParams extends URLSearchParams {
  #write: (qs: string) => void;
  constructor(init: string, write: (qs: string) => void) {
    super(init);
    this.#write = write;
  }
  override append(name: string, value: string): void {
    super.append(name, value);
    this.#write?.(this.toString());
  }
  override set(name: string, value: string): void {
    super.set(name, value);
    this.#write?.(this.toString());
  }
  override delete(name: string, value?: string): void {
    super.delete(name, value);
    this.#write?.(this.toString());
  }
  override sort(): void {
    super.sort();
    this.#write?.(this.toString());
  }
}

/** Response constructor fields. */
export interface ResponseInit {
  /** The status code (100-999). */
  statusCode: number;
  /** The reason phrase (default: the standard one for the code). */
  reason?: string;
  /** `HTTP/1.1` by default. */
  httpVersion?: string;
  /** The header fields. */
  headers?: HeadersInit;
  /** The body (text, bytes or JSON-able), encoded per content-encoding. */
  content?: BodyInit;
  /** The body as sent on the wire (still content-encoded). */
  rawContent?: Uint8Array | null;
  /** Trailer fields, if any. */
  trailers?: Headers | null;
  /** When the response started (seconds since the epoch). */
  timestampStart?: number;
  /** When it was complete (seconds since the epoch). */
  timestampEnd?: number | null;
}

/** Check a status code set by an addon: an integer from 100 to 999 (three digits on the wire). */
export function checkStatusCode(code: unknown): number {
  if (typeof code !== "number" || !Number.isInteger(code) || code < 100 || code > 999) {
    throw new RangeError(`invalid status code ${JSON.stringify(code)}: expected an integer from 100 to 999`);
  }
  return code;
}

/** An HTTP response. */
export class Response extends Message {
  #statusCode: number;
  /** The reason phrase. */
  reason: string;

  /** A response from `init` (see {@link ResponseInit}). */
  constructor(init: ResponseInit) {
    super(init);
    // as read (a flow file or HAR may hold any number): checked when an addon sets it and when it is sent
    this.#statusCode = init.statusCode;
    this.reason = init.reason ?? reasonPhrase(init.statusCode);
  }

  /** The status code. Setting one outside 100–999 throws a RangeError. */
  get statusCode(): number {
    return this.#statusCode;
  }
  set statusCode(code: number) {
    this.#statusCode = checkStatusCode(code);
  }

  /**
   * Build a response, as mitmproxy's `Response.make`: the reason comes from the status code and
   * Content-Length is set.
   * @example flow.response = Response.make(403, "blocked", { "content-type": "text/plain" });
   */
  static make(statusCode = 200, content: BodyInit = "", headers: HeadersInit = {}): Response {
    const now = Date.now() / 1000;
    const r = new Response({
      statusCode: checkStatusCode(statusCode),
      headers: toHeaders(headers),
      rawContent: new Uint8Array(0),
      timestampStart: now,
      timestampEnd: now,
    });
    if (typeof content === "string") r.setText(content);
    else r.setContent(toBytes(content));
    return r;
  }

  /** Cookies from Set-Cookie headers: `[name, value, attributes]`. */
  get cookies(): [string, string, Record<string, string>][] {
    const out: [string, string, Record<string, string>][] = [];
    for (const h of this.headers.getAll("set-cookie")) {
      const [first, ...attrs] = h.split(";");
      const eq = first.indexOf("=");
      const name = (eq === -1 ? first : first.slice(0, eq)).trim();
      const value = eq === -1 ? "" : first.slice(eq + 1).trim();
      const a: Record<string, string> = {};
      for (const at of attrs) {
        const i = at.indexOf("=");
        const k = (i === -1 ? at : at.slice(0, i)).trim();
        if (k) a[k] = i === -1 ? "" : at.slice(i + 1).trim();
      }
      out.push([name, value, a]);
    }
    return out;
  }

  /** A deep copy. */
  copy(): Response {
    const r = new Response({
      statusCode: this.statusCode,
      reason: this.reason,
      httpVersion: this.httpVersion,
      headers: this.headers.copy(),
      rawContent: this.rawContent,
      trailers: this.trailers?.copy() ?? null,
      timestampStart: this.timestampStart,
      timestampEnd: this.timestampEnd,
    });
    r.stream = this.stream;
    return r;
  }

  /** A short description, as mitmproxy's repr: `Response(200, text/html, 1.2k)` or `Response(204, no content)`. */
  override toString(): string {
    const raw = this.rawContent;
    const details = raw && raw.length
      ? `${this.headers.get("content-type") ?? "unknown content type"}, ${prettySize(raw.length)}`
      : "no content";
    return `Response(${this.statusCode}, ${details})`;
  }

  /** The status line and headers (no body), for logging and JSON. */
  toJSON(): Record<string, unknown> {
    return {
      statusCode: this.statusCode,
      reason: this.reason,
      httpVersion: this.httpVersion,
      headers: this.headers.fields,
    };
  }
}
