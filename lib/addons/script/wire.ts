/**
 * The wire format between the proxy and a script worker: what a hook sees of a flow, and the changes a
 * hook made, sent back and applied to the live flow.
 *
 * - Only what the hook can see crosses: `requestheaders`/`responseheaders` get no bodies; `request` gets
 *   the request body; `response` and `error` get both.
 * - Bodies travel as transferable ArrayBuffers (one copy on each side at most: the proxy's buffer is never
 *   detached, the worker's buffer is moved).
 * - Only changes come back: changed fields, changed header lists, a body only if it was replaced, a new
 *   response only if the script set one.
 * - Metadata values that cannot be structured-cloned (functions, class instances with private state) stay
 *   on the proxy side: the script does not see them and they are never deleted by a script's changes.
 */
import { Client, type Connection, Server } from "../../flow/connection.ts";
import { FlowError, HTTPFlow, KILLED_MESSAGE } from "../../flow/flow.ts";
import { Headers } from "../../http/headers.ts";
import { type Message, Request, Response } from "../../http/message.ts";

/** Which bodies each hook sees. */
export const HOOK_BODIES: Record<string, { request: boolean; response: boolean }> = {
  requestheaders: { request: false, response: false },
  request: { request: true, response: false },
  responseheaders: { request: false, response: false },
  response: { request: true, response: true },
  error: { request: true, response: true },
  http_connect: { request: false, response: false },
  http_connect_upstream: { request: false, response: false },
  http_connected: { request: false, response: false },
  http_connect_error: { request: false, response: false },
  update: { request: false, response: false },
};

/** Hooks whose argument is an HTTP flow. */
export const FLOW_HOOKS = new Set(Object.keys(HOOK_BODIES).filter((h) => h !== "update"));
/** Hooks whose argument is a Client connection. */
export const CLIENT_HOOKS = new Set(["client_connected", "client_disconnected"]);
/** Hooks whose argument is `{ server, client }`. */
export const SERVER_HOOKS = new Set([
  "server_connect",
  "server_connected",
  "server_disconnected",
  "server_connect_error",
]);
/** Lifecycle hooks, handled by the script host itself. */
export const LIFECYCLE_HOOKS = new Set(["load", "configure", "running", "done"]);

/** Every hook a sandboxed script can handle. */
export function isSupportedHook(name: string): boolean {
  return FLOW_HOOKS.has(name) || CLIENT_HOOKS.has(name) || SERVER_HOOKS.has(name) ||
    LIFECYCLE_HOOKS.has(name) ||
    name === "update";
}

/** A message (request or response) on the wire. `body` undefined: not sent. */
export interface WireMessage {
  httpVersion: string;
  headers: [string, string][];
  trailers: [string, string][] | null;
  timestampStart: number;
  timestampEnd: number | null;
  stream: boolean;
  body?: ArrayBuffer | null;
}

/** A request on the wire. */
export interface WireRequest extends WireMessage {
  method: string;
  scheme: string;
  host: string;
  port: number;
  path: string;
  authority: string;
}

/** A response on the wire. */
export interface WireResponse extends WireMessage {
  statusCode: number;
  reason: string;
}

/** A connection record on the wire: its plain fields. */
export type WireConn = Record<string, unknown>;

/** An HTTP flow on the wire. */
export interface WireFlow {
  id: string;
  live: boolean;
  intercepted: boolean;
  isReplay: "request" | "response" | null;
  marked: string;
  comment: string;
  metadata: Record<string, unknown>;
  timestampCreated: number;
  error: { msg: string; timestamp: number } | null;
  request: WireRequest;
  response: WireResponse | null;
  client: WireConn;
  server: WireConn;
}

/** What a hook changed. Absent keys: unchanged. */
export interface FlowChanges {
  request?: Partial<WireRequest>;
  /** The script assigned a new Request object. */
  requestReplace?: WireRequest;
  response?: Partial<WireResponse>;
  /** The script assigned a new response (or null). */
  responseReplace?: WireResponse | null;
  error?: { msg: string; timestamp: number } | null;
  marked?: string;
  comment?: string;
  /** The new cloneable metadata (keys absent here but sent before were deleted). */
  metadata?: Record<string, unknown>;
  intercept?: boolean;
  client?: WireConn;
  server?: WireConn;
  /** Warnings to log on the proxy side. */
  warnings?: string[];
}

