/**
 * HTTP/2 header fields <-> the message model (mitmproxy's `parse_h2_request_headers`,
 * `format_h2_request_headers` and their response twins): pseudo-headers split off and checked, the
 * request's `:authority` kept as `Request.authority` (HTTP/1's Host becomes `:authority` when translating,
 * and back), connection-specific fields dropped, names lower-cased for HTTP/2.
 *
 * @module
 */
import { Headers } from "../../../http/headers.ts";
import { defaultPort, hostPort, Request, Response } from "../../../http/message.ts";
import { endToEndFields, placeContentLength } from "../../../http1/hop.ts";

/** A header block that is not a valid HTTP/2 request or response (a stream error, PROTOCOL_ERROR). */
export class MalformedError extends Error {}

/** Fields that HTTP/2 forbids (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Split pseudo-headers (which must come first, once each) from the regular fields; validate them unless
 * `validate` is off (the `validate_inbound_headers` option).
 */
function split(
  fields: [string, string][],
  validate: boolean,
): { pseudo: Map<string, string>; regular: [string, string][] } {
  const pseudo = new Map<string, string>();
  let i = 0;
  for (; i < fields.length; i++) {
    const [k, v] = fields[i];
    if (k.charCodeAt(0) !== 58) break;
    if (pseudo.has(k)) throw new MalformedError(`duplicate pseudo-header ${k}`);
    pseudo.set(k, v);
  }
  const regular = i === 0 ? fields : fields.slice(i);
  if (validate) { for (const [k, v] of regular) checkField(k, v); }
  return { pseudo, regular };
}

/** A regular field of a received block: lower-case name, no connection-specific field, TE only "trailers". */
function checkField(k: string, v: string): void {
  if (k.length === 0) throw new MalformedError("empty field name");
  if (k.charCodeAt(0) === 58) throw new MalformedError(`pseudo-header ${k} after regular fields`);
  for (let j = 0; j < k.length; j++) {
    const c = k.charCodeAt(j);
    if ((c >= 65 && c <= 90) || c <= 32 || c >= 127) {
      throw new MalformedError(`invalid field name ${JSON.stringify(k)} (HTTP/2 names are lower case)`);
    }
  }
  if (CONNECTION_SPECIFIC.has(k)) throw new MalformedError(`connection-specific field ${k}`);
  if (k === "te" && v.trim().toLowerCase() !== "trailers") throw new MalformedError(`te: ${v}`);
  for (let j = 0; j < v.length; j++) {
    const c = v.charCodeAt(j);
    if (c === 0 || c === 10 || c === 13) throw new MalformedError(`invalid value of ${k}`);
  }
}

/** Trailer fields of a received block (no pseudo-headers). */
export function parseTrailers(fields: [string, string][], validate = true): Headers {
  if (validate) { for (const [k, v] of fields) checkField(k, v); }
  return Headers.adopt(fields);
}

/** Split an authority into host and port (null: none given). */
function parseAuthority(a: string): [string, number | null] {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s/@]+))(?::(\d{1,5}))?$/.exec(a);
  if (!m) throw new MalformedError(`invalid :authority ${JSON.stringify(a.slice(0, 100))}`);
  const port = m[3] !== undefined ? Number(m[3]) : null;
  if (port !== null && port > 65535) throw new MalformedError(`invalid port in :authority ${a}`);
  return [m[1] ?? m[2], port];
}

