/**
 * Flow <-> serializable state, in mitmproxy's `get_state()` shape (flow format version 21, §6.4).
 *
 * Mapping notes:
 * - bytes fields (`http_version`, `method`, `scheme`, `authority`, `path`, `reason`, header names/values,
 *   `alpn`, certificates) are `Uint8Array`; our model keeps them as binary (latin1) strings, so they
 *   convert with latin1. A model string with chars above U+00FF (not binary) is written as UTF-8.
 * - `content`/`trailers` map to `rawContent`/`trailers` (the still-encoded body; null = not stored).
 * - timestamps are always written as floats (`^`), ints as `#`.
 * - WebSocket data is duck-typed: any object with `messages` (`{type, fromClient, content, timestamp,
 *   dropped, injected}`), `closedByClient`, `closeCode`, `closeReason`, `timestampEnd`. Loading creates such
 *   plain objects ({@link WebSocketDataState}).
 * - `backup` (a flow's pre-modification state) has no field in our model; it is kept in a side table so
 *   it survives a read/write round trip (see {@link getBackup}).
 *
 * @module
 */
import { allocBytes } from "../http/bytes.ts";
import { Headers } from "../http/headers.ts";
import { Request, Response } from "../http/message.ts";
import { type Address, Client, type Connection, Server } from "../flow/connection.ts";
import { type Flow, FlowError, HTTPFlow } from "../flow/flow.ts";
import { WebSocketData } from "../flow/websocket.ts";
import { TCPFlow, TCPMessage } from "../flow/tcp.ts";
import { tfloat, type TNetValue } from "./tnetstring.ts";
import { downgradeFlow, FLOW_FORMAT_VERSION, FlowFormatError } from "./compat.ts";

// deno-lint-ignore no-explicit-any
type State = Record<string, any>;

/** One WebSocket message as kept on a loaded flow. */
export interface WebSocketMessageState {
  /** Opcode: 1 text, 2 binary. */
  type: number;
  fromClient: boolean;
  content: Uint8Array;
  timestamp: number;
  dropped: boolean;
  injected: boolean;
}

/** WebSocket data as kept on a loaded flow (`flow.websocket`). */
export interface WebSocketDataState {
  messages: WebSocketMessageState[];
  closedByClient: boolean | null;
  closeCode: number | null;
  closeReason: string | null;
  timestampEnd: number | null;
}

const backups = new WeakMap<Flow, State>();

/** The `backup` state a flow was loaded with (mitmproxy's `Flow._backup`), if any. */
export function getBackup(flow: Flow): State | undefined {
  return backups.get(flow);
}

/** Set or clear the `backup` state written with a flow. */
export function setBackup(flow: Flow, state: State | undefined): void {
  if (state === undefined) backups.delete(flow);
  else backups.set(flow, state);
}

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder();

/** Binary (latin1) string -> bytes; falls back to UTF-8 when the string has chars above U+00FF. */
export function binToBytes(s: string): Uint8Array {
  // pooled (see allocBytes): a header name or value is a few bytes, a fresh backing store costs more
  const out = allocBytes(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return utf8enc.encode(s);
    out[i] = c;
  }
  return out;
}

/** Bytes -> binary (latin1) string. */
export function bytesToBin(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(b.length, i + 8192)) as unknown as number[]);
  }
  return s;
}

function headersToState(h: Headers): Uint8Array[][] {
  return h.fields.map(([k, v]) => [binToBytes(k), binToBytes(v)]);
}

/** An address as state: `[host, port, ...]` with the host a string and the rest numbers. */
export function addrToState(a: Address | null | undefined): TNetValue {
  if (!a) return null;
  return a.map((x, i) => (i === 0 ? String(x) : Number(x)));
}

function connToState(c: Connection): State {
  return {
    id: c.id,
    peername: addrToState(c.peername),
    sockname: addrToState(c.sockname),
    transport_protocol: c.transportProtocol,
    error: c.error,
    tls: c.tls,
    certificate_list: c.certificateList.map(binToBytes),
    alpn: c.alpn == null ? null : binToBytes(c.alpn),
    alpn_offers: c.alpnOffers.map(binToBytes),
    cipher: c.cipher,
    cipher_list: [...c.cipherList],
    tls_version: c.tlsVersion,
    sni: c.sni,
    timestamp_start: tfloat(c.timestampStart),
    timestamp_end: tfloat(c.timestampEnd),
    timestamp_tls_setup: tfloat(c.timestampTlsSetup),
  };
}

