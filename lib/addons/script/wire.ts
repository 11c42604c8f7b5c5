/**
 * The wire format between the proxy and a script worker: what a hook sees of a flow, and the changes a
 * hook made, sent back and applied to the live flow.
 *
 * - Only what the hook can see crosses: `requestheaders`/`responseheaders` get no bodies; `request` gets
 *   the request body; `response` and `error` get both. WebSocket hooks get messages instead (below); TCP
 *   flows have their own shape (tcpwire.ts), built from the parts here.
 * - A flow crosses as one JSON string (plain fields and header pairs: structured clone of many small
 *   objects costs about twice as much) and its bodies. Usually both go through the worker's message
 *   ring in shared memory (ring.ts, {@link flowMessageText}). Otherwise (metadata, which may hold any
 *   cloneable value, or connection records to sync, or no room) by postMessage: the JSON, the cloneable
 *   metadata and one ArrayBuffer holding the bodies back to back, a fresh copy (the proxy's buffers, which
 *   may be views into node's shared Buffer pool, are never sent, transferred or detached), transferred
 *   when large, cloned when small (cheaper, see {@link TRANSFER_MIN}). Empty bodies cost nothing.
 * - Connection records cross once per connection: the proxy keeps, per worker, what it last sent of each
 *   connection ({@link ConnRefs}) and sends a connection again only when it changed; flows name them by a
 *   small key. The worker keeps the records ({@link ConnTable}), so every flow of a connection sees the same
 *   Client/Server object, as in the proxy.
 * - Only changes come back: changed fields, changed header lists, a body only if it was replaced, a new
 *   response only if the script set one. A hook that changes nothing answers `null`.
 * - Metadata values that cannot be structured-cloned (functions, class instances with private state) stay
 *   on the proxy side: the script does not see them and they are never deleted by a script's changes.
 */
import { Client, type Connection, Server } from "../../flow/connection.ts";
import { type Flow, FlowError, HTTPFlow, KILLED_MESSAGE } from "../../flow/flow.ts";
import { Headers } from "../../http/headers.ts";
import { checkStatusCode, type Message, Request, Response } from "../../http/message.ts";
import { WebSocketData, WebSocketMessage } from "../../flow/websocket.ts";
import type { TcpChanges, WireTcpFlow } from "./tcpwire.ts";

const utf8Encoder = new TextEncoder();
const utf8Bytes = (s: string) => utf8Encoder.encode(s);

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
  websocket_start: { request: false, response: false },
  websocket_message: { request: false, response: false },
  websocket_end: { request: false, response: false },
  update: { request: false, response: false },
};

/**
 * WebSocket hooks: which messages cross. `websocket_message` sends only the newest message (the one the
 * hook is about: sending them all would make a long connection quadratic), `websocket_end` sends all of
 * them. Their contents travel back to back in the flow's second body slot (no HTTP bodies are sent then).
 */
const WS_ALL_MESSAGES = new Set(["websocket_end"]);

const NO_BODIES = { request: false, response: false };

/** Hooks whose argument is an HTTP flow. */
export const FLOW_HOOKS = new Set(Object.keys(HOOK_BODIES).filter((h) => h !== "update"));
/** Hooks whose argument is a TCP flow (their wire format: tcpwire.ts). */
export const TCP_HOOKS = new Set(["tcp_start", "tcp_message", "tcp_end", "tcp_error"]);
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
  return FLOW_HOOKS.has(name) || TCP_HOOKS.has(name) || CLIENT_HOOKS.has(name) || SERVER_HOOKS.has(name) ||
    LIFECYCLE_HOOKS.has(name) ||
    name === "update";
}

/** The fields of a message (request or response) on the wire, without its body. */
export interface WireMessageFields {
  httpVersion: string;
  headers: [string, string][];
  trailers: [string, string][] | null;
  timestampStart: number;
  timestampEnd: number | null;
  stream: boolean;
}

/** Request-only fields. */
export interface WireRequestFields {
  method: string;
  scheme: string;
  host: string;
  port: number;
  path: string;
  authority: string;
}

/** Response-only fields. */
export interface WireResponseFields {
  statusCode: number;
  reason: string;
}

/**
 * A message as sent to the worker (inside the flow's JSON). `body`: absent, not sent; null, no body
 * (streamed); a number, the length of its bytes in the flow's body buffer.
 */
export interface WireMessage extends WireMessageFields {
  body?: number | null;
}

/** A request sent to the worker. */
export type WireRequest = WireMessage & WireRequestFields;
/** A response sent to the worker. */
export type WireResponse = WireMessage & WireResponseFields;

/** A whole message coming back (a replaced request or response): its body travels as an ArrayBuffer. */
export interface FullMessage extends WireMessageFields {
  body: ArrayBuffer | null;
}

/** A changed message: changed fields only; `body` if it was replaced. */
export interface MessageChanges extends Partial<WireMessageFields> {
  body?: ArrayBuffer | null;
}

/** A connection record on the wire: its plain fields. */
export type WireConn = Record<string, unknown>;

/** A connection record the worker does not have yet (or that changed): `[key, "c" | "s", fields]`. */
export type ConnUpdate = [number, "c" | "s", WireConn];

/** The fields every flow has on the wire (HTTP and TCP alike). */
export interface WireFlowBase {
  id: string;
  live: boolean;
  isReplay: "request" | "response" | null;
  marked: string;
  comment: string;
  timestampCreated: number;
  error: { msg: string; timestamp: number } | null;
  /** Keys of the connection records. */
  client: number;
  server: number;
}

