/**
 * Flow format migrations, as mitmproxy's `io/compat.py`: upgrade any flow state from format (0, 11) up to
 * the current version {@link FLOW_FORMAT_VERSION} (21), and downgrade a current state to older versions
 * (down to 17, what mitmproxy 8.x reads).
 *
 * States are the plain objects produced by the tnetstring decoder (dict keys are strings; `;` values are
 * strings, `,` values are `Uint8Array`). Migrations mutate and return the state.
 *
 * @module
 */

/** The flow format version this code reads and writes by default. */
export const FLOW_FORMAT_VERSION = 21;

/** The oldest version {@link downgradeFlow} can produce (mitmproxy 8.x). */
export const MIN_WRITE_VERSION = 17;

// deno-lint-ignore no-explicit-any
type State = Record<string, any>;

/**
 * Per-file migration memory: old formats need to correlate flows (connection ids for 4->5, WebSocket
 * handshakes for 11->12). Use one context per file read.
 */
export class MigrationContext {
  /** Connection-key -> uuid, for 4->5. */
  clientConnections: Map<string, string> = new Map();
  /** Connection-key -> uuid, for 4->5. */
  serverConnections: Map<string, string> = new Map();
  /** Handshake flow id -> flow state, for 11->12. */
  websocketHandshakes: Map<string, State> = new Map();
}

const defaultContext = new MigrationContext();

const textDecoder = new TextDecoder();

function alwaysStr(v: unknown): unknown {
  return v instanceof Uint8Array ? textDecoder.decode(v) : v;
}

function alwaysStrBackslash(v: unknown): unknown {
  if (!(v instanceof Uint8Array)) return v;
  let s = "";
  for (const b of v) s += b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  return s;
}

function enc(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function pop(o: State, k: string, dflt?: unknown): any {
  if (!o || !(k in o)) return dflt;
  const v = o[k];
  delete o[k];
  return v;
}

function convertUnicode(data: State): State {
  const values: Record<string, unknown> = {
    type: true,
    id: true,
    request: { first_line_format: true },
    error: { msg: true },
  };
  const conv = (o: State | null, spec: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(spec)) {
      if (!o || !(k in o)) continue;
      if (v === true) o[k] = alwaysStr(o[k]);
      else conv(o[k], v as Record<string, unknown>);
    }
  };
  conv(data, values);
  return data;
}

function httpVersion(v: unknown): Uint8Array {
  return enc("HTTP/" + (Array.isArray(v) ? v.map(String).join(".") : String(v)));
}

type Converter = (data: State, ctx: MigrationContext) => State;

