import assert from "node:assert/strict";
import { encodeHttpFlowView } from "../../../lib/io/flow_encode.ts";
import { flowFromState, flowToState, setBackup } from "../../../lib/io/state.ts";
import { dumps, loads, type TNetDict } from "../../../lib/io/tnetstring.ts";
import { FlowWriter, readFlows } from "../../../lib/io/flowfile.ts";
import { Headers } from "../../../lib/http/headers.ts";
import type { HTTPFlow } from "../../../lib/flow/flow.ts";
import { tclientConn, tflow, treq, tresp, tserverConn } from "./_tflow.ts";

/** The generic path's bytes: what the fast encoder must produce. */
const generic = (f: HTTPFlow) => dumps(flowToState(f));
const fast = (f: HTTPFlow) => encodeHttpFlowView(f).slice();
const text = (b: Uint8Array) => new TextDecoder("latin1").decode(b);

function assertSameBytes(f: HTTPFlow, what: string): void {
  const want = generic(f);
  const got = fast(f);
  if (text(got) !== text(want)) assert.fail(`${what}:\nfast    ${text(got)}\ngeneric ${text(want)}`);
}

/** Flows that exercise every field and every kind of value the state holds. */
function variants(): [string, HTTPFlow][] {
  const out: [string, HTTPFlow][] = [];
  const add = (what: string, f: HTTPFlow) => out.push([what, f]);
  add("request only", tflow());
  add("with response", tflow({ resp: true }));
  add("with error", tflow({ err: true }));
  add("error with text", tflow({ resp: true, err: "connection reset by peer" }));
  add("websocket", tflow({ resp: true, ws: true }));
  {
    const f = tflow({ resp: true });
    f.marked = ":star:";
    f.comment = "a comment with ümlauts and 💥";
    f.isReplay = "request";
    f.intercepted = true;
    f.timestampCreated = 1733238000.123456;
    add("marked, comment, replay, intercepted", f);
  }
  {
    const f = tflow({ resp: true });
    f.metadata = { a: 1, nested: { list: [1, "two", null, 2.5], flag: true }, skip: undefined, fn: () => 1 };
    add("metadata", f);
  }
  {
    const f = tflow({ resp: true });
    f.metadata = { toJSON: () => ({ via: "toJSON" }) } as unknown as Record<string, unknown>;
    add("metadata with toJSON", f);
  }
  {
    const f = tflow({ resp: true });
    f.request.headers = new Headers([["X-Latin1", "caf\u00e9"], ["X-Wide", "\u20ac uro"], ["Empty", ""]]);
    f.response!.headers = new Headers([]);
    f.response!.reason = "Gr\u00fc\u00dfe";
    add("latin1, wide and empty headers", f);
  }
  {
    const f = tflow({ resp: true });
    f.request.trailers = new Headers([["x-trailer", "1"]]);
    f.response!.trailers = new Headers([]);
    f.request.rawContent = null;
    f.response!.rawContent = new Uint8Array(0);
    add("trailers, no body, empty body", f);
  }
  {
    const f = tflow({ resp: true });
    f.request.timestampEnd = null;
    f.response!.timestampEnd = null;
    f.request.port = 65535;
    f.response!.statusCode = 599;
    add("unfinished messages", f);
  }
  {
    const f = tflow({
      resp: tresp({ statusCode: 101, reason: "Switching Protocols" }),
    });
    f.request = treq({
      method: "CONNECT",
      scheme: "https",
      host: "[::1]",
      port: 443,
      authority: "[::1]:443",
      path: "",
    });
    add("CONNECT to IPv6", f);
  }
  {
    const client = tclientConn({
      peername: ["::1", 50000, 0, 0] as unknown as [string, number],
      tls: true,
      tlsVersion: "TLSv1.3",
      cipher: "TLS_AES_128_GCM_SHA256",
      cipherList: ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"],
      sni: "example.com",
      alpn: "h2",
      alpnOffers: ["h2", "http/1.1"],
      certificateList: ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"],
      timestampTlsSetup: 946681201.5,
      timestampEnd: 946681299,
      error: "client went away",
      mitmcert: "PEM\u00ff",
    });
    client.timestampStart = null;
    const server = tserverConn({
      tls: true,
      alpn: null,
      sni: null,
      via: ["http", ["proxy.local", 8080]],
      timestampTcpSetup: null,
      timestampStart: null,
    } as never);
    const f = tflow({ resp: true });
    f.clientConn = client;
    f.serverConn = server;
    add("TLS connections, via, null timestamps", f);
  }
  {
    const f = tflow({ resp: true });
    f.serverConn.address = null;
    f.clientConn.sockname = null;
    f.clientConn.proxyMode = "reverse:https://example.com";
    add("no server address", f);
  }
  {
    const f = tflow({ resp: true });
    f.response!.rawContent = new Uint8Array(200_000).map((_, i) => i & 0xff);
    add("a 200 KB body", f);
  }
  {
    const f = tflow({ resp: true });
    const state = flowToState(tflow());
    setBackup(f, state);
    add("with a backup", f);
  }
  return out;
}

Deno.test("flow_encode: the same bytes as dumps(flowToState(flow)) for every kind of field", () => {
  for (const [what, f] of variants()) assertSameBytes(f, what);
});

Deno.test("flow_encode: a flow read back from its bytes encodes to the same bytes again", () => {
  for (const [what, f] of variants()) {
    const bytes = fast(f);
    const back = flowFromState(loads(bytes) as TNetDict);
    assert.equal(text(fast(back)), text(generic(back)), what);
  }
});

Deno.test("flow_encode: the view is overwritten by the next encoding (callers copy or write at once)", () => {
  const a = encodeHttpFlowView(tflow({ resp: true }));
  const copy = a.slice();
  encodeHttpFlowView(tflow({ err: "other" }));
  assert.notEqual(text(a), text(copy));
});

Deno.test("flow_encode: FlowWriter writes the fast path in v21 and the state path for older versions", async () => {
  const flows = variants().map(([, f]) => f);
  for (const version of [21, 17]) {
    const chunks: Uint8Array[] = [];
    const w = new FlowWriter({
      write: (b: Uint8Array) => (chunks.push(b.slice()), Promise.resolve(b.length)),
    }, {
      version,
    });
    for (const f of flows) await w.add(f);
    const want = flows.map((f) => text(dumps(flowToState(f, version)))).join("");
    assert.equal(chunks.map(text).join(""), want, `version ${version}`);
    let n = 0;
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeFile(file, new Uint8Array(chunks.flatMap((c) => [...c])));
      for await (const _ of readFlows(file)) n++;
    } finally {
      await Deno.remove(file);
    }
    assert.equal(n, flows.length);
  }
});