/** An HTTP flow on the wire (the JSON part of a {@link PackedFlow}). */
export interface WireFlow extends WireFlowBase {
  request: WireRequest;
  response: WireResponse | null;
  /** WebSocket data, for the WebSocket hooks. */
  ws?: WireWebSocket;
}

/** A WebSocket message on the wire; `body`: the length of its content in the flow's second body slot. */
export interface WireWsMessage {
  type: number;
  fromClient: boolean;
  timestamp: number;
  dropped: boolean;
  injected: boolean;
  body: number;
}

/** WebSocket data on the wire: the messages sent, from index `first` of `total`. */
export interface WireWebSocket {
  total: number;
  first: number;
  messages: WireWsMessage[];
  closedByClient: boolean | null;
  closeCode: number | null;
  closeReason: string | null;
  timestampEnd: number | null;
}

/**
 * What a WebSocket hook changed: messages by index (content, type, dropped), and messages to inject. A new
 * content that is valid UTF-8 comes as `text` (then the whole reply can cross as JSON text), else as
 * `content`.
 */
export interface WsChanges {
  messages?: [number, WsMessageChanges][];
  inject?: [toClient: boolean, content: ArrayBuffer, isText: boolean][];
}

/** The changes to one WebSocket message. */
export interface WsMessageChanges {
  content?: ArrayBuffer;
  text?: string;
  type?: number;
  dropped?: boolean;
}

/** Whether WebSocket changes hold no buffers (they can cross as JSON text). */
export function wsChangesPlain(d: WsChanges): boolean {
  if (d.inject) return false;
  for (const [, m] of d.messages ?? []) if (m.content !== undefined) return false;
  return true;
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** `bytes` as text if they are valid UTF-8 (exactly: a BOM is kept), else null. */
function strictText(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

/** Connection records to register or forget before a message is handled. */
export interface ConnSync {
  /** Records the worker does not have yet, or that changed on the proxy side. */
  conns?: ConnUpdate[];
  /** Keys the worker may forget. */
  drop?: number[];
}

/** A flow packed for postMessage. */
export interface PackedFlow {
  /** JSON of a {@link WireFlow} (always set by {@link packFlow}). */
  json?: string;
  /** The flow itself, when the whole message crossed as JSON text (see {@link flowMessageText}). */
  f?: WireFlow | WireTcpFlow;
  /** The cloneable metadata; absent when there is none. */
  md?: Record<string, unknown>;
  /** The bodies sent, back to back (request first); absent when all are empty or not sent. */
  buf?: ArrayBuffer;
  /** Worker side, for a message that came through the ring (see ring.ts): its bodies, copied out. */
  bytes?: Uint8Array;
}

/** What a hook changed. Absent keys: unchanged. */
export interface FlowChanges {
  request?: MessageChanges & Partial<WireRequestFields>;
  /** The script assigned a new Request object. */
  requestReplace?: FullMessage & WireRequestFields;
  response?: MessageChanges & Partial<WireResponseFields>;
  /** The script assigned a new response (or null). */
  responseReplace?: (FullMessage & WireResponseFields) | null;
  error?: { msg: string; timestamp: number } | null;
  marked?: string;
  comment?: string;
  /** The new cloneable metadata (keys absent here but sent before were deleted). */
  metadata?: Record<string, unknown>;
  intercept?: boolean;
  client?: WireConn;
  server?: WireConn;
  ws?: WsChanges;
  tcp?: TcpChanges;
  /** Warnings to log on the proxy side. */
  warnings?: string[];
}

// ---------------------------------------------------------------------------------------------------
// structured-clone safety, equality, copies

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

/** {@link deepEqual} with a fast path for the primitives and small arrays connection records hold. */
function plainEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || a === null) return Object.is(a, b);
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!plainEqual(a[i], b[i])) return false;
    return true;
  }
  return deepEqual(a, b);
}

/** An independent copy of cloneable data (primitives as they are). */
function copyPlain<T>(v: T): T {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(copyPlain) as T;
  return structuredClone(v);
}

function pairsEqual(a: [string, string][] | null, b: [string, string][] | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false;
  return true;
}

function copyPairs(p: [string, string][]): [string, string][] {
  const out = new Array<[string, string]>(p.length);
  for (let i = 0; i < p.length; i++) out[i] = [p[i][0], p[i][1]];
  return out;
}

function headersOf(pairs: [string, string][]): Headers {
  return Headers.adopt(copyPairs(pairs));
}

// ---------------------------------------------------------------------------------------------------
// connection records

/** A connection record's plain fields. */
export function connOut(c: Connection): WireConn {
  const o: WireConn = {};
  for (const k of Object.keys(c)) {
    const v = (c as unknown as Record<string, unknown>)[k];
    if (typeof v !== "function" && cloneable(v)) o[k] = v;
  }
  return o;
}

/**
 * Whether `c` still has the fields recorded in `r` (what the worker has). The fast path compares values
 * in key order against copies taken when they were sent; anything unusual falls back to a full compare.
 */
function connMatches(c: Connection, r: ConnRef): boolean {
  const rec = c as unknown as Record<string, unknown>;
  const seen = r.keys;
  const vals = r.vals;
  // for-in walks the same own keys in the same order as Object.keys, without allocating an array
  let i = 0;
  for (const k in rec) {
    if (k !== seen[i]) return connMatchesSlow(rec, r);
    const v = rec[k];
    const s = vals[i++];
    if (v === s) continue;
    if (typeof v !== "object" || v === null || !plainEqual(v, s)) return false;
  }
  return i === seen.length || connMatchesSlow(rec, r);
}

