import assert from "node:assert/strict";
import { flowFromState, flowToState, getBackup } from "../../../lib/io/state.ts";
import { downgradeFlow, FlowFormatError, migrateFlow, MigrationContext } from "../../../lib/io/compat.ts";
import { dumps, loads, type TNetDict } from "../../../lib/io/tnetstring.ts";
import { Headers } from "../../../lib/http/headers.ts";
import type { HTTPFlow } from "../../../lib/flow/flow.ts";
import { tflow } from "./_tflow.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);
/** Normalize a state the way a file round trip does (TFloat -> number etc.). */
const norm = (s: unknown) => loads(dumps(s as TNetDict)) as TNetDict;

function assertSameFlow(a: HTTPFlow, c: HTTPFlow) {
  assert.deepEqual(norm(flowToState(a)), norm(flowToState(c)));
}

Deno.test("state: v21 shape of tflow(resp, err, ws)", () => {
  const f = tflow({ resp: true, err: true, ws: true });
  const s = norm(flowToState(f)) as Record<string, any>;
  assert.equal(s.version, 21);
  assert.equal(s.type, "http");
  assert.deepEqual(s.request.headers, [[b("header"), b("qvalue")], [b("content-length"), b("7")]]);
  assert.deepEqual(s.request.method, b("GET"));
  assert.deepEqual(s.request.path, b("/path"));
  assert.equal(s.request.host, "address");
  assert.deepEqual(s.request.content, b("content"));
  assert.equal(s.response.status_code, 200);
  assert.deepEqual(s.response.reason, b("OK"));
  assert.deepEqual(s.error, { msg: "error", timestamp: 946681207 });
  assert.deepEqual(s.client_conn.peername, ["127.0.0.1", 22]);
  assert.equal(s.client_conn.proxy_mode, "regular");
  assert.deepEqual(s.client_conn.alpn, b("http/1.1"));
  assert.deepEqual(s.server_conn.address, ["address", 22]);
  assert.equal(s.server_conn.via, null);
  assert.deepEqual(s.websocket.messages[0], [2, true, b("hello binary"), 946681203, false, false]);
  assert.equal(s.websocket.close_code, 1000);
  // timestamps are written as floats
  const raw = new TextDecoder().decode(dumps(flowToState(f)));
  assert.match(raw, /17:timestamp_created;11:946681200\.0\^/);
  assert.match(raw, /11:status_code;3:200#/);
});

Deno.test("state: round trip keeps every field", () => {
  const f = tflow({ resp: true, err: true, ws: true });
  f.marked = ":star:";
  f.comment = "a comment";
  f.metadata = { k: "v", n: [1, 2.5], nested: { b: b("x") } };
  f.isReplay = "request";
  f.intercepted = true;
  f.request.headers.append("x-bin", "\xff\x00é");
  f.request.trailers = new Headers([["grpc-status", "0"]]);
  f.request.rawContent = new Uint8Array([0, 1, 2, 255]);
  f.response!.rawContent = null;
  f.clientConn.certificateList = ["-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"];
  f.serverConn.via = ["http", ["proxy", 3128]];
  f.serverConn.peername = ["::1", 443, 0, 0] as unknown as [string, number];
  const g = flowFromState(migrateFlow(loads(dumps(flowToState(f))) as TNetDict));
  assertSameFlow(f, g);
  assert.equal(g.live, false);
  assert.equal(g.id, f.id);
  assert.equal(g.request.headers.get("x-bin"), "\xff\x00é");
  assert.deepEqual(g.request.rawContent, new Uint8Array([0, 1, 2, 255]));
  assert.equal(g.response!.rawContent, null);
  assert.equal(g.request.trailers!.get("grpc-status"), "0");
  assert.deepEqual(g.serverConn.via, ["http", ["proxy", 3128]]);
  assert.deepEqual(g.serverConn.peername, ["::1", 443, 0, 0]);
  assert.deepEqual(g.metadata, { k: "v", n: [1, 2.5], nested: { b: b("x") } });
  assert.equal((g.websocket as any).messages[2].fromClient, false);
});

Deno.test("state: backup survives a round trip", () => {
  const f = tflow({ resp: true });
  const s = flowToState(f);
  s.backup = norm(flowToState(tflow()));
  const g = flowFromState(norm(s));
  assert.ok(getBackup(g));
  assert.equal((norm(flowToState(g)).backup as any).response, null);
});

Deno.test("state: loading rejects bad types with the field name", () => {
  const s = norm(flowToState(tflow())) as Record<string, any>;
  s.request.port = "x";
  assert.throws(() => flowFromState(s), /request\.port should be a number, got string/);
  const s2 = norm(flowToState(tflow())) as Record<string, any>;
  s2.request.headers = [[b("a")]];
  assert.throws(() => flowFromState(s2), /request\.headers\[0\] should be a \(name, value\) pair/);
  const s3 = norm(flowToState(tflow())) as Record<string, any>;
  s3.is_replay = "maybe";
  assert.throws(() => flowFromState(s3), /is_replay/);
  const s4 = norm(flowToState(tflow())) as Record<string, any>;
  s4.version = 17;
  assert.throws(() => flowFromState(s4), /run migrateFlow first/);
});

Deno.test("compat: newer versions are refused", () => {
  assert.throws(
    () => migrateFlow({ version: 22, type: "http" }),
    (e: unknown) =>
      e instanceof FlowFormatError &&
      /cannot read files with flow format version 22, please update/.test(e.message),
  );
  assert.throws(() => migrateFlow({ version: [0, 5] }), /flow format version \(0,5\)/);
});

/** The state mitmproxy 8.1.1 writes for tflow(resp=True) (printed by get_state()). */
function v17State(): TNetDict {
  return {
    client_conn: {
      address: ["127.0.0.1", 22],
      alpn: b("http/1.1"),
      alpn_offers: [],
      certificate_list: [],
      cipher_list: [],
      cipher_name: "cipher",
      error: null,
      id: "ff076fa9-ad2d-4ece-b4d8-e85f765f8e6d",
      mitmcert: null,
      sni: "address",
      sockname: ["", 0],
      state: 0,
      timestamp_end: 946681206,
      timestamp_start: 946681200,
      timestamp_tls_setup: 946681201,
      tls: false,
      tls_established: true,
      tls_extensions: [],
      tls_version: "TLSv1.2",
    },
    comment: "",
    error: null,
    id: "8b703627-577d-4d94-a184-e4b332b425ed",
    intercepted: false,
    is_replay: null,
    marked: "",
    metadata: {},
    request: {
      authority: b(""),
      content: b("content"),
      headers: [[b("header"), b("qvalue")], [b("content-length"), b("7")]],
      host: "address",
      http_version: b("HTTP/1.1"),
      method: b("GET"),
      path: b("/path"),
      port: 22,
      scheme: b("http"),
      timestamp_end: 946681201,
      timestamp_start: 946681200,
      trailers: null,
    },
    response: {
      content: b("message"),
      headers: [[b("header-response"), b("svalue")], [b("content-length"), b("7")]],
      http_version: b("HTTP/1.1"),
      reason: b("OK"),
      status_code: 200,
      timestamp_end: 946681203,
      timestamp_start: 946681202,
      trailers: null,
    },
    server_conn: {
      address: ["address", 22],
      alpn: null,
      alpn_offers: [],
      certificate_list: [],
      cipher_list: [],
      cipher_name: null,
      error: null,
      id: "f3333902-9c10-49fe-a774-bacb300ade67",
      ip_address: ["192.168.0.1", 22],
      sni: "address",
      source_address: ["address", 22],
      state: 0,
      timestamp_end: 946681205,
      timestamp_start: 946681202,
      timestamp_tcp_setup: 946681203,
      timestamp_tls_setup: 946681204,
      tls: false,
      tls_established: true,
      tls_version: "TLSv1.2",
      via: null,
      via2: null,
    },
    timestamp_created: 946681200.0,
    type: "http",
    version: 17,
    websocket: null,
  };
}

Deno.test("compat: migrate a mitmproxy 8.1 (v17) flow", () => {
  const f = flowFromState(migrateFlow(v17State()));
  assert.equal(f.id, "8b703627-577d-4d94-a184-e4b332b425ed");
  assert.deepEqual(f.clientConn.peername, ["127.0.0.1", 22]);
  assert.equal(f.clientConn.cipher, "cipher");
  assert.equal(f.clientConn.proxyMode, "regular");
  assert.equal(f.clientConn.transportProtocol, "tcp");
  assert.deepEqual(f.serverConn.peername, ["192.168.0.1", 22]);
  assert.deepEqual(f.serverConn.sockname, ["address", 22]);
  assert.equal(f.serverConn.via, null);
  assert.equal(f.request.url, "http://address:22/path");
  assert.equal(f.response!.text, "message");
  // and the v17 writer is its inverse
  const back = norm(flowToState(f, 17));
  assert.deepEqual(back, norm(v17State()));
});

Deno.test("compat: downgrade 21 -> 17 -> 21 is lossless for what v17 can hold", () => {
  const f = tflow({ resp: true, err: true, ws: true });
  f.serverConn.via = ["https", ["up", 8080]];
  f.clientConn.tlsVersion = "QUICv1";
  const v17 = norm(flowToState(f, 17)) as Record<string, any>;
  assert.equal(v17.version, 17);
  assert.equal(v17.client_conn.tls_version, "QUIC");
  assert.deepEqual(v17.server_conn.via2, ["https", ["up", 8080]]);
  assert.equal(v17.server_conn.via, null);
  assert.equal("proxy_mode" in v17.client_conn, false);
  const g = flowFromState(migrateFlow(v17));
  assertSameFlow(f, g);
  for (const v of [18, 19, 20]) assertSameFlow(f, flowFromState(migrateFlow(norm(flowToState(f, v)))));
  assert.throws(() => downgradeFlow(norm(flowToState(f)), 16), /cannot write flow format version 16/);
});

/** A flow as mitmproxy 4.x wrote it (format version 7), built from compat.py's converter inputs. */
function v7State(extra: Record<string, unknown> = {}): TNetDict {
  return {
    version: 7,
    type: "http",
    id: "d2a3b1c4-0000-4000-8000-000000000007",
    error: null,
    intercepted: false,
    marked: true,
    mode: "regular",
    metadata: {},
    client_conn: {
      id: "c1",
      address: ["10.0.0.2", 50000],
      tls_established: true,
      timestamp_start: 1500000000.5,
      timestamp_end: 1500000010.0,
      timestamp_tls_setup: 1500000000.75,
      clientcert: null,
      mitmcert: null,
      sni: b("example.com"),
      alpn_proto_negotiated: b("h2"),
      cipher_name: "ECDHE-RSA-AES128-GCM-SHA256",
      tls_version: "TLSv1.2",
      tls_extensions: null,
    },
    server_conn: {
      id: "s1",
      address: ["example.com", 443],
      ip_address: ["93.184.216.34", 443],
      source_address: ["10.0.0.1", 40000],
      tls_established: true,
      cert: b("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"),
      sni: "example.com",
      alpn_proto_negotiated: b("h2"),
      tls_version: "TLSv1.2",
      timestamp_start: 1500000000.6,
      timestamp_tcp_setup: 1500000000.65,
      timestamp_tls_setup: 1500000000.7,
      timestamp_end: 1500000009.0,
      via: null,
    },
    request: {
      first_line_format: "relative",
      method: b("POST"),
      scheme: b("https"),
      host: "example.com",
      port: 443,
      path: b("/submit?x=1"),
      http_version: b("HTTP/2.0"),
      headers: [[b("content-type"), b("text/plain")]],
      content: b("body"),
      timestamp_start: 1500000001.0,
      timestamp_end: 1500000001.5,
      is_replay: true,
    },
    response: {
      http_version: b("HTTP/2.0"),
      status_code: 201,
      reason: b(""),
      headers: [[b("server"), b("x")]],
      content: b("created"),
      timestamp_start: 1500000002.0,
      timestamp_end: 1500000002.5,
      is_replay: false,
    },
    ...extra,
  };
}

Deno.test("compat: migrate a v7 (mitmproxy 4.x) flow to 21", () => {
  const s = migrateFlow(v7State(), new MigrationContext()) as Record<string, any>;
  assert.equal(s.version, 21);
  assert.equal(s.marked, ":default:");
  assert.equal(s.comment, "");
  assert.equal(s.is_replay, "request");
  assert.equal(s.timestamp_created, 1500000001.0);
  assert.equal("mode" in s, false);
  assert.equal(s.websocket, null);
  assert.deepEqual(s.client_conn.peername, ["10.0.0.2", 50000]);
  assert.equal(s.client_conn.sni, "example.com");
  assert.equal(s.client_conn.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
  assert.deepEqual(s.client_conn.alpn_offers, [b("h2")]);
  assert.equal(s.client_conn.proxy_mode, "regular");
  assert.equal(s.client_conn.tls, true);
  assert.deepEqual(s.server_conn.peername, ["93.184.216.34", 443]);
  assert.deepEqual(s.server_conn.sockname, ["10.0.0.1", 40000]);
  assert.equal(s.server_conn.certificate_list.length, 1);
  for (const k of ["tls_established", "state", "via2", "ip_address", "cipher_name", "tls_extensions"]) {
    assert.equal(k in s.server_conn || k in s.client_conn, false, k);
  }
  const f = flowFromState(s);
  assert.equal(f.request.method, "POST");
  assert.equal(f.request.url, "https://example.com/submit?x=1");
  assert.equal(f.request.authority, "");
  assert.equal(f.request.trailers, null);
  assert.equal(f.response!.statusCode, 201);
  assert.equal(f.marked, ":default:");
  assert.equal(f.isReplay, "request");
  assert.deepEqual(f.serverConn.address, ["example.com", 443]);
});

Deno.test("compat: v11 websocket flows are merged into their handshake flow", () => {
  const ctx = new MigrationContext();
  const hs = migrateFlow(v7State({ metadata: { websocket: true } }), ctx);
  assert.equal(hs.websocket, null);
  // a version-11 WebSocketFlow referencing the handshake
  const handshake11 = v7State({ metadata: { websocket: true } });
  const wsFlow: TNetDict = {
    ...v7State(),
    version: 11,
    type: "websocket",
    id: "ws-1",
    metadata: { websocket_handshake: handshake11.id as string },
    messages: [[1, true, b("hi"), 1500000003.0]],
    close_sender: "client",
    close_code: 1000,
    close_reason: "bye",
  };
  // bring the handshake to v11 in the same context first
  const ctx2 = new MigrationContext();
  const h = handshake11 as Record<string, any>;
  migrateFlow(h, ctx2);
  const merged = migrateFlow(wsFlow, ctx2) as Record<string, any>;
  assert.equal(merged.type, "http");
  assert.equal(merged.websocket.closed_by_client, true);
  assert.deepEqual(merged.websocket.messages, [[1, true, b("hi"), 1500000003.0, false]]);
  assert.match(merged.metadata.duplicated, /migrated from an old file format/);
});
