/**
 * A flow as the store keeps it: a compact JSON record of everything but the bodies, which are kept apart
 * (written once, read when asked for). Building and parsing a record costs a few microseconds, a tenth of
 * the flow file's tnetstring state, because headers and other binary strings stay strings (JSON holds
 * latin1 text as is).
 *
 * @module
 */
import { Headers } from "../http/headers.ts";
import { Request, Response } from "../http/message.ts";
import { type Address, Client, type Connection, Server } from "../flow/connection.ts";
import { FlowError, HTTPFlow } from "../flow/flow.ts";
import { WebSocketData } from "../flow/websocket.ts";

/** Record format version (stored with each record). */
export const RECORD_VERSION = 1;

/** A connection's fields. */
export interface ConnRecord {
  id: string;
  peername: Address | null;
  sockname: Address | null;
  transportProtocol: "tcp" | "udp";
  error: string | null;
  tls: boolean;
  certificateList: string[];
  alpn: string | null;
  alpnOffers: string[];
  cipher: string | null;
  cipherList: string[];
  tlsVersion: string | null;
  sni: string | null;
  timestampStart: number | null;
  timestampEnd: number | null;
  timestampTlsSetup: number | null;
  proxyMode?: string;
  mitmcert?: string | null;
  address?: Address | null;
  timestampTcpSetup?: number | null;
  via?: [string, Address] | null;
}

/** A message's fields; `body` tells whether a body was kept (false: `rawContent` null, e.g. streamed). */
export interface MessageRecord {
  httpVersion: string;
  headers: [string, string][];
  trailers: [string, string][] | null;
  timestampStart: number;
  timestampEnd: number | null;
  body: boolean;
  method?: string;
  scheme?: string;
  host?: string;
  port?: number;
  path?: string;
  authority?: string;
  statusCode?: number;
  reason?: string;
}

/** A WebSocket message, content as a binary (latin1) string. */
export interface WsMessageRecord {
  type: number;
  fromClient: boolean;
  content: string;
  timestamp: number;
  dropped: boolean;
  injected: boolean;
}

/** Everything about a flow but its bodies. */
export interface FlowRecord {
  v: number;
  id: string;
  type: "http";
  intercepted: boolean;
  isReplay: "request" | "response" | null;
  marked: string;
  comment: string;
  timestampCreated: number;
  metadata: Record<string, unknown>;
  error: { msg: string; timestamp: number } | null;
  client: ConnRecord;
  server: ConnRecord;
  request: MessageRecord;
  response: MessageRecord | null;
  websocket: {
    messages: WsMessageRecord[];
    closedByClient: boolean | null;
    closeCode: number | null;
    closeReason: string | null;
    timestampEnd: number | null;
  } | null;
}

function connRecord(c: Connection): ConnRecord {
  return {
    id: c.id,
    peername: c.peername,
    sockname: c.sockname,
    transportProtocol: c.transportProtocol,
    error: c.error,
    tls: c.tls,
    certificateList: c.certificateList,
    alpn: c.alpn,
    alpnOffers: c.alpnOffers,
    cipher: c.cipher,
    cipherList: c.cipherList,
    tlsVersion: c.tlsVersion,
    sni: c.sni,
    timestampStart: c.timestampStart,
    timestampEnd: c.timestampEnd,
    timestampTlsSetup: c.timestampTlsSetup,
  };
}

function latin1Of(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(b.length, i + 8192)) as unknown as number[]);
  }
  return s;
}

function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function safeMetadata(m: Record<string, unknown>): Record<string, unknown> {
  for (const k in m) {
    // only plain JSON data survives; anything else (functions, bytes, cycles) goes through a copy
    const v = m[k];
    if (v !== null && typeof v === "object") return jsonCopy(m);
    if (typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") return jsonCopy(m);
  }
  return m;
}

function jsonCopy(m: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(m, (_k, v) => {
      if (v instanceof Uint8Array) return latin1Of(v);
      if (typeof v === "bigint") return Number(v);
      return v;
    })) ?? {};
  } catch {
    return {};
  }
}

function clientRecord(c: Client): ConnRecord {
  const rec = connRecord(c);
  rec.proxyMode = c.proxyMode;
  rec.mitmcert = c.mitmcert;
  return rec;
}