const converters: Record<string, Converter> = {
  "0.11": (d) => ((d.version = [0, 12]), d),
  "0.12": (d) => ((d.version = [0, 13]), d),
  "0.13": (d) => {
    d.request.first_line_format = pop(d.request, "form_in");
    d.request.http_version = httpVersion(pop(d.request, "httpversion"));
    if (d.response) {
      d.response.http_version = httpVersion(pop(d.response, "httpversion"));
      d.response.status_code = pop(d.response, "code");
      d.response.body = pop(d.response, "content");
    }
    delete d.server_conn.state;
    d.server_conn.via = null;
    d.version = [0, 14];
    return d;
  },
  "0.14": (d) => ((d.version = [0, 15]), d),
  "0.15": (d) => {
    for (const m of ["request", "response"]) {
      if (d[m] && "body" in d[m]) d[m].content = pop(d[m], "body");
    }
    if (d.response && "msg" in d.response) d.response.reason = pop(d.response, "msg");
    if (d.request) delete d.request.form_out;
    d.version = [0, 16];
    return d;
  },
  "0.16": (d) => {
    d.server_conn.peer_address = null;
    d.version = [0, 17];
    return d;
  },
  "0.17": (d) => {
    d = convertUnicode(d);
    d.server_conn.ip_address = pop(d.server_conn, "peer_address", null);
    d.marked = false;
    d.version = [0, 18];
    return d;
  },
  "0.18": (d) => {
    d = convertUnicode(d);
    if (d.request) {
      delete d.request.stickyauth;
      delete d.request.stickycookie;
    }
    Object.assign(d.client_conn, {
      sni: null,
      alpn_proto_negotiated: null,
      cipher_name: null,
      tls_version: null,
    });
    d.server_conn.alpn_proto_negotiated = null;
    if (d.server_conn.via) d.server_conn.via.alpn_proto_negotiated = null;
    d.mode = "regular";
    d.metadata = {};
    d.version = [0, 19];
    return d;
  },
  "0.19": (d) => {
    d = convertUnicode(d);
    d.version = [1, 0, 0];
    return d;
  },
  "1.0": (d) => {
    d.version = [2, 0, 0];
    const sc = d.server_conn;
    d.client_conn.address = d.client_conn.address?.address ?? null;
    sc.address = sc.address?.address ?? null;
    sc.source_address = sc.source_address?.address ?? null;
    if (sc.ip_address) sc.ip_address = sc.ip_address.address;
    if (sc.via) {
      sc.via.address = sc.via.address?.address ?? null;
      sc.via.source_address = sc.via.source_address?.address ?? null;
      if (sc.via.ip_address) sc.via.ip_address = sc.via.ip_address.address;
    }
    return d;
  },
  "2.0": (d) => {
    d.version = [3, 0, 0];
    d.client_conn.mitmcert = null;
    d.server_conn.tls_version = null;
    if (d.server_conn.via) d.server_conn.via.tls_version = null;
    return d;
  },
  "3.0": (d) => ((d.version = 4), d),
  4: (d, ctx) => {
    d.version = 5;
    const key = (ts: unknown, addr: unknown) =>
      JSON.stringify([ts, ...(Array.isArray(addr) ? addr : [addr])]);
    const getId = (m: Map<string, string>, k: string) => {
      let id = m.get(k);
      if (!id) m.set(k, id = crypto.randomUUID());
      return id;
    };
    const cc = d.client_conn, sc = d.server_conn;
    cc.id = getId(ctx.clientConnections, key(cc.timestamp_start, cc.address));
    sc.id = getId(ctx.serverConnections, key(sc.timestamp_start, sc.source_address));
    if (sc.via) sc.via.id = getId(ctx.serverConnections, key(sc.via.timestamp_start, sc.via.source_address));
    return d;
  },
  5: (d) => {
    d.version = 6;
    for (const c of [d.client_conn, d.server_conn, d.server_conn?.via]) {
      if (!c) continue;
      c.tls_established = pop(c, "ssl_established");
      c.timestamp_tls_setup = pop(c, "timestamp_ssl_setup");
    }
    return d;
  },
  6: (d) => {
    d.version = 7;
    d.client_conn.tls_extensions = null;
    return d;
  },
  7: (d) => {
    d.version = 8;
    if (d.request != null) d.request.trailers = null;
    if (d.response != null) d.response.trailers = null;
    return d;
  },
  8: (d) => {
    d.version = 9;
    let reqReplay = false, respReplay = false;
    if ("request" in d) {
      delete d.request.first_line_format;
      d.request.authority = new Uint8Array(0);
      reqReplay = pop(d.request, "is_replay", false);
    }
    if (d.response != null) respReplay = pop(d.response, "is_replay", false);
    d.is_replay = reqReplay ? "request" : respReplay ? "response" : null;
    return d;
  },
  9: (d) => {
    d.version = 10;
    const convConn = (c: State) => {
      c.state = 0;
      c.error = null;
      c.tls = c.tls_established;
      const alpn = c.alpn_proto_negotiated;
      c.alpn_offers = alpn ? [alpn] : null;
      const cipher = c.cipher_name;
      c.cipher_list = cipher ? [cipher] : null;
    };
    const convC = (c: State) => {
      c.sockname = ["", 0];
      const cc = pop(c, "clientcert", null);
      c.certificate_list = cc ? [cc] : [];
      convConn(c);
    };
    const convS = (c: State) => {
      const crt = pop(c, "cert", null);
      c.certificate_list = crt ? [crt] : [];
      c.cipher_name = null;
      c.via2 = null;
      convConn(c);
    };
    convC(d.client_conn);
    convS(d.server_conn);
    if (d.server_conn.via) convS(d.server_conn.via);
    return d;
  },
  10: (d) => {
    d.version = 11;
    const conv = (c: State) => {
      c.sni = alwaysStrBackslash(c.sni);
      c.alpn = pop(c, "alpn_proto_negotiated");
      c.alpn_offers = c.alpn_offers || [];
      c.cipher_list = c.cipher_list || [];
    };
    conv(d.client_conn);
    conv(d.server_conn);
    if (d.server_conn.via) conv(d.server_conn.via);
    return d;
  },
  11: (d, ctx) => {
    d.version = 12;
    // a copy: the original keeps migrating (and is yielded) on its own
    if (d.metadata && "websocket" in d.metadata) ctx.websocketHandshakes.set(d.id, structuredClone(d));
    if (d.metadata && "websocket_handshake" in d.metadata) {
      const ws = d;
      let h = ctx.websocketHandshakes.get(d.metadata.websocket_handshake);
      if (h) {
        ctx.websocketHandshakes.delete(d.metadata.websocket_handshake);
      } else {
        // The handshake flow is missing: make up a dummy, as mitmproxy does.
        h = {
          client_conn: d.client_conn,
          error: d.error,
          id: d.id,
          intercepted: d.intercepted,
          is_replay: d.is_replay,
          marked: d.marked,
          metadata: {},
          mode: "transparent",
          request: {
            authority: new Uint8Array(0),
            content: null,
            headers: [],
            host: enc("unknown"),
            http_version: enc("HTTP/1.1"),
            method: enc("GET"),
            path: enc("/"),
            port: 80,
            scheme: enc("http"),
            timestamp_end: 0,
            timestamp_start: 0,
            trailers: null,
          },
          response: null,
          server_conn: d.server_conn,
          type: "http",
          version: 12,
        };
      }
      d = h;
      d.metadata.duplicated = "This WebSocket flow has been migrated from an old file format version " +
        "and may appear duplicated.";
      d.websocket = {
        messages: ws.messages,
        closed_by_client: ws.close_sender === "client",
        close_code: ws.close_code,
        close_reason: ws.close_reason,
        timestamp_end: d.server_conn?.timestamp_end ?? null,
      };
    } else {
      d.websocket = null;
    }
    return d;
  },
  12: (d) => {
    d.version = 13;
    d.marked = d.marked ? ":default:" : "";
    return d;
  },
  13: (d) => {
    d.version = 14;
    d.comment = "";
    if (d.response && d.response.timestamp_start == null) {
      d.response.timestamp_start = d.request.timestamp_end;
      d.response.timestamp_end = d.request.timestamp_end + 1;
    }
    return d;
  },
  14: (d) => {
    d.version = 15;
    if (d.websocket) d.websocket.messages = d.websocket.messages.map((m: unknown[]) => [...m, false]);
    return d;
  },
  15: (d) => {
    d.version = 16;
    d.timestamp_created = (d.request ?? d.client_conn).timestamp_start;
    return d;
  },
  16: (d) => {
    d.version = 17;
    delete d.mode;
    return d;
  },
  17: (d) => {
    d.version = 18;
    d.client_conn.proxy_mode = "regular";
    return d;
  },
  18: (d) => {
    d.version = 19;
    const cc = d.client_conn, sc = d.server_conn;
    cc.peername = pop(cc, "address", null);
    if (cc.timestamp_start == null) cc.timestamp_start = 0.0;
    delete cc.tls_extensions;
    sc.peername = pop(sc, "ip_address", null);
    sc.sockname = pop(sc, "source_address", null);
    sc.via = pop(sc, "via2", null);
    for (const c of [cc, sc]) {
      delete c.tls_established;
      c.cipher = pop(c, "cipher_name", null);
      if (!("transport_protocol" in c)) c.transport_protocol = "tcp";
      for (const name of ["peername", "sockname", "address"]) {
        const a = c[name];
        if (Array.isArray(a) && a[0] instanceof Uint8Array) a[0] = alwaysStrBackslash(a[0]);
      }
    }
    if (sc.sni === true) sc.sni = null;
    return d;
  },
  19: (d) => {
    d.version = 20;
    delete d.client_conn.state;
    delete d.server_conn.state;
    return d;
  },
  20: (d) => {
    d.version = 21;
    for (const c of [d.client_conn, d.server_conn]) {
      if (c && c.tls_version === "QUIC") c.tls_version = "QUICv1";
    }
    return d;
  },
};