// ---------------------------------------------------------------------------------------------------
// structured-clone safety

function cloneable(v: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (v === null || v === undefined) return true;
  const t = typeof v;
  if (t === "string" || t === "number" || t === "boolean" || t === "bigint") return true;
  if (t !== "object") return false;
  if (Array.isArray(v)) return v.every((x) => cloneable(x, depth + 1));
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof Date || v instanceof RegExp) {
    return true;
  }
  if (v instanceof Map) return [...v].every(([k, x]) => cloneable(k, depth + 1) && cloneable(x, depth + 1));
  if (v instanceof Set) return [...v].every((x) => cloneable(x, depth + 1));
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(v as Record<string, unknown>).every((x) => cloneable(x, depth + 1));
}

/** The part of `metadata` that can cross the boundary. */
export function cloneableMetadata(md: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const k in md) {
    out ??= {};
    if (cloneable(md[k])) out[k] = md[k];
  }
  return out ?? {};
}

/** Deep equality for structured-clone data. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !deepEqual(v, b.get(k))) return false;
    return true;
  }
  if (a instanceof Set && b instanceof Set) return a.size === b.size && [...a].every((x) => b.has(x));
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function pairsEqual(a: [string, string][] | null, b: [string, string][] | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// proxy side: flow -> wire

/**
 * A copy of `bytes` in a fresh ArrayBuffer. Not `bytes.slice()`: for a node `Buffer` (what node:net
 * sockets deliver) `slice` is a view into a shared pool, and transferring that pool would detach it.
 */
function copyBytes(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}

/** A standalone copy of `bytes` as an ArrayBuffer, added to `transfer`. */
function bodyOut(bytes: Uint8Array | null, transfer: ArrayBuffer[]): ArrayBuffer | null {
  if (bytes === null) return null;
  const copy = copyBytes(bytes);
  transfer.push(copy);
  return copy;
}

function messageOut(m: Message, withBody: boolean, transfer: ArrayBuffer[]): WireMessage {
  const w: WireMessage = {
    httpVersion: m.httpVersion,
    headers: m.headers.fields,
    trailers: m.trailers ? m.trailers.fields : null,
    timestampStart: m.timestampStart,
    timestampEnd: m.timestampEnd,
    stream: m.stream !== false,
  };
  if (withBody) w.body = bodyOut(m.rawContent, transfer);
  return w;
}

/** A request on the wire (with its body if `withBody`). */
export function requestOut(r: Request, withBody: boolean, transfer: ArrayBuffer[]): WireRequest {
  const w = messageOut(r, withBody, transfer) as WireRequest;
  w.method = r.method;
  w.scheme = r.scheme;
  w.host = r.host;
  w.port = r.port;
  w.path = r.path;
  w.authority = r.authority;
  return w;
}

/** A response on the wire (with its body if `withBody`). */
export function responseOut(r: Response, withBody: boolean, transfer: ArrayBuffer[]): WireResponse {
  const w = messageOut(r, withBody, transfer) as WireResponse;
  w.statusCode = r.statusCode;
  w.reason = r.reason;
  return w;
}

/** A connection record's plain fields. */
export function connOut(c: Connection): WireConn {
  const o: WireConn = {};
  for (const k of Object.keys(c)) {
    const v = (c as unknown as Record<string, unknown>)[k];
    if (typeof v !== "function" && cloneable(v)) o[k] = v;
  }
  return o;
}

/** A flow as `event` sees it. Bodies are appended to `transfer`. */
export function flowOut(flow: HTTPFlow, event: string, transfer: ArrayBuffer[]): WireFlow {
  const bodies = HOOK_BODIES[event] ?? { request: false, response: false };
  return {
    id: flow.id,
    live: flow.live,
    intercepted: flow.intercepted,
    isReplay: flow.isReplay,
    marked: flow.marked,
    comment: flow.comment,
    metadata: cloneableMetadata(flow.metadata),
    timestampCreated: flow.timestampCreated,
    error: flow.error ? { msg: flow.error.msg, timestamp: flow.error.timestamp } : null,
    request: requestOut(flow.request, bodies.request, transfer),
    response: flow.response ? responseOut(flow.response, bodies.response, transfer) : null,
    client: connOut(flow.clientConn),
    server: connOut(flow.serverConn),
  };
}