function serverRecord(c: Server): ConnRecord {
  const rec = connRecord(c);
  rec.address = c.address;
  rec.timestampTcpSetup = c.timestampTcpSetup;
  rec.via = c.via;
  return rec;
}

/** The record of a flow (no bodies). The returned object shares arrays with the flow: serialize it at once. */
export function flowRecord(flow: HTTPFlow): FlowRecord {
  return {
    ...recordBody(flow),
    client: clientRecord(flow.clientConn),
    server: serverRecord(flow.serverConn),
  };
}

/** A flow's record but its connections. */
function recordBody(flow: HTTPFlow): Omit<FlowRecord, "client" | "server"> {
  const q = flow.request;
  const r = flow.response;
  const ws = flow.websocket as FlowRecord["websocket"] & { messages: any[] } | null;
  return {
    v: RECORD_VERSION,
    id: flow.id,
    type: "http",
    intercepted: flow.intercepted,
    isReplay: flow.isReplay,
    marked: flow.marked,
    comment: flow.comment,
    timestampCreated: flow.timestampCreated,
    metadata: safeMetadata(flow.metadata),
    error: flow.error ? { msg: flow.error.msg, timestamp: flow.error.timestamp } : null,
    request: {
      httpVersion: q.httpVersion,
      headers: q.headers.fields,
      trailers: q.trailers ? q.trailers.fields : null,
      timestampStart: q.timestampStart,
      timestampEnd: q.timestampEnd,
      body: q.rawContent !== null,
      method: q.method,
      scheme: q.scheme,
      host: q.host,
      port: q.port,
      path: q.path,
      authority: q.authority,
    },
    response: r
      ? {
        httpVersion: r.httpVersion,
        headers: r.headers.fields,
        trailers: r.trailers ? r.trailers.fields : null,
        timestampStart: r.timestampStart,
        timestampEnd: r.timestampEnd,
        body: r.rawContent !== null,
        statusCode: r.statusCode,
        reason: r.reason,
      }
      : null,
    websocket: ws
      ? {
        messages: (Array.isArray(ws.messages) ? ws.messages : []).map((m: any) => ({
          type: Number(m.type ?? 2),
          fromClient: Boolean(m.fromClient ?? m.from_client),
          content: m.content instanceof Uint8Array ? latin1Of(m.content) : String(m.content ?? ""),
          timestamp: Number(m.timestamp ?? 0),
          dropped: Boolean(m.dropped),
          injected: Boolean(m.injected),
        })),
        closedByClient: ws.closedByClient ?? null,
        closeCode: ws.closeCode ?? null,
        closeReason: ws.closeReason ?? null,
        timestampEnd: ws.timestampEnd ?? null,
      }
      : null,
  };
}

/** A connection's record as JSON, with the record it was made from (its fields, compared by identity). */
interface ConnJson {
  rec: ConnRecord;
  /** Lengths of the record's arrays when it was made (an array changed in place is seen by its length). */
  lengths: number[];
  json: string;
}

/**
 * Turns flows into record JSON, the text {@link flowRecord} gives, faster: a connection's part (a third
 * to a half of a plain flow's record, most of an HTTPS one's with its certificate chain) is serialized once
 * and reused for the connection's next flows while none of its fields changed. One per store.
 *
 * @example
 * ```ts
 * import { tflow } from "../../testing.ts";
 * const enc = new RecordEncoder();
 * const f = tflow({ resp: true });
 * JSON.parse(enc.json(f)).request.method; // "GET"
 * ```
 */
export class RecordEncoder {
  readonly #conns = new WeakMap<Connection, ConnJson>();

  /** The JSON text of `flow`'s record. */
  json(flow: HTTPFlow): string {
    const client = this.#conn(flow.clientConn, clientRecord);
    const server = this.#conn(flow.serverConn, serverRecord);
    const rest = JSON.stringify(recordBody(flow));
    return `${rest.slice(0, -1)},"client":${client},"server":${server}}`;
  }

  #conn<C extends Connection>(c: C, make: (c: C) => ConnRecord): string {
    const cached = this.#conns.get(c);
    if (cached !== undefined && unchanged(c, cached)) return cached.json;
    const rec = make(c);
    const lengths: number[] = [];
    for (const k in rec) {
      const v = rec[k as keyof ConnRecord];
      if (Array.isArray(v)) lengths.push(v.length);
    }
    const json = JSON.stringify(rec);
    this.#conns.set(c, { rec, lengths, json });
    return json;
  }
}