/** Error for flow states that cannot be migrated. */
export class FlowFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlowFormatError";
  }
}

function versionKey(v: unknown): string | number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.slice(0, 2).map(Number).join(".");
  throw new FlowFormatError(`invalid flow format version: ${String(v)}`);
}

/**
 * Upgrade a flow state of any known version to {@link FLOW_FORMAT_VERSION}, step by step.
 * Throws {@link FlowFormatError} for unknown or newer versions
 * ("cannot read files with flow format version 22, please update mitmdeno").
 */
export function migrateFlow(state: State, ctx: MigrationContext = defaultContext): State {
  let d = state;
  for (;;) {
    if (d === null || typeof d !== "object" || Array.isArray(d)) {
      throw new FlowFormatError("invalid flow: expected a dict");
    }
    if (!("version" in d)) throw new FlowFormatError("invalid flow: no version field");
    const v = versionKey(d.version);
    if (v === FLOW_FORMAT_VERSION) return d;
    const conv = converters[String(v)];
    if (!conv) {
      const newer = typeof v === "number" && v > FLOW_FORMAT_VERSION;
      throw new FlowFormatError(
        `mitmdeno cannot read files with flow format version ${
          Array.isArray(d.version) ? `(${d.version})` : v
        }` +
          (newer ? ", please update mitmdeno" : ""),
      );
    }
    try {
      d = conv(d, ctx);
    } catch (e) {
      if (e instanceof FlowFormatError) throw e;
      throw new FlowFormatError(`cannot migrate flow from format version ${v}: ${(e as Error).message}`);
    }
  }
}

