/**
 * HAR 1.2 (HTTP Archive) export and import, as mitmproxy's `savehar.py` and `io/har.py` do it.
 *
 * - {@link makeHar} builds a HAR document from flows (`log.version` "1.2", one entry per HTTP flow, with
 *   every field HAR 1.2 requires, so Chromium's DevTools and other importers accept it).
 * - {@link harToFlows} turns a parsed HAR document (Chrome, Firefox, Safari, Charles, mitmproxy, Slack's
 *   `[name, value]` header notation) back into flows; `readFlows` calls it when a file starts with `{`.
 * - {@link validateHar} lists what a document lacks against the HAR 1.2 required fields.
 *
 * Header names and values are binary (latin1) strings in the flow model; they are written to HAR as UTF-8
 * text when they are valid UTF-8, as is, otherwise.
 *
 * @example
 * ```ts
 * import { harToFlows, makeHar } from "./har.ts";
 * import { tflow } from "../../testing.ts";
 * const flows = [tflow({ resp: true })];
 * const har = makeHar(flows);
 * await Deno.writeTextFile("out.har", JSON.stringify(har, null, 4));
 * for (const f of harToFlows(JSON.parse(await Deno.readTextFile("out.har")))) console.log(f.request.url);
 * ```
 * @module
 */
import { Headers } from "../http/headers.ts";
import { Request, Response } from "../http/message.ts";
import { Client, Server } from "../flow/connection.ts";
import { FlowError, HTTPFlow } from "../flow/flow.ts";
import type { Flow } from "../flow/flow.ts";
import { reasonPhrase } from "../http/status.ts";
import { asUtf8Text, fromLatin1, latin1 } from "../http/bytes.ts";
import { isIP } from "node:net";
import { VERSION } from "../version.ts";

/** Parsed JSON (HAR documents are read and written as plain JSON values). */
// deno-lint-ignore no-explicit-any
export type Json = any;

/** A HAR name/value pair. */
export interface HarNameValue {
  name: string;
  value: string;
}

/** A HAR entry (the fields mitmdeno writes). */
export interface HarEntry {
  /** When the request started (ISO 8601). */
  startedDateTime: string;
  /** Total time in milliseconds. */
  time: number;
  /** The request (HAR 1.2 `request` object). */
  request: Json;
  /** The response (HAR 1.2 `response` object). */
  response: Json;
  /** Cache information (always `{}`). */
  cache: Json;
  /** Phase durations in milliseconds (-1: not applicable). */
  timings: { connect: number; ssl: number; send: number; receive: number; wait: number; [k: string]: number };
  /** The server's IP address, only when known. */
  serverIPAddress?: string;
  /** Other fields (custom `_` fields). */
  [k: string]: unknown;
}

/** A HAR document. */
export interface Har {
  /** The HAR log: creator, pages and entries. */
  log: {
    version: string;
    creator: { name: string; version: string; comment?: string };
    pages: unknown[];
    entries: HarEntry[];
  };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const utf8enc = new TextEncoder();

/** Binary (latin1) string -> readable text (UTF-8 if it decodes, else unchanged). */
function text(bin: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(bin)) return bin;
  try {
    return strictUtf8.decode(fromLatin1(bin));
  } catch {
    return bin;
  }
}

/** Text -> binary (latin1) string of its UTF-8 bytes. */
function bin(s: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  return latin1(utf8enc.encode(s));
}

function pairs(items: Iterable<[string, string]>): HarNameValue[] {
  const out: HarNameValue[] = [];
  for (const [name, value] of items) out.push({ name: text(name), value: text(value) });
  return out;
}

function headersSize(h: Headers): number {
  let n = 0;
  for (const [k, v] of h.fields) n += k.length + v.length + 4;
  return n;
}

function base64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]);
  }
  return btoa(s);
}