function unchanged(c: Connection, cached: ConnJson): boolean {
  const now = c as unknown as Record<string, unknown>;
  let i = 0;
  for (const k in cached.rec) {
    const v = cached.rec[k as keyof ConnRecord];
    if (now[k] !== v) return false;
    if (Array.isArray(v) && v.length !== cached.lengths[i++]) return false;
  }
  return true;
}

function connFrom(c: Connection, r: ConnRecord): void {
  c.id = r.id;
  c.peername = r.peername;
  c.sockname = r.sockname;
  c.transportProtocol = r.transportProtocol;
  c.error = r.error;
  c.tls = r.tls;
  c.certificateList = r.certificateList;
  c.alpn = r.alpn;
  c.alpnOffers = r.alpnOffers;
  c.cipher = r.cipher;
  c.cipherList = r.cipherList;
  c.tlsVersion = r.tlsVersion;
  c.sni = r.sni;
  c.timestampStart = r.timestampStart;
  c.timestampEnd = r.timestampEnd;
  c.timestampTlsSetup = r.timestampTlsSetup;
}

/** Where a flow's bodies come from when a record is turned back into a flow. */
export interface BodySource {
  request: Uint8Array | null | (() => Uint8Array | null);
  response: Uint8Array | null | (() => Uint8Array | null);
}

/**
 * Give a message a `rawContent` that is read from the store on first access (then kept like a plain
 * field), so filters and views that never look at the body never load it.
 */
function lazyBody(m: Request | Response, load: () => Uint8Array | null): void {
  let value: Uint8Array | null | undefined;
  Object.defineProperty(m, "rawContent", {
    configurable: true,
    enumerable: true,
    get: () => (value === undefined ? (value = load()) : value),
    set: (v: Uint8Array | null) => {
      value = v;
    },
  });
}

/** Rebuild a flow from its record; bodies are given or loaded lazily. Stored flows are not live. */
export function flowFromRecord(rec: FlowRecord, bodies: BodySource): HTTPFlow {
  const client = new Client();
  connFrom(client, rec.client);
  client.proxyMode = rec.client.proxyMode ?? "regular";
  client.mitmcert = rec.client.mitmcert ?? null;
  const server = new Server(rec.server.address ?? null);
  connFrom(server, rec.server);
  server.timestampTcpSetup = rec.server.timestampTcpSetup ?? null;
  server.via = rec.server.via ?? null;
  const q = rec.request;
  const req = new Request({
    method: q.method!,
    scheme: q.scheme,
    host: q.host!,
    port: q.port,
    path: q.path,
    authority: q.authority,
    httpVersion: q.httpVersion,
    headers: Headers.adopt(q.headers),
    rawContent: null,
    trailers: q.trailers ? Headers.adopt(q.trailers) : null,
    timestampStart: q.timestampStart,
    timestampEnd: q.timestampEnd,
  });
  setBody(req, q.body, bodies.request);
  const flow = new HTTPFlow(client, server, req, false);
  flow.id = rec.id;
  const r = rec.response;
  if (r) {
    const resp = new Response({
      statusCode: r.statusCode!,
      reason: r.reason,
      httpVersion: r.httpVersion,
      headers: Headers.adopt(r.headers),
      rawContent: null,
      trailers: r.trailers ? Headers.adopt(r.trailers) : null,
      timestampStart: r.timestampStart,
      timestampEnd: r.timestampEnd,
    });
    setBody(resp, r.body, bodies.response);
    flow.response = resp;
  }
  flow.error = rec.error ? new FlowError(rec.error.msg, rec.error.timestamp) : null;
  flow.isReplay = rec.isReplay;
  flow.marked = rec.marked;
  flow.comment = rec.comment;
  flow.metadata = rec.metadata ?? {};
  flow.timestampCreated = rec.timestampCreated;
  if (rec.websocket) {
    flow.websocket = WebSocketData.from({
      ...rec.websocket,
      messages: rec.websocket.messages.map((m) => ({ ...m, content: bytesOf(m.content) })),
    });
  }
  return flow;
}

function setBody(m: Request | Response, kept: boolean, src: BodySource["request"]): void {
  if (!kept) return;
  if (typeof src === "function") lazyBody(m, src);
  else m.rawContent = src ?? new Uint8Array(0);
}