const downgraders: Record<number, (d: State) => State> = {
  21: (d) => {
    for (const c of [d.client_conn, d.server_conn]) {
      if (c && c.tls_version === "QUICv1") c.tls_version = "QUIC";
    }
    d.version = 20;
    return d;
  },
  20: (d) => {
    d.client_conn.state = 0;
    d.server_conn.state = 0;
    d.version = 19;
    return d;
  },
  19: (d) => {
    const cc = d.client_conn, sc = d.server_conn;
    cc.address = pop(cc, "peername", null);
    cc.tls_extensions = [];
    sc.ip_address = pop(sc, "peername", null);
    sc.source_address = pop(sc, "sockname", null);
    sc.via2 = pop(sc, "via", null);
    sc.via = null;
    for (const c of [cc, sc]) {
      c.cipher_name = pop(c, "cipher", null);
      // mitmproxy 8's Connection.tls_established is `timestamp_tls_setup is not None`
      c.tls_established = c.timestamp_tls_setup != null;
      delete c.transport_protocol;
    }
    d.version = 18;
    return d;
  },
  18: (d) => {
    delete d.client_conn.proxy_mode;
    d.version = 17;
    return d;
  },
};

/** Convert a current-version state (mutated) to an older format version (17..21), e.g. 17 for mitmproxy 8. */
export function downgradeFlow(state: State, version: number): State {
  if (version > FLOW_FORMAT_VERSION || version < MIN_WRITE_VERSION || !Number.isInteger(version)) {
    throw new FlowFormatError(
      `cannot write flow format version ${version} (supported: ${MIN_WRITE_VERSION}..${FLOW_FORMAT_VERSION})`,
    );
  }
  let d = state;
  while (d.version > version) d = downgraders[d.version](d);
  return d;
}