function unbase64(s: string): Uint8Array {
  const raw = atob(s.replace(/\s+/g, ""));
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

const ms = (x: number) => Math.round(x * 1000 * 1000) / 1000;

function responseCookies(resp: Response): Json[] {
  return resp.cookies.map(([name, value, attrs]) => {
    const lower: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) lower[k.toLowerCase()] = v;
    const c: Json = {
      name: text(name),
      value: text(value),
      path: lower.path ?? "/",
      domain: lower.domain ?? "",
      httpOnly: "httponly" in lower,
      secure: "secure" in lower,
    };
    if (lower.expires) {
      const t = Date.parse(lower.expires);
      if (!Number.isNaN(t)) c.expires = new Date(t).toISOString();
    }
    if ("samesite" in lower) c.sameSite = lower.samesite;
    return c;
  });
}

/**
 * One HAR entry for an HTTP flow. `serversSeen` keeps the server connections already counted, so only the
 * first request on a connection is charged its connect/TLS time (as browsers and mitmproxy do).
 */
export function flowToHarEntry(flow: HTTPFlow, serversSeen: Set<unknown> = new Set()): HarEntry {
  const req = flow.request;
  const resp = flow.response;
  const sc = flow.serverConn;
  let connect = -1;
  let ssl = -1;
  if (!serversSeen.has(sc) && sc.timestampTcpSetup && sc.timestampStart) {
    connect = ms(sc.timestampTcpSetup - sc.timestampStart);
    if (sc.timestampTlsSetup) ssl = ms(sc.timestampTlsSetup - sc.timestampTcpSetup);
    serversSeen.add(sc);
  }
  const send = req.timestampEnd ? Math.max(0, ms(req.timestampEnd - req.timestampStart)) : 0;
  const wait = resp && req.timestampEnd ? Math.max(0, ms(resp.timestampStart - req.timestampEnd)) : 0;
  const receive = resp?.timestampEnd ? Math.max(0, ms(resp.timestampEnd - resp.timestampStart)) : 0;
  const timings = { connect, ssl, send, receive, wait };

  let response: Json;
  if (resp) {
    const raw = resp.rawContent;
    const content = resp.getContent(false);
    const size = raw ? raw.length : 0;
    const decodedSize = content ? content.length : 0;
    response = {
      status: resp.statusCode,
      statusText: text(resp.reason),
      httpVersion: resp.httpVersion,
      cookies: responseCookies(resp),
      headers: pairs(resp.headers.fields),
      content: {
        size: decodedSize,
        compression: decodedSize - size,
        mimeType: text(resp.headers.get("content-type") ?? ""),
      } as Json,
      redirectURL: text(resp.headers.get("location") ?? ""),
      headersSize: headersSize(resp.headers),
      bodySize: size,
    };
    // text only when it gives the same bytes back: anything else (images, latin1, ...) goes as base64
    const asText = content ? asUtf8Text(content) : "";
    if (asText === null) {
      response.content.text = base64(content!);
      response.content.encoding = "base64";
    } else {
      response.content.text = asText;
    }
  } else {
    response = {
      status: 0,
      statusText: "",
      httpVersion: "",
      cookies: [],
      headers: [],
      content: { size: 0, mimeType: "" },
      redirectURL: "",
      headersSize: -1,
      bodySize: -1,
      _transferSize: 0,
      _error: flow.error ? flow.error.msg : null,
    };
  }

  const url = req.method === "CONNECT" ? `https://${req.prettyHost}:${req.port}/` : req.prettyUrl;
  const reqBody = req.getContent(false);
  const request: Json = {
    method: req.method,
    url: text(url),
    httpVersion: req.httpVersion,
    cookies: pairs(req.cookies),
    headers: pairs(req.headers.fields),
    queryString: pairs(req.query),
    headersSize: headersSize(req.headers),
    bodySize: reqBody ? reqBody.length : 0,
  };
  if (["POST", "PUT", "PATCH"].includes(req.method) || (reqBody && reqBody.length)) {
    const mimeType = text(req.headers.get("content-type") ?? "");
    const asText = reqBody ? asUtf8Text(reqBody) : "";
    const postData: Json = { mimeType, text: asText ?? base64(reqBody!), params: pairs(req.urlencodedForm) };
    if (asText === null) postData.encoding = "base64";
    request.postData = postData;
  }

  const entry: HarEntry = {
    startedDateTime: new Date(req.timestampStart * 1000).toISOString(),
    time: Object.values(timings).filter((v) => v >= 0).reduce((a, b) => a + b, 0),
    request,
    response,
    cache: {},
    timings,
  };
  // only a real address: without a connection (replayed, answered by the proxy) the field is left out
  if (sc.peername && isIP(sc.peername[0])) entry.serverIPAddress = sc.peername[0];
  if (flow.comment) entry.comment = flow.comment;
  const ws = flow.websocket as
    | { messages?: { type: number; fromClient: boolean; content: Uint8Array; timestamp: number }[] }
    | null;
  if (ws && Array.isArray(ws.messages)) {
    entry._resourceType = "websocket";
    entry._webSocketMessages = ws.messages.map((m) => ({
      type: m.fromClient ? "send" : "receive",
      time: m.timestamp,
      opcode: m.type,
      data: m.type === 1 ? new TextDecoder().decode(m.content) : base64(m.content),
    }));
  }
  return entry;
}