function clientToState(c: Client): State {
  const s = connToState(c);
  s.timestamp_start = tfloat(c.timestampStart ?? 0);
  s.mitmcert = c.mitmcert == null ? null : binToBytes(c.mitmcert);
  s.proxy_mode = c.proxyMode;
  return s;
}

function serverToState(c: Server): State {
  const s = connToState(c);
  s.address = addrToState(c.address);
  s.timestamp_tcp_setup = tfloat(c.timestampTcpSetup);
  s.via = c.via ? [String(c.via[0]), addrToState(c.via[1])] : null;
  return s;
}

function requestToState(r: Request): State {
  return {
    http_version: binToBytes(r.httpVersion),
    headers: headersToState(r.headers),
    content: r.rawContent,
    trailers: r.trailers ? headersToState(r.trailers) : null,
    timestamp_start: tfloat(r.timestampStart),
    timestamp_end: tfloat(r.timestampEnd),
    host: r.host,
    port: r.port,
    method: binToBytes(r.method),
    scheme: binToBytes(r.scheme),
    authority: binToBytes(r.authority),
    path: binToBytes(r.path),
  };
}

function responseToState(r: Response): State {
  return {
    http_version: binToBytes(r.httpVersion),
    headers: headersToState(r.headers),
    content: r.rawContent,
    trailers: r.trailers ? headersToState(r.trailers) : null,
    timestamp_start: tfloat(r.timestampStart),
    timestamp_end: tfloat(r.timestampEnd),
    status_code: r.statusCode,
    reason: binToBytes(r.reason),
  };
}

/** A flow's WebSocket data as state (duck-typed, see the module notes), or null. */
export function websocketToState(ws: any): State | null {
  if (ws == null) return null;
  const msgs: any[] = Array.isArray(ws.messages) ? ws.messages : [];
  return {
    messages: msgs.map((m) => [
      Number(m.type ?? 2),
      Boolean(m.fromClient ?? m.from_client),
      m.content instanceof Uint8Array ? m.content : utf8enc.encode(String(m.content ?? "")),
      tfloat(Number(m.timestamp ?? 0)),
      Boolean(m.dropped),
      Boolean(m.injected),
    ]),
    closed_by_client: ws.closedByClient ?? ws.closed_by_client ?? null,
    close_code: ws.closeCode ?? ws.close_code ?? null,
    close_reason: ws.closeReason ?? ws.close_reason ?? null,
    timestamp_end: tfloat(ws.timestampEnd ?? ws.timestamp_end ?? null),
  };
}

/** Make metadata serializable: drop functions/symbols/undefined, use toJSON where present. */
export function toSerializable(v: unknown, depth = 0): TNetValue | undefined {
  if (depth > 64) return undefined;
  if (v === null) return null;
  switch (typeof v) {
    case "string":
    case "boolean":
    case "bigint":
      return v;
    case "number":
      return v;
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x) => toSerializable(x, depth + 1) ?? null);
  if (v instanceof Map) {
    const o: Record<string, TNetValue> = {};
    for (const [k, x] of v) {
      const s = toSerializable(x, depth + 1);
      if (s !== undefined) o[String(k)] = s;
    }
    return o;
  }
  const obj = v as Record<string, unknown>;
  if (typeof obj.toJSON === "function") return toSerializable(obj.toJSON(), depth + 1);
  const o: Record<string, TNetValue> = {};
  for (const [k, x] of Object.entries(obj)) {
    const s = toSerializable(x, depth + 1);
    if (s !== undefined) o[k] = s;
  }
  return o;
}

/**
 * The serializable state of an HTTP flow (mitmproxy's `flow.get_state()`), in format `version`
 * (default 21; 17..20 produce what older mitmproxy versions read, 17 = mitmproxy 8.x).
 */
export function flowToState(flow: HTTPFlow | TCPFlow, version: number = FLOW_FORMAT_VERSION): State {
  if (flow instanceof TCPFlow) return tcpFlowToState(flow, version);
  if (flow.type !== "http") throw new FlowFormatError(`cannot serialize ${(flow as Flow).type} flows yet`);
  const state: State = {
    id: flow.id,
    error: flow.error ? { msg: flow.error.msg, timestamp: tfloat(flow.error.timestamp) } : null,
    client_conn: clientToState(flow.clientConn),
    server_conn: serverToState(flow.serverConn),
    intercepted: flow.intercepted,
    is_replay: flow.isReplay,
    marked: flow.marked,
    metadata: toSerializable(flow.metadata) ?? {},
    comment: flow.comment,
    timestamp_created: tfloat(flow.timestampCreated),
    request: requestToState(flow.request),
    response: flow.response ? responseToState(flow.response) : null,
    websocket: websocketToState(flow.websocket),
    version: FLOW_FORMAT_VERSION,
    type: "http",
  };
  const backup = backups.get(flow);
  if (backup) state.backup = backup;
  return version === FLOW_FORMAT_VERSION ? state : downgradeFlow(state, version);
}

