/**
 * An HTTP flow as a tnetstring in the current flow format, written straight from the flow: the same
 * bytes as `dumps(flowToState(flow))` (tests/lib/io/flow_encode_test.ts holds them equal), without
 * building the state dict, its ~40 objects and the bytes of every header first. `-w` encodes every flow
 * it records, so this is on the proxy's hot path when recording.
 *
 * The writer fills its buffer from the end (a tnetstring's length comes before its payload), so every
 * dict below is written last key first; the key order read front to back is {@link flowToState}'s.
 *
 * @module
 */
import type { Client, Connection, Server } from "../flow/connection.ts";
import type { HTTPFlow } from "../flow/flow.ts";
import type { Headers } from "../http/headers.ts";
import type { Request, Response } from "../http/message.ts";
import { FLOW_FORMAT_VERSION } from "./compat.ts";
import { addrToState, getBackup, toSerializable, websocketToState } from "./state.ts";
import { type ReverseWriter, type TNetValue, writeFloat, writeValue, writeView } from "./tnetstring.ts";

const utf8 = new TextEncoder();
const COLON = 0x3a;

/** A dict key, encoded once: `len:key;`. */
function key(k: string): Uint8Array {
  return utf8.encode(`${k.length}:${k};`);
}

const K = {
  id: key("id"),
  error: key("error"),
  msg: key("msg"),
  timestamp: key("timestamp"),
  clientConn: key("client_conn"),
  serverConn: key("server_conn"),
  intercepted: key("intercepted"),
  isReplay: key("is_replay"),
  marked: key("marked"),
  metadata: key("metadata"),
  comment: key("comment"),
  timestampCreated: key("timestamp_created"),
  request: key("request"),
  response: key("response"),
  websocket: key("websocket"),
  version: key("version"),
  type: key("type"),
  backup: key("backup"),
  peername: key("peername"),
  sockname: key("sockname"),
  transportProtocol: key("transport_protocol"),
  tls: key("tls"),
  certificateList: key("certificate_list"),
  alpn: key("alpn"),
  alpnOffers: key("alpn_offers"),
  cipher: key("cipher"),
  cipherList: key("cipher_list"),
  tlsVersion: key("tls_version"),
  sni: key("sni"),
  timestampStart: key("timestamp_start"),
  timestampEnd: key("timestamp_end"),
  timestampTlsSetup: key("timestamp_tls_setup"),
  mitmcert: key("mitmcert"),
  proxyMode: key("proxy_mode"),
  address: key("address"),
  timestampTcpSetup: key("timestamp_tcp_setup"),
  via: key("via"),
  httpVersion: key("http_version"),
  headers: key("headers"),
  content: key("content"),
  trailers: key("trailers"),
  host: key("host"),
  port: key("port"),
  method: key("method"),
  scheme: key("scheme"),
  authority: key("authority"),
  path: key("path"),
  statusCode: key("status_code"),
  reason: key("reason"),
} as const;

const NULL = utf8.encode("0:~");
const EMPTY_DICT = utf8.encode("0:}");
const EMPTY_LIST = utf8.encode("0:]");
const TYPE_HTTP = utf8.encode("4:http;");
const VERSION = utf8.encode(`${String(FLOW_FORMAT_VERSION).length}:${FLOW_FORMAT_VERSION}#`);

/** A container's closing type byte; returns the size to pass to {@link open}. */
function close(w: ReverseWriter, type: number): number {
  const before = w.size;
  w.byte(type);
  return before;
}

/** A container's length prefix, once its items are written. */
function open(w: ReverseWriter, before: number): void {
  w.byte(COLON);
  w.uint(w.size - before - 2);
}

/** A binary (latin1) string as bytes, like binToBytes: UTF-8 when it has chars above U+00FF. */
function bin(w: ReverseWriter, s: string): void {
  const before = w.size;
  w.byte(0x2c); // ,
  if (!w.latin1(s)) w.bytes(utf8.encode(s));
  w.byte(COLON);
  w.uint(w.size - before - 2);
}

/** A dict entry whose value is a list of binary strings. */
function binListEntry(w: ReverseWriter, k: Uint8Array, items: readonly string[]): void {
  if (items.length === 0) w.bytes(EMPTY_LIST);
  else {
    const b = close(w, 0x5d);
    for (let i = items.length - 1; i >= 0; i--) bin(w, items[i]);
    open(w, b);
  }
  w.bytes(k);
}

function headers(w: ReverseWriter, h: Headers): void {
  const fields = h.fields;
  const b = close(w, 0x5d);
  for (let i = fields.length - 1; i >= 0; i--) {
    const pair = close(w, 0x5d);
    bin(w, fields[i][1]);
    bin(w, fields[i][0]);
    open(w, pair);
  }
  open(w, b);
}

/** `key` then `value` in front of what is written: one dict entry. */
function entry(w: ReverseWriter, k: Uint8Array, value: TNetValue): void {
  writeValue(w, value);
  w.bytes(k);
}

/** A dict entry whose value is a binary string (null when `s` is). */
function binEntry(w: ReverseWriter, k: Uint8Array, s: string | null): void {
  if (s == null) w.bytes(NULL);
  else bin(w, s);
  w.bytes(k);
}