/** A received request head. CONNECT (no :scheme, no :path) is malformed here: HTTP/2 tunnels are not supported. */
export function parseRequest(fields: [string, string][], validate = true): Request {
  const { pseudo, regular } = split(fields, validate);
  const method = pseudo.get(":method");
  const scheme = pseudo.get(":scheme");
  const path = pseudo.get(":path");
  const authority = pseudo.get(":authority") ?? "";
  if (method === undefined) throw new MalformedError("required pseudo-header :method missing");
  if (scheme === undefined || path === undefined) {
    throw new MalformedError(
      method === "CONNECT"
        ? "HTTP/2 CONNECT is not supported"
        : `required pseudo-header ${scheme === undefined ? ":scheme" : ":path"} missing`,
    );
  }
  for (const k of pseudo.keys()) {
    if (k !== ":method" && k !== ":scheme" && k !== ":path" && k !== ":authority") {
      throw new MalformedError(`unknown pseudo-header ${k}`);
    }
  }
  if (!path) throw new MalformedError("empty :path");
  let host = "";
  let port = 0;
  if (authority) {
    const [h, p] = parseAuthority(authority);
    host = h;
    port = p ?? defaultPort(scheme);
  }
  // cookie crumbs (RFC 9113 §8.2.3) are joined, so HTTP/1 servers and addons see one Cookie field
  let headers = regular;
  let cookies = 0;
  for (const f of regular) if (f[0] === "cookie") cookies++;
  if (cookies > 1) {
    const joined = regular.filter((f) => f[0] === "cookie").map((f) => f[1]).join("; ");
    headers = [];
    let placed = false;
    for (const f of regular) {
      if (f[0] !== "cookie") headers.push(f);
      else if (!placed) {
        headers.push(["cookie", joined]);
        placed = true;
      }
    }
  }
  return new Request({
    method,
    scheme,
    host,
    port,
    path,
    authority,
    httpVersion: "HTTP/2.0",
    headers: Headers.adopt(headers === regular ? [...regular] : headers),
    rawContent: null,
  });
}

/** A received response head (its status; 1xx included, the caller decides). */
export function parseResponse(fields: [string, string][], validate = true): Response {
  const { pseudo, regular } = split(fields, validate);
  const status = pseudo.get(":status");
  if (status === undefined) throw new MalformedError("required pseudo-header :status missing");
  if (pseudo.size > 1) throw new MalformedError(`unknown pseudo-header in a response`);
  if (!/^\d{3}$/.test(status)) throw new MalformedError(`invalid :status ${JSON.stringify(status)}`);
  return new Response({
    statusCode: Number(status),
    reason: "",
    httpVersion: "HTTP/2.0",
    headers: Headers.adopt([...regular]),
    rawContent: null,
    timestampStart: Date.now() / 1000,
  });
}

/**
 * Regular fields to send: end-to-end only, TE kept only as "trailers". Names keep their spelling: the codec
 * lower-cases them (`normalize_outbound_headers`, see lib/http/h2_normalize.ts) or sends them as they are.
 */
function outgoing(headers: Headers): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of endToEndFields(headers)) {
    const c0 = k.charCodeAt(0);
    if (c0 === 58 || ((c0 === 104 || c0 === 72) && k.length === 4 && k.toLowerCase() === "host")) continue;
    out.push([k, v]);
  }
  return out;
}

/** The header block of a request to send. `:authority`: a Host field wins (HTTP/1, or set by the proxy). */
export function formatRequest(req: Request): [string, string][] {
  const host = req.headers.get("host");
  const authority = host ??
    (req.authority ||
      (req.port === defaultPort(req.scheme)
        ? (req.host.includes(":") ? `[${req.host}]` : req.host)
        : hostPort(req.host, req.port)));
  const te = req.headers.get("te");
  const out: [string, string][] = [
    [":method", req.method],
    [":scheme", req.scheme],
    [":authority", authority],
    [":path", req.path || "/"],
  ];
  out.push(...outgoing(req.headers));
  if (te !== undefined && /\btrailers\b/i.test(te)) out.push(["te", "trailers"]);
  return out;
}

/**
 * The header block of a response to send. `length`: the body length that follows (null: unknown), which
 * the content-length field must match (it is dropped when unknown); HEAD and 304 answers keep theirs.
 */
export function formatResponse(
  resp: Response,
  length: number | null,
  requestMethod: string,
): [string, string][] {
  const out: [string, string][] = [[":status", String(resp.statusCode)]];
  const fields = outgoing(resp.headers);
  if (resp.statusCode < 200 || resp.statusCode === 204) placeContentLength(fields, null);
  else if (requestMethod !== "HEAD" && resp.statusCode !== 304) placeContentLength(fields, length);
  out.push(...fields);
  return out;
}

/**
 * A function that runs `flush` once after the current burst of events (in a microtask), however often it is
 * called meanwhile: a response's head, body and end usually come in one go, so they leave in one write instead
 * of several small ones, which TCP would otherwise hold back (Nagle and delayed ACKs cost up to 40 ms each).
 */
export function microtaskBatch(flush: () => void, onError: (e: Error) => void): () => void {
  let queued = false;
  const run = () => {
    queued = false;
    try {
      flush();
    } catch (e) {
      onError(e as Error);
    }
  };
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(run);
  };
}