// ---------------------------------------------------------------------------------------------------------
// Loading

function bad(path: string, expected: string, got: unknown): never {
  const desc = got === null
    ? "null"
    : got instanceof Uint8Array
    ? "bytes"
    : Array.isArray(got)
    ? "list"
    : typeof got === "object"
    ? "dict"
    : typeof got;
  throw new FlowFormatError(`invalid flow state: ${path} should be ${expected}, got ${desc}`);
}

function dict(v: unknown, path: string): State {
  if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) {
    bad(path, "a dict", v);
  }
  return v as State;
}

function bin(v: unknown, path: string): string {
  if (v instanceof Uint8Array) return bytesToBin(v);
  if (typeof v === "string") return v; // lenient: str where bytes were expected
  bad(path, "bytes", v);
}

function binOrNull(v: unknown, path: string): string | null {
  return v == null ? null : bin(v, path);
}

function str(v: unknown, path: string): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return utf8dec.decode(v); // lenient: bytes where str was expected
  bad(path, "str", v);
}

function strOrNull(v: unknown, path: string): string | null {
  return v == null ? null : str(v, path);
}

function num(v: unknown, path: string): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  bad(path, "a number", v);
}

function numOrNull(v: unknown, path: string): number | null {
  return v == null ? null : num(v, path);
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) bad(path, "a list", v);
  return v;
}

function addr(v: unknown, path: string): Address | null {
  if (v == null) return null;
  const a = list(v, path);
  if (a.length < 2) bad(path, "a (host, port) pair", v);
  const out = a.map((x, i) => (i === 0 ? str(x, `${path}[0]`) : num(x, `${path}[${i}]`)));
  return out as unknown as Address;
}

function headersFromState(v: unknown, path: string): Headers {
  const fields: [string, string][] = list(v, path).map((f, i) => {
    const pair = list(f, `${path}[${i}]`);
    if (pair.length !== 2) bad(`${path}[${i}]`, "a (name, value) pair", f);
    return [bin(pair[0], `${path}[${i}][0]`), bin(pair[1], `${path}[${i}][1]`)];
  });
  return new Headers(fields);
}

function content(v: unknown, path: string): Uint8Array | null {
  if (v == null) return null;
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") return utf8enc.encode(v);
  bad(path, "bytes or null", v);
}

function connFromState(c: Connection, s: State, path: string): void {
  if (s.id != null) c.id = str(s.id, `${path}.id`);
  c.peername = addr(s.peername, `${path}.peername`);
  c.sockname = addr(s.sockname, `${path}.sockname`);
  const tp = s.transport_protocol ?? "tcp";
  if (tp !== "tcp" && tp !== "udp") bad(`${path}.transport_protocol`, '"tcp" or "udp"', tp);
  c.transportProtocol = tp;
  c.error = strOrNull(s.error, `${path}.error`);
  c.tls = Boolean(s.tls);
  c.certificateList = list(s.certificate_list ?? [], `${path}.certificate_list`).map((x, i) =>
    bin(x, `${path}.certificate_list[${i}]`)
  );
  c.alpn = binOrNull(s.alpn, `${path}.alpn`);
  c.alpnOffers = list(s.alpn_offers ?? [], `${path}.alpn_offers`).map((x, i) =>
    bin(x, `${path}.alpn_offers[${i}]`)
  );
  c.cipher = strOrNull(s.cipher, `${path}.cipher`);
  c.cipherList = list(s.cipher_list ?? [], `${path}.cipher_list`).map((x, i) =>
    str(x, `${path}.cipher_list[${i}]`)
  );
  c.tlsVersion = strOrNull(s.tls_version, `${path}.tls_version`);
  c.sni = strOrNull(s.sni, `${path}.sni`);
  c.timestampStart = numOrNull(s.timestamp_start, `${path}.timestamp_start`);
  c.timestampEnd = numOrNull(s.timestamp_end, `${path}.timestamp_end`);
  c.timestampTlsSetup = numOrNull(s.timestamp_tls_setup, `${path}.timestamp_tls_setup`);
}