/** A HAR 1.2 document for the HTTP flows among `flows` (others are skipped; `skipped` counts them). */
export function makeHar(flows: Iterable<Flow>, skipped?: { count: number }): Har {
  const entries: HarEntry[] = [];
  const seen = new Set<unknown>();
  for (const f of flows) {
    if (f instanceof HTTPFlow) entries.push(flowToHarEntry(f, seen));
    else if (skipped) skipped.count++;
  }
  return {
    log: {
      version: "1.2",
      creator: { name: "mitmdeno", version: VERSION, comment: "" },
      pages: [],
      entries,
    },
  };
}

// ------------------------------------------------------------------------------------------------------
// Import

/** A HAR document could not be turned into flows. */
export class HarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HarError";
  }
}

function harHeaders(list: unknown, where: string): Headers {
  if (list === undefined || list === null) return new Headers();
  if (!Array.isArray(list)) throw new HarError(`${where}: headers must be a list`);
  const out: [string, string][] = [];
  for (const h of list) {
    if (Array.isArray(h)) {
      if (h.length < 2) throw new HarError(`${where}: a header pair needs a name and a value`);
      out.push([bin(String(h[0])), bin(String(h[1]))]);
    } else if (h && typeof h === "object" && "name" in h) {
      out.push([bin(String(h.name)), bin(String(h.value ?? ""))]);
    } else throw new HarError(`${where}: bad header ${JSON.stringify(h)}`);
  }
  return new Headers(out);
}

function httpVersion(v: unknown): string {
  const s = String(v ?? "").toUpperCase();
  if (s === "HTTP/2" || s === "HTTP/2.0" || s === "H2") return "HTTP/2.0";
  if (s === "HTTP/3" || s === "HTTP/3.0" || s === "H3") return "HTTP/3";
  if (s === "HTTP/1.0") return "HTTP/1.0";
  return "HTTP/1.1";
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null;
}

