/** JSON shapes of the web API, as mitmweb's `app.py` has them (`flow_to_json`, `dump_dicts`, log entries). */
import type { HTTPFlow } from "../flow/flow.ts";
import type { Connection } from "../flow/connection.ts";
import type { Options } from "../addons/options.ts";
import type { LogEntry } from "../addons/log.ts";
import type { FlowSummary } from "../store/store.ts";
import { X509Certificate } from "node:crypto";

/** mitmproxy's emoji name for the default marker. */
function marker(m: string): string {
  return m === ":default:" ? "🔴" : m;
}

/** "CN=a\nO=b" (node:crypto's form) as [["CN", "a"], ["O", "b"]]. */
function nameParts(s: string): [string, string][] {
  return s.split("\n").filter(Boolean).map((l) => {
    const i = l.indexOf("=");
    return [l.slice(0, i), l.slice(i + 1)];
  });
}

/**
 * mitmweb's `cert_to_json` for a PEM certificate: key type and size, SHA-256 fingerprint, validity (epoch
 * seconds), serial, subject and issuer as name/value pairs, subject alternative names. Null if unparsable.
 */
export function certJson(pem: string): Record<string, unknown> | null {
  try {
    const c = new X509Certificate(pem);
    const key = c.publicKey;
    const d = key.asymmetricKeyDetails ?? {};
    const type = (key.asymmetricKeyType ?? "").toUpperCase();
    const size = d.modulusLength ?? (d.namedCurve ? Number(/\d+/.exec(d.namedCurve)?.[0] ?? 0) : 0);
    return {
      keyinfo: [type === "EC" ? "EC (" + (d.namedCurve ?? "") + ")" : type, size],
      sha256: c.fingerprint256.replaceAll(":", "").toLowerCase(),
      notbefore: Math.floor(Date.parse(c.validFrom) / 1000),
      notafter: Math.floor(Date.parse(c.validTo) / 1000),
      serial: BigInt("0x" + c.serialNumber).toString(),
      subject: nameParts(c.subject),
      issuer: nameParts(c.issuer),
      altnames: (c.subjectAltName ?? "").split(", ").filter(Boolean).map((a) => a.replace(/^[^:]*:/, "")),
    };
  } catch {
    return null;
  }
}

function conn(c: Connection, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    id: c.id,
    peername: c.peername,
    sockname: c.sockname,
    tls_established: c.tls,
    cert: c.certificateList.length ? certJson(c.certificateList[0]) : null,
    sni: c.sni,
    cipher: c.cipher,
    alpn: c.alpn,
    tls_version: c.tlsVersion,
    timestamp_start: c.timestampStart,
    timestamp_tls_setup: c.timestampTlsSetup,
    timestamp_end: c.timestampEnd,
    ...extra,
  };
}

/** A content change token standing in for mitmweb's sha256 `contentHash`: length plus a cheap hash. */
function contentHash(b: Uint8Array | null): string | null {
  if (b === null) return null;
  let h = 0x811c9dc5;
  const step = b.length > 4096 ? Math.floor(b.length / 4096) : 1;
  for (let i = 0; i < b.length; i += step) h = Math.imul(h ^ b[i], 0x01000193);
  return `${b.length.toString(16)}-${(h >>> 0).toString(16)}`;
}

/** mitmweb's `flow_to_json`: the flow without bodies. */
export function flowToJson(f: HTTPFlow, modified = false): Record<string, unknown> {
  const q = f.request;
  const r = f.response;
  const qraw = q.rawContent;
  const out: Record<string, unknown> = {
    id: f.id,
    intercepted: f.intercepted,
    is_replay: f.isReplay,
    type: f.type,
    modified,
    marked: f.marked ? marker(f.marked) : "",
    comment: f.comment,
    timestamp_created: f.timestampCreated,
    client_conn: conn(f.clientConn, {}),
    server_conn: conn(f.serverConn, {
      address: f.serverConn.address,
      timestamp_tcp_setup: f.serverConn.timestampTcpSetup,
    }),
    request: {
      method: q.method,
      scheme: q.scheme,
      host: q.host,
      port: q.port,
      path: q.path,
      http_version: q.httpVersion,
      headers: q.headers.fields,
      contentLength: qraw === null ? null : qraw.length,
      contentHash: contentHash(qraw),
      timestamp_start: q.timestampStart,
      timestamp_end: q.timestampEnd,
      pretty_host: q.prettyHost,
    },
  };
  if (f.error) out.error = { msg: f.error.msg, timestamp: f.error.timestamp };
  if (r) {
    const rraw = r.rawContent;
    const resp: Record<string, unknown> = {
      http_version: r.httpVersion,
      status_code: r.statusCode,
      reason: r.reason,
      headers: r.headers.fields,
      contentLength: rraw === null ? null : rraw.length,
      contentHash: contentHash(rraw),
      timestamp_start: r.timestampStart,
      timestamp_end: r.timestampEnd,
    };
    if (r.trailers?.fields.length) resp.trailers = r.trailers.fields;
    out.response = resp;
  }
  const ws = f.websocket as { messages?: { content: Uint8Array; timestamp: number }[] } & Record<string, any>;
  if (ws) {
    const msgs = ws.messages ?? [];
    out.websocket = {
      messages_meta: {
        contentLength: msgs.reduce((n, m) => n + m.content.length, 0),
        count: msgs.length,
        timestamp_last: msgs.length ? msgs[msgs.length - 1].timestamp : null,
      },
      closed_by_client: ws.closedByClient ?? null,
      close_code: ws.closeCode ?? null,
      close_reason: ws.closeReason ?? null,
      timestamp_end: ws.timestampEnd ?? null,
    };
  }
  return out;
}

/** A list row for the UI (the summary, marker shown as mitmweb does). */
export function summaryJson(s: FlowSummary, highlighted: boolean): Record<string, unknown> {
  return { ...s, marked: s.marked ? marker(s.marked) : "", highlighted };
}

const TYPE_NAMES: Record<string, string> = {
  bool: "bool",
  str: "str",
  int: "int",
  "optional str": "optional str",
  "optional int": "optional int",
  strs: "sequence of str",
};

/** mitmproxy's `optmanager.dump_dicts`. */
export function optionsJson(o: Options, keys?: Iterable<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const names = keys ? [...keys].sort() : o.specs().map((s) => s.name);
  for (const k of names) {
    const s = o.spec(k);
    if (!s) continue;
    out[k] = {
      type: TYPE_NAMES[s.type] ?? s.type,
      default: s.default,
      value: o.get(k),
      help: s.help,
      choices: s.choices ?? null,
    };
  }
  return out;
}

/** mitmweb's `logentry_to_json` (plus the timestamp). */
export function logJson(e: LogEntry, id: number): Record<string, unknown> {
  return { id, message: e.msg, level: e.level, timestamp: e.timestamp };
}