function clientFromState(v: unknown): Client {
  const s = dict(v, "client_conn");
  const c = new Client();
  connFromState(c, s, "client_conn");
  c.timestampStart = num(s.timestamp_start ?? 0, "client_conn.timestamp_start");
  c.mitmcert = binOrNull(s.mitmcert, "client_conn.mitmcert");
  c.proxyMode = s.proxy_mode == null ? "regular" : str(s.proxy_mode, "client_conn.proxy_mode");
  return c;
}

function serverFromState(v: unknown): Server {
  const s = dict(v, "server_conn");
  const c = new Server(addr(s.address, "server_conn.address"));
  connFromState(c, s, "server_conn");
  c.timestampTcpSetup = numOrNull(s.timestamp_tcp_setup, "server_conn.timestamp_tcp_setup");
  if (s.via != null) {
    const via = list(s.via, "server_conn.via");
    c.via = [str(via[0], "server_conn.via[0]"), addr(via[1], "server_conn.via[1]")!];
  }
  return c;
}

function requestFromState(v: unknown): Request {
  const s = dict(v, "request");
  return new Request({
    httpVersion: bin(s.http_version, "request.http_version"),
    headers: headersFromState(s.headers, "request.headers"),
    rawContent: content(s.content, "request.content"),
    trailers: s.trailers == null ? null : headersFromState(s.trailers, "request.trailers"),
    timestampStart: num(s.timestamp_start, "request.timestamp_start"),
    timestampEnd: numOrNull(s.timestamp_end, "request.timestamp_end"),
    host: str(s.host, "request.host"),
    port: num(s.port, "request.port"),
    method: bin(s.method, "request.method"),
    scheme: bin(s.scheme, "request.scheme"),
    authority: bin(s.authority ?? "", "request.authority"),
    path: bin(s.path, "request.path"),
  });
}

function responseFromState(v: unknown): Response {
  const s = dict(v, "response");
  return new Response({
    httpVersion: bin(s.http_version, "response.http_version"),
    headers: headersFromState(s.headers, "response.headers"),
    rawContent: content(s.content, "response.content"),
    trailers: s.trailers == null ? null : headersFromState(s.trailers, "response.trailers"),
    timestampStart: num(s.timestamp_start, "response.timestamp_start"),
    timestampEnd: numOrNull(s.timestamp_end, "response.timestamp_end"),
    statusCode: num(s.status_code, "response.status_code"),
    reason: bin(s.reason ?? "", "response.reason"),
  });
}

function websocketFromState(v: unknown): WebSocketDataState | null {
  if (v == null) return null;
  const s = dict(v, "websocket");
  return {
    messages: list(s.messages ?? [], "websocket.messages").map((m, i) => {
      const a = list(m, `websocket.messages[${i}]`);
      const c = a[2];
      return {
        type: num(a[0], `websocket.messages[${i}][0]`),
        fromClient: Boolean(a[1]),
        content: c instanceof Uint8Array ? c : utf8enc.encode(str(c, `websocket.messages[${i}][2]`)),
        timestamp: num(a[3] ?? 0, `websocket.messages[${i}][3]`),
        dropped: Boolean(a[4]),
        injected: Boolean(a[5]),
      };
    }),
    closedByClient: s.closed_by_client == null ? null : Boolean(s.closed_by_client),
    closeCode: numOrNull(s.close_code, "websocket.close_code"),
    closeReason: strOrNull(s.close_reason, "websocket.close_reason"),
    timestampEnd: numOrNull(s.timestamp_end, "websocket.timestamp_end"),
  };
}

/**
 * Build an HTTPFlow from a state of the current format version (run {@link migrateFlow} first for files).
 * Loaded flows are not live. Throws {@link FlowFormatError} naming the bad field.
 */