/** {@link connMatches} when keys were added, removed or reordered. */
function connMatchesSlow(rec: Record<string, unknown>, r: ConnRef): boolean {
  let n = 0;
  for (const k of Object.keys(rec)) {
    const v = rec[k];
    if (typeof v === "function") continue;
    if (!(k in r.snap)) {
      if (cloneable(v)) return false;
      continue;
    }
    n++;
    if (!plainEqual(v, r.snap[k])) return false;
  }
  return n === Object.keys(r.snap).length;
}

/** Record that `c` now has the fields of `d` (copied, so later in-place changes are noticed). */
function recordFields(snap: WireConn, d: WireConn): void {
  for (const k of Object.keys(d)) snap[k] = copyPlain(d[k]);
}

interface ConnRef {
  key: number;
  /** The fields the worker has. */
  snap: WireConn;
  /** The record's own keys when it was sent, and copies of their values (functions as they are). */
  keys: string[];
  vals: unknown[];
}

/** Note what the worker has of `c` now. */
function remember(r: ConnRef, c: Connection): void {
  const rec = c as unknown as Record<string, unknown>;
  r.keys = Object.keys(rec);
  r.vals = r.keys.map((k) => {
    const v = rec[k];
    return typeof v === "function" || !cloneable(v) ? v : copyPlain(v);
  });
}

/**
 * Proxy side, one per worker: which connection records the worker has, under which key. A record is sent
 * the first time a hook sees it, and again whenever its fields differ from what was sent. At most
 * `capacity` records are remembered (least recently used forgotten first; the worker is told to forget
 * them with the next message).
 */
export class ConnRefs {
  #refs = new WeakMap<Connection, ConnRef>();
  #lru = new Map<number, Connection>();
  #drop: number[] = [];
  #nextKey = 1;

  constructor(readonly capacity = 512) {}