/** Turn one HAR entry into a flow (mitmproxy's `request_to_flow`). */
export function harEntryToFlow(entry: Json, index = 0): HTTPFlow {
  const where = `HAR entry ${index}`;
  if (!entry || typeof entry !== "object") throw new HarError(`${where}: not an object`);
  const r = entry.request;
  if (!r || typeof r !== "object") throw new HarError(`${where}: no request`);
  let url: URL;
  try {
    url = new URL(String(r.url));
  } catch {
    throw new HarError(`${where}: invalid request url ${JSON.stringify(r.url)}`);
  }
  const started = Date.parse(String(entry.startedDateTime ?? ""));
  const t0 = Number.isNaN(started) ? Date.now() / 1000 : started / 1000;
  const total = (num(entry.time) ?? 0) / 1000;
  const timings = entry.timings ?? {};
  const send = num(timings.send);
  const wait = num(timings.wait);
  const receive = num(timings.receive);
  const haveTimings = send !== null && wait !== null && receive !== null;

  const scheme = url.protocol.replace(/:$/, "");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port ? Number(url.port) : scheme === "https" ? 443 : 80;
  const method = String(r.method ?? "GET").toUpperCase();
  const reqHeaders = harHeaders(r.headers, where);
  let reqBody: Uint8Array = new Uint8Array(0);
  if (r.postData && typeof r.postData === "object") {
    const pd = r.postData;
    if (typeof pd.text === "string") {
      reqBody = pd.encoding === "base64" ? unbase64(pd.text) : utf8enc.encode(pd.text);
    } else if (Array.isArray(pd.params)) {
      reqBody = utf8enc.encode(
        new URLSearchParams(pd.params.map((p: Json) => [String(p.name), String(p.value ?? "")])).toString(),
      );
    }
  }
  const reqEnd = haveTimings ? t0 + send! / 1000 : t0;
  const request = new Request({
    method,
    scheme,
    host,
    port,
    path: method === "CONNECT" ? "" : (url.pathname || "/") + url.search,
    authority: method === "CONNECT" ? `${host}:${port}` : "",
    httpVersion: httpVersion(r.httpVersion),
    headers: reqHeaders,
    rawContent: null,
    timestampStart: t0,
    timestampEnd: reqEnd,
  });
  // setContent encodes per Content-Encoding (HAR holds decoded bodies) and fixes Content-Length
  if (reqBody.length) request.setContent(reqBody);
  else request.rawContent = reqBody;

  const client = new Client({ peername: ["127.0.0.1", 0], sockname: ["127.0.0.1", 0] });
  client.timestampStart = t0;
  client.timestampEnd = t0 + total;
  const server = new Server([host, port]);
  if (typeof entry.serverIPAddress === "string" && entry.serverIPAddress) {
    server.peername = [entry.serverIPAddress.replace(/^\[|\]$/g, ""), port];
  }
  server.tls = scheme === "https";
  const flow = new HTTPFlow(client, server, request, false);
  flow.timestampCreated = t0;
  if (typeof entry.comment === "string") flow.comment = entry.comment;

  const rs = entry.response;
  if (rs && typeof rs === "object" && typeof rs.status === "number" && rs.status > 0) {
    const headers = harHeaders(rs.headers, where);
    const c = rs.content ?? {};
    let body: Uint8Array;
    if (typeof c.text === "string") {
      body = c.encoding === "base64" ? unbase64(c.text) : utf8enc.encode(c.text);
    } else body = new Uint8Array(0);
    const respStart = haveTimings ? reqEnd + wait! / 1000 : t0;
    const respEnd = haveTimings ? respStart + receive! / 1000 : t0 + total;
    const response = new Response({
      statusCode: rs.status,
      reason: typeof rs.statusText === "string" && rs.statusText
        ? bin(rs.statusText)
        : reasonPhrase(rs.status),
      httpVersion: httpVersion(rs.httpVersion),
      headers,
      rawContent: new Uint8Array(0),
      timestampStart: respStart,
      timestampEnd: respEnd,
    });
    // HAR holds the decoded body: encode it again per Content-Encoding, as mitmproxy does
    if (body.length) response.setContent(body);
    flow.response = response;
  } else if (rs && typeof rs._error === "string" && rs._error) {
    flow.error = new FlowError(rs._error, t0 + total);
  }
  return flow;
}

/** All flows of a parsed HAR document. Throws {@link HarError} for a document without `log.entries`. */
export function* harToFlows(har: Json): Generator<HTTPFlow> {
  if (!har || typeof har !== "object" || !har.log || typeof har.log !== "object") {
    throw new HarError('not a HAR file: no "log" object');
  }
  const entries = har.log.entries;
  if (!Array.isArray(entries)) throw new HarError('not a HAR file: "log.entries" is not a list');
  for (let i = 0; i < entries.length; i++) yield harEntryToFlow(entries[i], i);
}

// ------------------------------------------------------------------------------------------------------
// Validation