export function flowFromState(state: State): HTTPFlow {
  const s = dict(state, "flow");
  if (s.version !== FLOW_FORMAT_VERSION) {
    throw new FlowFormatError(
      `flowFromState expects format version ${FLOW_FORMAT_VERSION}, got ${s.version} (run migrateFlow first)`,
    );
  }
  if (s.type !== "http") throw new FlowFormatError(`unsupported flow type: ${JSON.stringify(s.type)}`);
  const flow = new HTTPFlow(
    clientFromState(s.client_conn),
    serverFromState(s.server_conn),
    requestFromState(s.request),
    false,
  );
  flow.id = str(s.id, "id");
  if (s.error != null) {
    const e = dict(s.error, "error");
    flow.error = new FlowError(str(e.msg, "error.msg"), num(e.timestamp, "error.timestamp"));
  }
  flow.response = s.response == null ? null : responseFromState(s.response);
  const ws = websocketFromState(s.websocket);
  flow.websocket = ws ? WebSocketData.from(ws) : null;
  flow.intercepted = Boolean(s.intercepted);
  const r = s.is_replay;
  if (r != null && r !== "request" && r !== "response") bad("is_replay", 'null, "request" or "response"', r);
  flow.isReplay = r ?? null;
  flow.marked = s.marked == null
    ? ""
    : typeof s.marked === "boolean"
    ? (s.marked ? ":default:" : "")
    : str(s.marked, "marked");
  flow.metadata = s.metadata == null ? {} : dict(s.metadata, "metadata");
  flow.comment = s.comment == null ? "" : str(s.comment, "comment");
  flow.timestampCreated = s.timestamp_created == null
    ? flow.request.timestampStart
    : num(s.timestamp_created, "timestamp_created");
  if (s.backup != null) backups.set(flow, dict(s.backup, "backup"));
  return flow;
}

/** The state of a TCP flow (mitmproxy's `TCPFlow.get_state()`: messages as `[from_client, content, timestamp]`). */
export function tcpFlowToState(flow: TCPFlow, version: number = FLOW_FORMAT_VERSION): State {
  const state: State = {
    id: flow.id,
    error: flow.error ? { msg: flow.error.msg, timestamp: tfloat(flow.error.timestamp) } : null,
    client_conn: clientToState(flow.clientConn),
    server_conn: serverToState(flow.serverConn),
    intercepted: flow.intercepted,
    is_replay: flow.isReplay,
    marked: flow.marked,
    metadata: toSerializable(flow.metadata) ?? {},
    comment: flow.comment,
    timestamp_created: tfloat(flow.timestampCreated),
    messages: flow.messages.map((m) => [
      Boolean(m.fromClient),
      m.content instanceof Uint8Array ? m.content : utf8enc.encode(String(m.content)),
      tfloat(m.timestamp),
    ]),
    version: FLOW_FORMAT_VERSION,
    type: "tcp",
  };
  const backup = backups.get(flow);
  if (backup) state.backup = backup;
  return version === FLOW_FORMAT_VERSION ? state : downgradeFlow(state, version);
}

/** A TCP flow from a state of the current format version. Throws {@link FlowFormatError} naming the bad field. */
export function tcpFlowFromState(state: State): TCPFlow {
  const s = dict(state, "flow");
  if (s.version !== FLOW_FORMAT_VERSION) {
    throw new FlowFormatError(
      `tcpFlowFromState expects format version ${FLOW_FORMAT_VERSION}, got ${s.version}`,
    );
  }
  if (s.type !== "tcp") throw new FlowFormatError(`not a TCP flow: ${JSON.stringify(s.type)}`);
  const flow = new TCPFlow(clientFromState(s.client_conn), serverFromState(s.server_conn), false);
  flow.id = str(s.id, "id");
  if (s.error != null) {
    const e = dict(s.error, "error");
    flow.error = new FlowError(str(e.msg, "error.msg"), num(e.timestamp, "error.timestamp"));
  }
  flow.messages = list(s.messages ?? [], "messages").map((m, i) => {
    const a = list(m, `messages[${i}]`);
    const c = a[1];
    return new TCPMessage(
      Boolean(a[0]),
      c instanceof Uint8Array ? c : utf8enc.encode(str(c, `messages[${i}][1]`)),
      num(a[2] ?? 0, `messages[${i}][2]`),
    );
  });
  flow.intercepted = Boolean(s.intercepted);
  flow.marked = s.marked == null
    ? ""
    : typeof s.marked === "boolean"
    ? (s.marked ? ":default:" : "")
    : str(s.marked, "marked");
  flow.metadata = s.metadata == null ? {} : dict(s.metadata, "metadata");
  flow.comment = s.comment == null ? "" : str(s.comment, "comment");
  flow.timestampCreated = s.timestamp_created == null
    ? (flow.messages[0]?.timestamp ?? flow.clientConn.timestampStart ?? 0)
    : num(s.timestamp_created, "timestamp_created");
  if (s.backup != null) backups.set(flow, dict(s.backup, "backup"));
  return flow;
}