/** A flow packed for postMessage: JSON for the plain fields, structured clone for metadata and bodies. */
export interface PackedFlow {
  json: string;
  metadata: Record<string, unknown>;
  /** Request and response bodies (undefined: not sent). */
  bodies: [ArrayBuffer | null | undefined, ArrayBuffer | null | undefined];
}

/**
 * Pack a wire flow for postMessage. Structured clone of many small objects (header pairs, connection
 * records) costs about twice as much as JSON of the same data plus cloning one string, so the plain part
 * goes as JSON; metadata (which may hold bytes, Maps, Dates) and the transferable bodies go as they are.
 */
export function packFlow(w: WireFlow): PackedFlow {
  const bodies: PackedFlow["bodies"] = [w.request.body, w.response?.body];
  const json = JSON.stringify(w, (k, v) => (k === "body" || k === "metadata" ? undefined : v));
  return { json, metadata: w.metadata, bodies };
}

/** Undo {@link packFlow}. */
export function unpackFlow(p: PackedFlow): WireFlow {
  const w = JSON.parse(p.json) as WireFlow;
  w.metadata = p.metadata;
  if (p.bodies[0] !== undefined) w.request.body = p.bodies[0];
  if (w.response && p.bodies[1] !== undefined) w.response.body = p.bodies[1];
  return w;
}

// ---------------------------------------------------------------------------------------------------
// worker side: wire -> objects, and the diff

function bodyIn(w: WireMessage): Uint8Array | null {
  return w.body ? new Uint8Array(w.body) : null;
}

/** Build a Request from the wire. */
export function requestIn(w: WireRequest): Request {
  const r = new Request({
    method: w.method,
    scheme: w.scheme,
    host: w.host,
    port: w.port,
    path: w.path,
    authority: w.authority,
    httpVersion: w.httpVersion,
    headers: new Headers(w.headers),
    rawContent: bodyIn(w),
    trailers: w.trailers ? new Headers(w.trailers) : null,
    timestampStart: w.timestampStart,
    timestampEnd: w.timestampEnd,
  });
  r.stream = w.stream;
  return r;
}

/** Build a Response from the wire. */
export function responseIn(w: WireResponse): Response {
  const r = new Response({
    statusCode: w.statusCode,
    reason: w.reason,
    httpVersion: w.httpVersion,
    headers: new Headers(w.headers),
    rawContent: bodyIn(w),
    trailers: w.trailers ? new Headers(w.trailers) : null,
    timestampStart: w.timestampStart,
    timestampEnd: w.timestampEnd,
  });
  r.stream = w.stream;
  return r;
}

/** Build a Client record from the wire. */
export function clientIn(w: WireConn): Client {
  return Object.assign(new Client(), w);
}

/** Build a Server record from the wire. */
export function serverIn(w: WireConn): Server {
  return Object.assign(new Server(), w);
}

/** What the worker keeps to compute a diff after the hooks ran. */
export interface FlowSnapshot {
  wire: WireFlow;
  request: Request;
  requestRaw: Uint8Array | null;
  response: Response | null;
  responseRaw: Uint8Array | null;
}

/** Build the flow a script sees from the wire, plus the snapshot to diff against. */
export function flowIn(w: WireFlow): { flow: HTTPFlow; snapshot: FlowSnapshot } {
  const request = requestIn(w.request);
  const flow = new HTTPFlow(clientIn(w.client), serverIn(w.server), request, w.live);
  flow.id = w.id;
  flow.intercepted = false;
  flow.isReplay = w.isReplay;
  flow.marked = w.marked;
  flow.comment = w.comment;
  flow.metadata = structuredClone(w.metadata);
  flow.timestampCreated = w.timestampCreated;
  flow.error = w.error ? new FlowError(w.error.msg, w.error.timestamp) : null;
  flow.response = w.response ? responseIn(w.response) : null;
  return {
    flow,
    snapshot: {
      wire: w,
      request,
      requestRaw: request.rawContent,
      response: flow.response,
      responseRaw: flow.response?.rawContent ?? null,
    },
  };
}