/** A dict entry whose value is a float (null when `x` is). */
function floatEntry(w: ReverseWriter, k: Uint8Array, x: number | null | undefined): void {
  if (x == null) w.bytes(NULL);
  else writeFloat(w, x);
  w.bytes(k);
}

/** The fields every connection has, up to timestamp_tls_setup (written after what follows them). */
function connFields(w: ReverseWriter, c: Connection, timestampStart: number | null): void {
  floatEntry(w, K.timestampTlsSetup, c.timestampTlsSetup);
  floatEntry(w, K.timestampEnd, c.timestampEnd);
  floatEntry(w, K.timestampStart, timestampStart);
  entry(w, K.sni, c.sni);
  entry(w, K.tlsVersion, c.tlsVersion);
  entry(w, K.cipherList, c.cipherList);
  entry(w, K.cipher, c.cipher);
  binListEntry(w, K.alpnOffers, c.alpnOffers);
  binEntry(w, K.alpn, c.alpn);
  binListEntry(w, K.certificateList, c.certificateList);
  entry(w, K.tls, c.tls);
  entry(w, K.error, c.error);
  entry(w, K.transportProtocol, c.transportProtocol);
  entry(w, K.sockname, addrToState(c.sockname));
  entry(w, K.peername, addrToState(c.peername));
  entry(w, K.id, c.id);
}

function client(w: ReverseWriter, c: Client): void {
  const b = close(w, 0x7d);
  entry(w, K.proxyMode, c.proxyMode);
  binEntry(w, K.mitmcert, c.mitmcert);
  connFields(w, c, c.timestampStart ?? 0);
  open(w, b);
}

function server(w: ReverseWriter, c: Server): void {
  const b = close(w, 0x7d);
  entry(w, K.via, c.via ? [String(c.via[0]), addrToState(c.via[1])] : null);
  floatEntry(w, K.timestampTcpSetup, c.timestampTcpSetup);
  entry(w, K.address, addrToState(c.address));
  connFields(w, c, c.timestampStart);
  open(w, b);
}

/** The fields requests and responses share, written after what follows them. */
function messageFields(w: ReverseWriter, m: Request | Response): void {
  floatEntry(w, K.timestampEnd, m.timestampEnd);
  floatEntry(w, K.timestampStart, m.timestampStart);
  if (m.trailers) headers(w, m.trailers);
  else w.bytes(NULL);
  w.bytes(K.trailers);
  entry(w, K.content, m.rawContent);
  headers(w, m.headers);
  w.bytes(K.headers);
  binEntry(w, K.httpVersion, m.httpVersion);
}

function request(w: ReverseWriter, r: Request): void {
  const b = close(w, 0x7d);
  binEntry(w, K.path, r.path);
  binEntry(w, K.authority, r.authority);
  binEntry(w, K.scheme, r.scheme);
  binEntry(w, K.method, r.method);
  entry(w, K.port, r.port);
  entry(w, K.host, r.host);
  messageFields(w, r);
  open(w, b);
}

function response(w: ReverseWriter, r: Response): void {
  const b = close(w, 0x7d);
  binEntry(w, K.reason, r.reason);
  entry(w, K.statusCode, r.statusCode);
  messageFields(w, r);
  open(w, b);
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** Write `flow` in the current format (see the module doc). */
export function writeHttpFlow(w: ReverseWriter, flow: HTTPFlow): void {
  const b = close(w, 0x7d);
  const backup = getBackup(flow);
  if (backup) entry(w, K.backup, backup);
  w.bytes(TYPE_HTTP);
  w.bytes(K.type);
  w.bytes(VERSION);
  w.bytes(K.version);
  entry(w, K.websocket, websocketToState(flow.websocket));
  if (flow.response) response(w, flow.response);
  else w.bytes(NULL);
  w.bytes(K.response);
  request(w, flow.request);
  w.bytes(K.request);
  floatEntry(w, K.timestampCreated, flow.timestampCreated);
  entry(w, K.comment, flow.comment);
  const md = flow.metadata;
  if (
    md !== null && typeof md === "object" && Object.getPrototypeOf(md) === Object.prototype && !hasKeys(md)
  ) {
    w.bytes(EMPTY_DICT);
  } else {
    writeValue(w, toSerializable(md) ?? {});
  }
  w.bytes(K.metadata);
  entry(w, K.marked, flow.marked);
  entry(w, K.isReplay, flow.isReplay);
  entry(w, K.intercepted, flow.intercepted);
  server(w, flow.serverConn);
  w.bytes(K.serverConn);
  client(w, flow.clientConn);
  w.bytes(K.clientConn);
  const err = flow.error;
  if (err) {
    const e = close(w, 0x7d);
    floatEntry(w, K.timestamp, err.timestamp);
    entry(w, K.msg, err.msg);
    open(w, e);
  } else {
    w.bytes(NULL);
  }
  w.bytes(K.error);
  entry(w, K.id, flow.id);
  open(w, b);
}

/**
 * `flow` as one tnetstring in the current format: a view into a scratch buffer that the next encoding
 * overwrites (see dumpsView in tnetstring.ts): write it out at once.
 */
export function encodeHttpFlowView(flow: HTTPFlow): Uint8Array {
  return writeView((w) => writeHttpFlow(w, flow));
}