  /** The key of `c` in the worker; its fields are appended to `sync.conns` if the worker needs them. */
  ref(c: Connection, sync: ConnSync): number {
    let r = this.#refs.get(c);
    if (r) {
      if (this.#lru.size > 1) {
        this.#lru.delete(r.key);
        this.#lru.set(r.key, c);
      }
      if (connMatches(c, r)) return r.key;
    } else {
      r = { key: this.#nextKey++, snap: {}, keys: [], vals: [] };
      this.#refs.set(c, r);
      this.#lru.set(r.key, c);
      if (this.#lru.size > this.capacity) {
        for (const [key, old] of this.#lru) {
          if (key === r.key) continue;
          this.#lru.delete(key);
          this.#refs.delete(old);
          this.#drop.push(key);
          break;
        }
      }
    }
    const fields = connOut(c);
    r.snap = {};
    recordFields(r.snap, fields);
    remember(r, c);
    (sync.conns ??= []).push([r.key, c instanceof Server ? "s" : "c", fields]);
    return r.key;
  }

  /** Keys to forget, added to `sync` (once). */
  flushDrops(sync: ConnSync): void {
    if (!this.#drop.length) return;
    sync.drop = this.#drop;
    this.#drop = [];
  }

  /** Apply a worker's changes to `c` (the worker has them already). */
  apply(c: Connection, d: WireConn | undefined): void {
    if (!d) return;
    Object.assign(c, d);
    const r = this.#refs.get(c);
    if (r) {
      recordFields(r.snap, d);
      remember(r, c);
    }
  }

  /** Forget every record (the worker is told to drop them with the next message). */
  clear(): void {
    for (const [key, c] of this.#lru) {
      this.#refs.delete(c);
      this.#drop.push(key);
    }
    this.#lru.clear();
  }

  /** How many records are remembered. */
  get size(): number {
    return this.#lru.size;
  }
}

/** A connection record inside the worker, with the fields the proxy has (to diff against). */
export interface ConnEntry {
  conn: Client | Server;
  snap: WireConn;
}

/** Worker side: the connection records the proxy sent, by key. */
export class ConnTable {
  #entries = new Map<number, ConnEntry>();

  /** Register or refresh records and forget dropped ones. */
  sync(s: ConnSync): void {
    if (s.drop) { for (const k of s.drop) this.#entries.delete(k); }
    if (!s.conns) return;
    for (const [key, kind, fields] of s.conns) {
      let e = this.#entries.get(key);
      if (!e) {
        e = { conn: kind === "s" ? new Server() : new Client(), snap: fields };
        this.#entries.set(key, e);
      }
      e.snap = fields;
      const rec = e.conn as unknown as Record<string, unknown>;
      for (const k of Object.keys(fields)) rec[k] = copyPlain(fields[k]);
    }
  }

  /** The record under `key`. */
  get(key: number): ConnEntry {
    const e = this.#entries.get(key);
    if (!e) throw new Error(`unknown connection record ${key}`);
    return e;
  }

  /** How many records are kept. */
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * The changes a hook made to a connection record since the proxy's version; from now on they count as
 * the proxy's version (the reply carries them).
 */
export function connChanges(e: ConnEntry): WireConn | undefined {
  const rec = e.conn as unknown as Record<string, unknown>;
  let d: WireConn | undefined;
  for (const k of Object.keys(rec)) {
    const v = rec[k];
    if (typeof v === "function" || plainEqual(v, e.snap[k]) || !cloneable(v)) continue;
    (d ??= {})[k] = v;
  }
  if (d) recordFields(e.snap, d);
  return d;
}

/**
 * The script assigned another record to the flow: the proxy keeps its own record and takes the fields
 * that differ (as mitmproxy would see them on the flow); the worker's record follows, as the proxy's will.
 */
function replacedConnChanges(e: ConnEntry, c: Connection): WireConn | undefined {
  const now = connOut(c);
  let d: WireConn | undefined;
  for (const k of Object.keys(now)) if (!plainEqual(now[k], e.snap[k])) (d ??= {})[k] = now[k];
  if (d) {
    recordFields(e.snap, d);
    const rec = e.conn as unknown as Record<string, unknown>;
    for (const k of Object.keys(d)) rec[k] = copyPlain(d[k]);
  }
  return d;
}

/** Undo a hook's changes to a connection record (the hook failed: the proxy gets none of them). */
export function discardConnChanges(e: ConnEntry): void {
  const rec = e.conn as unknown as Record<string, unknown>;
  for (const k of Object.keys(rec)) {
    if (!(k in e.snap) && typeof rec[k] !== "function" && cloneable(rec[k])) delete rec[k];
  }
  for (const k of Object.keys(e.snap)) {
    if (!plainEqual(rec[k], e.snap[k])) rec[k] = copyPlain(e.snap[k]);
  }
}

// ---------------------------------------------------------------------------------------------------
// proxy side: flow -> wire

/**
 * A copy of `bytes` in a fresh ArrayBuffer. Not `bytes.slice()`: for a node `Buffer` (what node:net
 * sockets deliver) `slice` is a view into a shared pool, and transferring that pool would detach it.
 */
export function copyBytes(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}

function messageOut(m: Message): WireMessage {
  return {
    httpVersion: m.httpVersion,
    headers: m.headers.fields,
    trailers: m.trailers ? m.trailers.fields : null,
    timestampStart: m.timestampStart,
    timestampEnd: m.timestampEnd,
    stream: m.stream !== false,
  };
}

/** A request's fields (no body). */
export function requestOut(r: Request): WireRequest {
  const w = messageOut(r) as WireRequest;
  w.method = r.method;
  w.scheme = r.scheme;
  w.host = r.host;
  w.port = r.port;
  w.path = r.path;
  w.authority = r.authority;
  return w;
}

/** A response's fields (no body). */
export function responseOut(r: Response): WireResponse {
  const w = messageOut(r) as WireResponse;
  w.statusCode = r.statusCode;
  w.reason = r.reason;
  return w;
}

/** What {@link packFlow} produced. */
export interface Packed {
  packed: PackedFlow;
  /** The metadata sent (to tell which keys a script deleted). */
  metadata: Record<string, unknown>;
  /** The bodies the hook sees (null: none or not sent), for {@link attachBodies} or the ring. */
  reqBody: Uint8Array | null;
  respBody: Uint8Array | null;
  /** TCP flows: the index of the first message sent (the script may change only those it saw). */
  first?: number;
  /** HTTP flows: the flow as sent (its header lists are the live ones: copy them to keep them). */
  wire?: WireFlow;
}

/**
 * Bodies up to this size are copied by postMessage's structured clone instead of transferred: moving a
 * backing store costs more than copying a few KiB (measured in Deno 2.x, 1 KiB: ~2 µs less per message on
 * the sending side; 16 KiB: transfer ~2.6 µs cheaper).
 */
export const TRANSFER_MIN = 4096;

/** @internal The metadata of a flow that has none. */
export const EMPTY_METADATA: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/**
 * Pack `flow` as `event` sees it, for the worker behind `refs`: connection records it lacks go into
 * `sync`; the bodies go into `packed.buf` (see {@link attachBodies}) unless `copyBodies` is false (the
 * caller sends them another way, or attaches them later).
 */
export function packFlow(
  flow: HTTPFlow,
  event: string,
  refs: ConnRefs,
  sync: ConnSync,
  transfer: Transferable[],
  copyBodies = true,
): Packed {
  const bodies = HOOK_BODIES[event] ?? NO_BODIES;
  const request = requestOut(flow.request);
  const response = flow.response ? responseOut(flow.response) : null;
  const reqBody = bodies.request ? flow.request.rawContent : null;
  let respBody = bodies.response && flow.response ? flow.response.rawContent : null;
  let ws: WireWebSocket | undefined;
  if (flow.websocket && event.startsWith("websocket_")) {
    const out = wsOut(flow.websocket, event);
    ws = out.ws;
    respBody = out.body;
  }
  if (bodies.request) request.body = reqBody ? reqBody.byteLength : null;
  if (bodies.response && response) response.body = respBody ? respBody.byteLength : null;
  const wire: WireFlow = {
    id: flow.id,
    live: flow.live,
    isReplay: flow.isReplay,
    marked: flow.marked,
    comment: flow.comment,
    timestampCreated: flow.timestampCreated,
    error: flow.error ? { msg: flow.error.msg, timestamp: flow.error.timestamp } : null,
    request,
    response,
    client: refs.ref(flow.clientConn, sync),
    server: refs.ref(flow.serverConn, sync),
  };
  if (ws) wire.ws = ws;
  const packed: PackedFlow = { json: JSON.stringify(wire) };
  let metadata = EMPTY_METADATA;
  for (const _ in flow.metadata) {
    metadata = cloneableMetadata(flow.metadata);
    packed.md = metadata;
    break;
  }
  const out: Packed = { packed, metadata, reqBody, respBody, wire };
  if (copyBodies) attachBodies(out, transfer);
  return out;
}

/**
 * The WebSocket part of a flow as `event` sees it: the messages it gets (the newest for
 * `websocket_message`, all for `websocket_end`) and their contents back to back (null: none).
 */
export function wsOut(d: WebSocketData, event: string): { ws: WireWebSocket; body: Uint8Array | null } {
  const all = d.messages;
  const first = WS_ALL_MESSAGES.has(event) ? 0 : Math.max(0, all.length - 1);
  const sent = first === 0 ? all : all.slice(first);
  const messages = new Array<WireWsMessage>(sent.length);
  for (let i = 0; i < sent.length; i++) {
    const m = sent[i];
    messages[i] = {
      type: m.type,
      fromClient: m.fromClient,
      timestamp: m.timestamp,
      dropped: m.dropped,
      injected: m.injected,
      body: m.content.byteLength,
    };
  }
  const ws: WireWebSocket = {
    total: all.length,
    first,
    messages,
    closedByClient: d.closedByClient,
    closeCode: d.closeCode,
    closeReason: d.closeReason,
    timestampEnd: d.timestampEnd,
  };
  const body = sent.length === 1
    ? sent[0].content
    : sent.length
    ? concatBytes(sent.map((m) => m.content))
    : null;
  return { ws, body };
}

/**
 * Put the bodies of a packed flow into `packed.buf`: one fresh buffer for both, a standalone copy (never
 * a view into node's pool, whose transfer would detach it), listed in `transfer` when large.
 */
export function attachBodies(p: Packed, transfer: Transferable[]): void {
  const { reqBody, respBody } = p;
  const total = (reqBody?.byteLength ?? 0) + (respBody?.byteLength ?? 0);
  if (total === 0) return;
  const buf = new Uint8Array(total);
  if (reqBody) buf.set(reqBody, 0);
  if (respBody) buf.set(respBody, reqBody?.byteLength ?? 0);
  p.packed.buf = buf.buffer;
  if (total >= TRANSFER_MIN) transfer.push(buf.buffer);
}

/**
 * The JSON text of a flow message (`{ t: "flow", id, event, f }`, bodies not included) when it can
 * cross as text: no metadata and no connection records to sync (those need structured clone). Null
 * otherwise. `event` is a hook name (an identifier: no escaping needed).
 */
export function flowMessageText(
  id: number,
  event: string,
  p: PackedFlow,
  sync: ConnSync,
  cache?: { k?: number; kd?: number[] },
): string | null {
  if (p.md || sync.conns || sync.drop) return null;
  let more = "";
  if (cache?.k !== undefined) more += `,"k":${cache.k}`;
  if (cache?.kd) more += `,"kd":[${cache.kd.join(",")}]`;
  return `{"t":"flow","id":${id},"event":"${event}"${more},"f":${p.json}}`;
}

// ---------------------------------------------------------------------------------------------------
// worker side: wire -> objects, and the diff

function bodyIn(
  len: number | null | undefined,
  bytes: Uint8Array | undefined,
  offset: number,
): Uint8Array | null {
  if (len === null || len === undefined) return null;
  if (len === 0 || !bytes) return new Uint8Array(0);
  return bytes.subarray(offset, offset + len);
}

/** Build a Request from the wire (`rawContent` given separately). */
export function requestIn(w: WireMessageFields & WireRequestFields, rawContent: Uint8Array | null): Request {
  const r = new Request({
    method: w.method,
    scheme: w.scheme,
    host: w.host,
    port: w.port,
    path: w.path,
    authority: w.authority,
    httpVersion: w.httpVersion,
    rawContent,
    trailers: w.trailers ? headersOf(w.trailers) : null,
    timestampStart: w.timestampStart,
    timestampEnd: w.timestampEnd,
  });
  r.headers.fields = copyPairs(w.headers);
  r.stream = w.stream;
  return r;
}

/** Build a Response from the wire (`rawContent` given separately). */
export function responseIn(
  w: WireMessageFields & WireResponseFields,
  rawContent: Uint8Array | null,
): Response {
  const r = new Response({
    statusCode: w.statusCode,
    reason: w.reason,
    httpVersion: w.httpVersion,
    rawContent,
    trailers: w.trailers ? headersOf(w.trailers) : null,
    timestampStart: w.timestampStart,
    timestampEnd: w.timestampEnd,
  });
  r.headers.fields = copyPairs(w.headers);
  r.stream = w.stream;
  return r;
}

/** What the worker keeps to compute a diff after the hooks ran. */
export interface FlowSnapshot {
  wire: WireFlow;
  /** The metadata sent (null: none). */
  metadata: Record<string, unknown> | null;
  request: Request;
  requestRaw: Uint8Array | null;
  response: Response | null;
  responseRaw: Uint8Array | null;
  client: ConnEntry;
  server: ConnEntry;
  /** The WebSocket messages sent, with their contents as sent (to find what the script changed). */
  ws?: { first: number; messages: WebSocketMessage[]; contents: Uint8Array[]; types: number[] };
}

/** Messages a script injected during a hook, per worker-side flow. */
const wsInjected = new WeakMap<HTTPFlow, NonNullable<WsChanges["inject"]>>();

/** @internal `len` bytes of `bytes` from `off` (a view). */
export function bytesAt(bytes: Uint8Array | undefined, off: number, len: number): Uint8Array {
  if (!len || !bytes) return new Uint8Array(0);
  return bytes.subarray(off, off + len);
}

/** @internal The parts back to back, in a fresh buffer. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** @internal Whether both hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Build the flow a script sees from a packed flow, plus the snapshot to diff against. */
export function unpackFlow(p: PackedFlow, table: ConnTable): { flow: HTTPFlow; snapshot: FlowSnapshot } {
  const w = (p.f ?? JSON.parse(p.json!)) as WireFlow;
  const reqLen = w.request.body;
  const bytes = p.bytes ?? (p.buf ? new Uint8Array(p.buf) : undefined);
  const request = requestIn(w.request, bodyIn(reqLen, bytes, 0));
  const client = table.get(w.client);
  const server = table.get(w.server);
  const flow = new HTTPFlow(client.conn as Client, server.conn as Server, request, w.live);
  flow.id = w.id;
  flow.intercepted = false;
  flow.isReplay = w.isReplay;
  flow.marked = w.marked;
  flow.comment = w.comment;
  // the message's copy stays the snapshot; the script gets its own
  flow.metadata = p.md ? structuredClone(p.md) : {};
  flow.timestampCreated = w.timestampCreated;
  flow.error = w.error ? new FlowError(w.error.msg, w.error.timestamp) : null;
  flow.response = w.response ? responseIn(w.response, bodyIn(w.response.body, bytes, reqLen ?? 0)) : null;
  const snapshot: FlowSnapshot = {
    wire: w,
    metadata: p.md ?? null,
    request,
    requestRaw: request.rawContent,
    response: flow.response,
    responseRaw: flow.response?.rawContent ?? null,
    client,
    server,
  };
  if (w.ws) {
    flow.websocket = new WebSocketData();
    snapshot.ws = wsIn(flow, w.live, w.ws, bytes, reqLen ?? 0);
  }
  return { flow, snapshot };
}

/**
 * Worker side: give `flow.websocket` (an existing one: a cached flow, see wsflows.ts) the WebSocket part
 * of a message, the contents from `bytes` at `off`; returns what the diff compares against.
 */
export function wsIn(
  flow: HTTPFlow,
  live: boolean,
  w: WireWebSocket,
  bytes: Uint8Array | undefined,
  off: number,
): NonNullable<FlowSnapshot["ws"]> {
  const d = flow.websocket!;
  const sent = new Array<WebSocketMessage>(w.messages.length);
  const contents = new Array<Uint8Array>(sent.length);
  const types = new Array<number>(sent.length);
  for (let i = 0; i < sent.length; i++) {
    const m = w.messages[i];
    const content = contents[i] = bytesAt(bytes, off, m.body);
    off += m.body;
    types[i] = m.type;
    sent[i] = new WebSocketMessage(m.type, m.fromClient, content, m.timestamp, m.dropped, m.injected);
  }
  d.messages = sent.slice();
  d.closedByClient = w.closedByClient;
  d.closeCode = w.closeCode;
  d.closeReason = w.closeReason;
  d.timestampEnd = w.timestampEnd;
  const injected: NonNullable<WsChanges["inject"]> = [];
  d.setInjector(
    live && w.timestampEnd === null
      ? (m) => injected.push([!m.fromClient, copyBytes(m.content), m.isText])
      : null,
  );
  wsInjected.set(flow, injected);
  return { first: w.first, messages: sent, contents, types };
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
): MessageChanges | null {
  let d: MessageChanges | null = null;
  if (m.httpVersion !== before.httpVersion) (d ??= {}).httpVersion = m.httpVersion;
  if (!pairsEqual(m.headers.fields, before.headers)) (d ??= {}).headers = m.headers.fields;
  const tr = m.trailers ? m.trailers.fields : null;
  if (!pairsEqual(tr, before.trailers)) (d ??= {}).trailers = tr;
  if (m.timestampStart !== before.timestampStart) (d ??= {}).timestampStart = m.timestampStart;
  if (m.timestampEnd !== before.timestampEnd) (d ??= {}).timestampEnd = m.timestampEnd;
  if (m.stream !== before.stream) {
    const s = streamFlag(m, warnings);
    if (s !== before.stream) (d ??= {}).stream = s;
  }
  if (m.rawContent !== rawBefore) (d ??= {}).body = ownBuffer(m.rawContent, transfer);
  return d;
}

/**
 * The bytes as an ArrayBuffer of their own (copied only if they are a view into a larger one: cloning or
 * transferring a view's buffer would send all of it), transferred if large.
 */
export function ownBuffer(bytes: Uint8Array | null, transfer: ArrayBuffer[]): ArrayBuffer | null {
  if (bytes === null) return null;
  let buf = bytes.buffer as ArrayBuffer;
  if (
    bytes.byteOffset !== 0 || bytes.byteLength !== buf.byteLength || !(buf instanceof ArrayBuffer) ||
    transfer.includes(buf)
  ) {
    buf = copyBytes(bytes);
  }
  if (buf.byteLength >= TRANSFER_MIN) transfer.push(buf);
  return buf;
}

function fullMessage<T extends WireMessage>(
  w: T,
  m: Message,
  transfer: ArrayBuffer[],
  warnings: string[],
): Omit<T, "body"> & FullMessage {
  const f = w as unknown as Omit<T, "body"> & FullMessage;
  f.stream = streamFlag(m, warnings);
  f.body = ownBuffer(m.rawContent, transfer);
  return f;
}

/** What every flow type's snapshot has: the fields all flows share, as sent. */
export interface BaseSnapshot {
  wire: { error: { msg: string; timestamp: number } | null; marked: string; comment: string };
  metadata: Record<string, unknown> | null;
  client: ConnEntry;
  server: ConnEntry;
}

/**
 * @internal The changes to the fields every flow has (error or kill, marker, comment, interception,
 * metadata, connection records), added to `c`.
 */
export function baseDiff(flow: Flow, snap: BaseSnapshot, c: FlowChanges | null): FlowChanges | null {
  const w = snap.wire;
  const e = flow.error;
  if (e ? !w.error || e.msg !== w.error.msg || e.timestamp !== w.error.timestamp : w.error) {
    (c ??= {}).error = e ? { msg: e.msg, timestamp: e.timestamp } : null;
  }
  if (flow.marked !== w.marked) (c ??= {}).marked = flow.marked;
  if (flow.comment !== w.comment) (c ??= {}).comment = flow.comment;
  if (flow.intercepted) (c ??= {}).intercept = true;
  const md = cloneableMetadata(flow.metadata);
  if (!deepEqual(md, snap.metadata ?? EMPTY_METADATA)) (c ??= {}).metadata = md;
  const cd = flow.clientConn === snap.client.conn
    ? connChanges(snap.client)
    : replacedConnChanges(snap.client, flow.clientConn);
  if (cd) (c ??= {}).client = cd;
  const sd = flow.serverConn === snap.server.conn
    ? connChanges(snap.server)
    : replacedConnChanges(snap.server, flow.serverConn);
  if (sd) (c ??= {}).server = sd;
  return c;
}

/** The changes the hooks made to `flow` since `snap`. Bodies to move are appended to `transfer`. */
export function flowDiff(flow: HTTPFlow, snap: FlowSnapshot, transfer: ArrayBuffer[]): FlowChanges | null {
  const w = snap.wire;
  let c: FlowChanges | null = null;
  const warnings: string[] = [];
  if (flow.request !== snap.request) {
    (c ??= {}).requestReplace = fullMessage(requestOut(flow.request), flow.request, transfer, warnings);
  } else {
    const r = flow.request;
    const b = w.request;
    let d = messageDiff(b, r, snap.requestRaw, transfer, warnings) as FlowChanges["request"] | null;
    if (r.method !== b.method) (d ??= {}).method = r.method;
    if (r.scheme !== b.scheme) (d ??= {}).scheme = r.scheme;
    if (r.host !== b.host) (d ??= {}).host = r.host;
    if (r.port !== b.port) (d ??= {}).port = r.port;
    if (r.path !== b.path) (d ??= {}).path = r.path;
    if (r.authority !== b.authority) (d ??= {}).authority = r.authority;
    if (d) (c ??= {}).request = d;
  }
  if (flow.response !== snap.response) {
    (c ??= {}).responseReplace = flow.response
      ? fullMessage(responseOut(flow.response), flow.response, transfer, warnings)
      : null;
  } else if (flow.response && w.response) {
    const r = flow.response;
    let d = messageDiff(w.response, r, snap.responseRaw, transfer, warnings) as
      | FlowChanges["response"]
      | null;
    if (r.statusCode !== w.response.statusCode) (d ??= {}).statusCode = r.statusCode;
    if (r.reason !== w.response.reason) (d ??= {}).reason = r.reason;
    if (d) (c ??= {}).response = d;
  }
  c = baseDiff(flow, snap, c);
  if (snap.ws) {
    const d: WsChanges = {};
    const sw = snap.ws;
    sw.messages.forEach((m, i) => {
      let mc: WsMessageChanges | null = null;
      const content = m.content instanceof Uint8Array ? m.content : utf8Bytes(String(m.content));
      if (!bytesEqual(content, sw.contents[i])) {
        const text = m.type === 1 ? strictText(content) : null;
        if (text !== null) (mc ??= {}).text = text;
        else (mc ??= {}).content = copyBytes(content);
      }
      if (m.type !== sw.types[i]) (mc ??= {}).type = m.type;
      if (m.dropped) (mc ??= {}).dropped = true;
      if (mc) (d.messages ??= []).push([sw.first + i, mc]);
    });
    const inj = wsInjected.get(flow);
    if (inj?.length) d.inject = inj;
    if (d.messages || d.inject) (c ??= {}).ws = d;
  }
  if (warnings.length) (c ??= {}).warnings = warnings;
  // one buffer for both bodies (the script assigned one to the other): the proxy gets two
  const rb = c?.request?.body ?? c?.requestReplace?.body;
  const sb = c?.response?.body ?? c?.responseReplace?.body;
  if (rb && rb === sb && !transfer.includes(rb)) {
    const copy = copyBytes(new Uint8Array(rb));
    if (c!.response) c!.response.body = copy;
    else c!.responseReplace!.body = copy;
  }
  return c;
}

/** The hooks failed: forget their changes to the connection records (the flow goes on unchanged). */
export function discardFlowChanges(snap: BaseSnapshot): void {
  discardConnChanges(snap.client);
  discardConnChanges(snap.server);
}

// ---------------------------------------------------------------------------------------------------
// proxy side: apply

function applyMessage(m: Message, d: MessageChanges): void {
  if (d.httpVersion !== undefined) m.httpVersion = d.httpVersion;
  // the pairs came through postMessage: fresh arrays, owned from now on
  if (d.headers !== undefined) (m.headers = new Headers()).fields = d.headers;
  if (d.trailers !== undefined) m.trailers = d.trailers ? (new Headers(d.trailers)) : null;
  if (d.timestampStart !== undefined) m.timestampStart = d.timestampStart;
  if (d.timestampEnd !== undefined) m.timestampEnd = d.timestampEnd;
  if (d.stream !== undefined) m.stream = d.stream;
  if (d.body !== undefined) m.rawContent = d.body === null ? null : new Uint8Array(d.body);
}

function bodyOf(b: ArrayBuffer | null): Uint8Array | null {
  return b === null ? null : new Uint8Array(b);
}

/** @internal Refuse a value no script could have produced: throws a TypeError naming it. */
export function bad(what: string, v: unknown): never {
  throw new TypeError(`invalid ${what} ${JSON.stringify(v)?.slice(0, 80)}`);
}

/**
 * @internal Refuse changes to the fields every flow has that the API could not have made: a marker or
 * comment that is not a string, an error without a string message and a numeric timestamp, metadata that
 * is not an object.
 */
export function checkBaseChanges(c: FlowChanges): void {
  if (c === null || typeof c !== "object") bad("changes", c);
  if (c.marked !== undefined && typeof c.marked !== "string") bad("marker", c.marked);
  if (c.comment !== undefined && typeof c.comment !== "string") bad("comment", c.comment);
  const e = c.error;
  if (e !== undefined && e !== null) {
    if (typeof e !== "object" || typeof e.msg !== "string" || typeof e.timestamp !== "number") {
      bad("error", e);
    }
  }
  if (c.metadata !== undefined && (c.metadata === null || typeof c.metadata !== "object")) {
    bad("metadata", "?");
  }
}

/**
 * @internal Apply changes to the fields every flow has (checked by {@link checkBaseChanges}), except
 * interception, which goes last.
 */
export function applyBaseChanges(
  flow: Flow,
  c: FlowChanges,
  sentMetadata: Record<string, unknown>,
  refs: ConnRefs,
): void {
  if (c.marked !== undefined) flow.marked = c.marked;
  if (c.comment !== undefined) flow.comment = c.comment;
  if (c.metadata) {
    for (const k of Object.keys(sentMetadata)) if (!(k in c.metadata)) delete flow.metadata[k];
    Object.assign(flow.metadata, c.metadata);
  }
  refs.apply(flow.clientConn, c.client);
  refs.apply(flow.serverConn, c.server);
  if (c.error !== undefined) {
    if (c.error && c.error.msg === KILLED_MESSAGE) flow.kill();
    else flow.error = c.error ? new FlowError(c.error.msg, c.error.timestamp) : null;
  }
}

/**
 * Refuse changes no script could have made through the API (the worker is untrusted: its runtime can be
 * subverted), before any is applied: a status code outside 100–999, a port outside 0–65535, a method, host
 * or path that is not a string.
 */
function checkChanges(c: FlowChanges): void {
  checkBaseChanges(c);
  for (const r of [c.response, c.responseReplace]) {
    if (r && r.statusCode !== undefined) checkStatusCode(r.statusCode);
  }
  if (c.ws !== undefined && (c.ws === null || typeof c.ws !== "object")) bad("WebSocket changes", "?");
  for (const [i, m] of c.ws?.messages ?? []) {
    if (!Number.isInteger(i) || i < 0) bad("WebSocket message index", i);
    if (m.type !== undefined && m.type !== 1 && m.type !== 2) bad("WebSocket message type", m.type);
    if (m.content !== undefined && !(m.content instanceof ArrayBuffer)) bad("WebSocket message content", "?");
    if (m.text !== undefined && typeof m.text !== "string") bad("WebSocket message text", "?");
  }
  for (const x of c.ws?.inject ?? []) {
    if (!Array.isArray(x) || !(x[1] instanceof ArrayBuffer)) bad("WebSocket injection", "?");
  }
  for (const r of [c.request, c.requestReplace]) {
    if (!r) continue;
    for (const k of ["method", "scheme", "host", "path", "authority"] as const) {
      if (r[k] !== undefined && typeof r[k] !== "string") bad(k, r[k]);
    }
    if (r.port !== undefined && !(Number.isInteger(r.port) && r.port >= 0 && r.port <= 65535)) {
      bad("port", r.port);
    }
  }
}

/**
 * Apply the changes a script made to the live flow (connection records through `refs`). Throws, changing
 * nothing, for values the API would have refused.
 */
export function applyFlowChanges(
  flow: HTTPFlow,
  c: FlowChanges,
  sentMetadata: Record<string, unknown>,
  refs: ConnRefs,
): void {
  checkChanges(c);
  if (c.requestReplace) {
    flow.request = requestIn(c.requestReplace, bodyOf(c.requestReplace.body));
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
    flow.response = c.responseReplace ? responseIn(c.responseReplace, bodyOf(c.responseReplace.body)) : null;
  } else if (c.response && flow.response) {
    const r = flow.response;
    if (c.response.statusCode !== undefined) r.statusCode = c.response.statusCode;
    if (c.response.reason !== undefined) r.reason = c.response.reason;
    applyMessage(r, c.response);
  }
  applyBaseChanges(flow, c, sentMetadata, refs);
  if (c.ws && flow.websocket) {
    const msgs = flow.websocket.messages;
    for (const [i, m] of c.ws.messages ?? []) {
      const target = msgs[i];
      if (!target) continue;
      if (m.content !== undefined) target.content = new Uint8Array(m.content);
      else if (m.text !== undefined) target.content = utf8Bytes(m.text);
      if (m.type !== undefined) target.type = m.type;
      if (m.dropped) target.drop();
    }
    for (const [toClient, content, isText] of c.ws.inject ?? []) {
      flow.websocket.inject(!!toClient, new Uint8Array(content), !!isText);
    }
  }
  if (c.intercept) flow.intercept();
}