function streamFlag(m: Message, warnings: string[]): boolean {
  if (typeof m.stream === "function") {
    warnings.push("a stream transformer function cannot cross the sandbox boundary; streaming unmodified");
    return true;
  }
  return m.stream;
}

function messageDiff(
  before: WireMessage,
  m: Message,
  rawBefore: Uint8Array | null,
  transfer: ArrayBuffer[],
  warnings: string[],
): Partial<WireMessage> {
  const d: Partial<WireMessage> = {};
  if (m.httpVersion !== before.httpVersion) d.httpVersion = m.httpVersion;
  if (!pairsEqual(m.headers.fields, before.headers)) d.headers = m.headers.fields;
  const tr = m.trailers ? m.trailers.fields : null;
  if (!pairsEqual(tr, before.trailers)) d.trailers = tr;
  if (m.timestampStart !== before.timestampStart) d.timestampStart = m.timestampStart;
  if (m.timestampEnd !== before.timestampEnd) d.timestampEnd = m.timestampEnd;
  const s = streamFlag(m, warnings);
  if (s !== before.stream) d.stream = s;
  if (m.rawContent !== rawBefore) d.body = ownBuffer(m.rawContent, transfer);
  return d;
}

/** The bytes as an ArrayBuffer that can be transferred (copied only if it is a view into a larger one). */
function ownBuffer(bytes: Uint8Array | null, transfer: ArrayBuffer[]): ArrayBuffer | null {
  if (bytes === null) return null;
  let buf = bytes.buffer as ArrayBuffer;
  if (
    bytes.byteOffset !== 0 || bytes.byteLength !== buf.byteLength || !(buf instanceof ArrayBuffer) ||
    transfer.includes(buf)
  ) {
    buf = copyBytes(bytes);
  }
  transfer.push(buf);
  return buf;
}

function fullMessage<T extends WireMessage>(
  w: T,
  m: Message,
  transfer: ArrayBuffer[],
  warnings: string[],
): T {
  w.stream = streamFlag(m, warnings);
  w.body = ownBuffer(m.rawContent, transfer);
  return w;
}

function connDiff(before: WireConn, c: Connection): WireConn | undefined {
  const now = connOut(c);
  let d: WireConn | undefined;
  for (const k of Object.keys(now)) {
    if (!deepEqual(now[k], before[k])) (d ??= {})[k] = now[k];
  }
  return d;
}

/** The changes the hooks made to `flow` since `snap`. Bodies to move are appended to `transfer`. */
export function flowDiff(flow: HTTPFlow, snap: FlowSnapshot, transfer: ArrayBuffer[]): FlowChanges | null {
  const w = snap.wire;
  const c: FlowChanges = {};
  const warnings: string[] = [];
  let any = false;
  if (flow.request !== snap.request) {
    c.requestReplace = fullMessage(requestOut(flow.request, false, []), flow.request, transfer, warnings);
    any = true;
  } else {
    const r = flow.request;
    const d = messageDiff(w.request, r, snap.requestRaw, transfer, warnings) as Partial<WireRequest>;
    if (r.method !== w.request.method) d.method = r.method;
    if (r.scheme !== w.request.scheme) d.scheme = r.scheme;
    if (r.host !== w.request.host) d.host = r.host;
    if (r.port !== w.request.port) d.port = r.port;
    if (r.path !== w.request.path) d.path = r.path;
    if (r.authority !== w.request.authority) d.authority = r.authority;
    if (Object.keys(d).length) {
      c.request = d;
      any = true;
    }
  }
  if (flow.response !== snap.response) {
    c.responseReplace = flow.response
      ? fullMessage(responseOut(flow.response, false, []), flow.response, transfer, warnings)
      : null;
    any = true;
  } else if (flow.response && w.response) {
    const r = flow.response;
    const d = messageDiff(w.response, r, snap.responseRaw, transfer, warnings) as Partial<WireResponse>;
    if (r.statusCode !== w.response.statusCode) d.statusCode = r.statusCode;
    if (r.reason !== w.response.reason) d.reason = r.reason;
    if (Object.keys(d).length) {
      c.response = d;
      any = true;
    }
  }
  const err = flow.error ? { msg: flow.error.msg, timestamp: flow.error.timestamp } : null;
  if (!deepEqual(err, w.error)) {
    c.error = err;
    any = true;
  }
  if (flow.marked !== w.marked) (c.marked = flow.marked, any = true);
  if (flow.comment !== w.comment) (c.comment = flow.comment, any = true);
  if (flow.intercepted) (c.intercept = true, any = true);
  const md = cloneableMetadata(flow.metadata);
  if (!deepEqual(md, w.metadata)) (c.metadata = md, any = true);
  const cd = connDiff(w.client, flow.clientConn);
  if (cd) (c.client = cd, any = true);
  const sd = connDiff(w.server, flow.serverConn);
  if (sd) (c.server = sd, any = true);
  if (warnings.length) (c.warnings = warnings, any = true);
  return any ? c : null;
}