/**
 * Check a HAR document against the fields HAR 1.2 requires (the ones Chromium's importer reads).
 * Returns a list of problems, empty when the document is valid.
 */
export function validateHar(har: Json): string[] {
  const errs: string[] = [];
  const isStr = (v: unknown) => typeof v === "string";
  const isNum = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  const isObj = (v: unknown) => !!v && typeof v === "object" && !Array.isArray(v);
  const need = (o: Json, key: string, check: (v: unknown) => boolean, what: string, path: string) => {
    if (!isObj(o) || !(key in o)) errs.push(`${path}.${key}: missing`);
    else if (!check(o[key])) errs.push(`${path}.${key}: expected ${what}, got ${JSON.stringify(o[key])}`);
  };
  const nvList = (o: Json, key: string, path: string) => {
    need(o, key, Array.isArray, "a list", path);
    if (!isObj(o) || !Array.isArray(o[key])) return;
    o[key].forEach((x: Json, i: number) => {
      need(x, "name", isStr, "a string", `${path}.${key}[${i}]`);
      need(x, "value", isStr, "a string", `${path}.${key}[${i}]`);
    });
  };
  if (!isObj(har)) return ["document: expected an object"];
  need(har, "log", isObj, "an object", "");
  const log = har.log;
  if (!isObj(log)) return errs;
  need(log, "version", isStr, "a string", "log");
  need(log, "creator", isObj, "an object", "log");
  if (isObj(log.creator)) {
    need(log.creator, "name", isStr, "a string", "log.creator");
    need(log.creator, "version", isStr, "a string", "log.creator");
  }
  need(log, "entries", Array.isArray, "a list", "log");
  if (!Array.isArray(log.entries)) return errs;
  log.entries.forEach((e: Json, i: number) => {
    const p = `log.entries[${i}]`;
    need(e, "startedDateTime", (v) => isStr(v) && !Number.isNaN(Date.parse(v as string)), "an ISO date", p);
    need(e, "time", isNum, "a number", p);
    need(e, "request", isObj, "an object", p);
    need(e, "response", isObj, "an object", p);
    need(e, "cache", isObj, "an object", p);
    need(e, "timings", isObj, "an object", p);
    if (isObj(e.request)) {
      const q = `${p}.request`;
      need(e.request, "method", isStr, "a string", q);
      need(e.request, "url", isStr, "a string", q);
      need(e.request, "httpVersion", isStr, "a string", q);
      nvList(e.request, "cookies", q);
      nvList(e.request, "headers", q);
      nvList(e.request, "queryString", q);
      need(e.request, "headersSize", isNum, "a number", q);
      need(e.request, "bodySize", isNum, "a number", q);
      if ("postData" in e.request) need(e.request.postData, "mimeType", isStr, "a string", `${q}.postData`);
    }
    if (isObj(e.response)) {
      const q = `${p}.response`;
      need(e.response, "status", isNum, "a number", q);
      need(e.response, "statusText", isStr, "a string", q);
      need(e.response, "httpVersion", isStr, "a string", q);
      nvList(e.response, "cookies", q);
      nvList(e.response, "headers", q);
      need(e.response, "content", isObj, "an object", q);
      if (isObj(e.response.content)) {
        need(e.response.content, "size", isNum, "a number", `${q}.content`);
        need(e.response.content, "mimeType", isStr, "a string", `${q}.content`);
      }
      need(e.response, "redirectURL", isStr, "a string", q);
      need(e.response, "headersSize", isNum, "a number", q);
      need(e.response, "bodySize", isNum, "a number", q);
    }
    if (isObj(e.timings)) {
      for (const k of ["send", "wait", "receive"]) {
        need(e.timings, k, (v) => isNum(v) && (v as number) >= 0, "a non-negative number", `${p}.timings`);
      }
      for (const k of ["blocked", "dns", "connect", "ssl"]) {
        if (k in e.timings) {
          need(e.timings, k, (v) => isNum(v) && (v as number) >= -1, "a number >= -1", `${p}.timings`);
        }
      }
    }
  });
  return errs;
}