/** The changes made to a connection record (for client_* / server_* hooks). */
export function connChanges(before: WireConn, c: Connection): WireConn | undefined {
  return connDiff(before, c);
}

// ---------------------------------------------------------------------------------------------------
// proxy side: apply

function applyMessage(m: Message, d: Partial<WireMessage>): void {
  if (d.httpVersion !== undefined) m.httpVersion = d.httpVersion;
  if (d.headers !== undefined) m.headers = new Headers(d.headers);
  if (d.trailers !== undefined) m.trailers = d.trailers ? new Headers(d.trailers) : null;
  if (d.timestampStart !== undefined) m.timestampStart = d.timestampStart;
  if (d.timestampEnd !== undefined) m.timestampEnd = d.timestampEnd;
  if (d.stream !== undefined) m.stream = d.stream;
  if (d.body !== undefined) m.rawContent = d.body === null ? null : new Uint8Array(d.body);
}

/** Apply a connection diff. */
export function applyConn(c: Connection, d: WireConn | undefined): void {
  if (d) Object.assign(c, d);
}

/** Apply the changes a script made to the live flow. */
export function applyFlowChanges(
  flow: HTTPFlow,
  c: FlowChanges,
  sentMetadata: Record<string, unknown>,
): void {
  if (c.requestReplace) {
    flow.request = requestIn(c.requestReplace);
  } else if (c.request) {
    const r = flow.request;
    const d = c.request;
    if (d.method !== undefined) r.method = d.method;
    if (d.scheme !== undefined) r.scheme = d.scheme;
    if (d.host !== undefined) r.host = d.host;
    if (d.port !== undefined) r.port = d.port;
    if (d.path !== undefined) r.path = d.path;
    if (d.authority !== undefined) r.authority = d.authority;
    applyMessage(r, d); // headers last: they already hold any Host change the script made
  }
  if (c.responseReplace !== undefined) {
    flow.response = c.responseReplace ? responseIn(c.responseReplace) : null;
  } else if (c.response && flow.response) {
    const r = flow.response;
    if (c.response.statusCode !== undefined) r.statusCode = c.response.statusCode;
    if (c.response.reason !== undefined) r.reason = c.response.reason;
    applyMessage(r, c.response);
  }
  if (c.marked !== undefined) flow.marked = c.marked;
  if (c.comment !== undefined) flow.comment = c.comment;
  if (c.metadata) {
    for (const k of Object.keys(sentMetadata)) if (!(k in c.metadata)) delete flow.metadata[k];
    Object.assign(flow.metadata, c.metadata);
  }
  applyConn(flow.clientConn, c.client);
  applyConn(flow.serverConn, c.server);
  if (c.error !== undefined) {
    if (c.error && c.error.msg === KILLED_MESSAGE) flow.kill();
    else flow.error = c.error ? new FlowError(c.error.msg, c.error.timestamp) : null;
  }
  if (c.intercept) flow.intercept();
}
