/**
 * Flow file interop with a real mitmproxy 8.1 (flow format 17): Python writes, we read; we write v17,
 * Python reads. Skipped when /usr/bin/mitmdump is missing.
 */
import assert from "node:assert/strict";
import { FlowWriter, readFlowsToArray } from "../../../lib/io/flowfile.ts";
import { parseFilter } from "../../../lib/flow/filter.ts";
import { Headers } from "../../../lib/http/headers.ts";
import { tflow } from "./_tflow.ts";
import { gzipSync } from "node:zlib";

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

const HAS_MITMPROXY = exists("/usr/bin/mitmdump") && exists("/usr/bin/python3");
const SKIP = HAS_MITMPROXY ? "" : " [ignored: /usr/bin/mitmdump not installed]";

async function python(
  code: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", code, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test({
  name: "interop: read a flow file written by mitmproxy 8.1" + SKIP,
  ignore: !HAS_MITMPROXY,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/py.mitm`;
      const r = await python(
        `
import sys, gzip
from mitmproxy.test import tflow
from mitmproxy import io, http
with open(sys.argv[1], "wb") as fo:
    w = io.FlowWriter(fo)
    w.add(tflow.tflow(resp=True))
    w.add(tflow.tflow(err=True))
    w.add(tflow.twebsocketflow())
    w.add(tflow.ttcpflow())
    f = tflow.tflow(resp=True)
    f.marked = ":default:"
    f.comment = "hello"
    f.metadata = {"k": "v", "n": 1.5}
    f.is_replay = "request"
    f.request.headers["x-bin"] = "\\xff\\xfe"
    f.request.raw_content = bytes(range(256))
    f.response.headers["content-encoding"] = "gzip"
    f.response.raw_content = gzip.compress(b"decoded body")
    f.server_conn.via = ("http", ("proxy", 3128))
    w.add(f)
`,
        path,
      );
      assert.equal(r.code, 0, r.stderr);
      const skipped: string[] = [];
      const flows = await readFlowsToArray(path, { onSkip: (t) => skipped.push(t) });
      assert.deepEqual(skipped, ["tcp"]);
      assert.equal(flows.length, 4);
      const [a, b, ws, f] = flows;
      assert.equal(a.request.url, "http://address:22/path");
      assert.equal(a.request.headers.get("header"), "qvalue");
      assert.equal(a.response!.statusCode, 200);
      assert.equal(a.response!.text, "message");
      assert.deepEqual(a.clientConn.peername, ["127.0.0.1", 22]);
      assert.deepEqual(a.serverConn.peername, ["192.168.0.1", 22]);
      assert.equal(a.clientConn.cipher, "cipher");
      assert.equal(a.timestampCreated, 946681200);
      assert.equal(b.error!.msg, "error");
      assert.equal(b.response, null);
      assert.equal((ws.websocket as any).messages.length, 3);
      assert.equal((ws.websocket as any).closeCode, 1000);
      assert.ok(parseFilter("~websocket & ~b 'hello text'")(ws));
      assert.equal(f.marked, ":default:");
      assert.equal(f.comment, "hello");
      assert.deepEqual(f.metadata, { k: "v", n: 1.5 });
      assert.equal(f.isReplay, "request");
      assert.equal(
        f.request.headers.get("x-bin"),
        "\xc3\xbf\xc3\xbe",
        "Python encodes str header values as UTF-8",
      );
      assert.deepEqual(f.request.rawContent, Uint8Array.from({ length: 256 }, (_, i) => i));
      assert.equal(f.response!.text, "decoded body");
      assert.deepEqual(f.serverConn.via, ["http", ["proxy", 3128]]);
      assert.ok(parseFilter("~bs 'decoded body' & ~marked & ~replayq")(f));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "interop: mitmproxy 8.1 reads our v17 files (and refuses v21)" + SKIP,
  ignore: !HAS_MITMPROXY,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/ours.mitm`;
      const w = await FlowWriter.open(path, { version: 17 });
      const f1 = tflow({ resp: true, ws: true });
      f1.marked = ":default:";
      f1.comment = "from deno";
      f1.metadata = { answer: 42, list: ["a", 1.5] };
      f1.request.headers.append("x-bin", "\xff");
      f1.request.rawContent = new Uint8Array([0, 255]);
      f1.response!.headers.set("content-encoding", "gzip");
      f1.response!.rawContent = new Uint8Array(gzipSync(new TextEncoder().encode("zipped")));
      f1.request.trailers = new Headers([["t", "1"]]);
      f1.serverConn.via = ["https", ["up", 8080]];
      const f2 = tflow({ err: true });
      f2.isReplay = "response";
      await w.add(f1);
      await w.add(f2);
      await w.close();
      const r = await python(
        `
import sys, json
from mitmproxy import io
with open(sys.argv[1], "rb") as fo:
    flows = list(io.FlowReader(fo).stream())
out = []
for f in flows:
    out.append({
        "id": f.id,
        "url": f.request.url,
        "method": f.request.method,
        "headers": [[k.decode("latin1"), v.decode("latin1")] for k, v in f.request.headers.fields],
        "req_raw": list(f.request.raw_content),
        "trailers": dict(f.request.trailers) if f.request.trailers else None,
        "status": f.response.status_code if f.response else None,
        "resp_text": f.response.text if f.response else None,
        "error": f.error.msg if f.error else None,
        "marked": f.marked,
        "comment": f.comment,
        "metadata": f.metadata,
        "is_replay": f.is_replay,
        "ws": [[m.type.value, m.from_client, m.content.decode(), m.timestamp] for m in f.websocket.messages] if f.websocket else None,
        "client_peer": list(f.client_conn.peername),
        "server_peer": list(f.server_conn.peername),
        "server_addr": list(f.server_conn.address),
        "via": [f.server_conn.via[0], list(f.server_conn.via[1])] if f.server_conn.via else None,
        "ts_created": f.timestamp_created,
        "ts_req": f.request.timestamp_start,
        "tls_established": f.client_conn.tls_established,
    })
print(json.dumps(out))
`,
        path,
      );
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout);
      assert.equal(got.length, 2);
      assert.deepEqual(got[0], {
        id: f1.id,
        url: "http://address:22/path",
        method: "GET",
        headers: [["header", "qvalue"], ["content-length", "7"], ["x-bin", "\xff"]],
        req_raw: [0, 255],
        trailers: { t: "1" },
        status: 200,
        resp_text: "zipped",
        error: null,
        marked: ":default:",
        comment: "from deno",
        metadata: { answer: 42, list: ["a", 1.5] },
        is_replay: null,
        ws: [[2, true, "hello binary", 946681203], [1, true, "hello text", 946681204], [
          1,
          false,
          "it's me",
          946681205,
        ]],
        client_peer: ["127.0.0.1", 22],
        server_peer: ["192.168.0.1", 22],
        server_addr: ["address", 22],
        via: ["https", ["up", 8080]],
        ts_created: 946681200,
        ts_req: 946681200,
        tls_established: true,
      });
      assert.equal(got[1].error, "error");
      assert.equal(got[1].is_replay, "response");
      assert.equal(got[1].status, null);

      // mitmdump -r reads it too, and the filter language agrees on what matches
      const dump = await new Deno.Command("/usr/bin/mitmdump", {
        args: ["-n", "-r", path, "--set", "flow_detail=0", "-w", `${dir}/rewritten.mitm`, "~s"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(dump.code, 0, new TextDecoder().decode(dump.stderr));
      const rewritten = await readFlowsToArray(`${dir}/rewritten.mitm`);
      assert.deepEqual(rewritten.map((f) => f.id), [f1.id]);

      // v21 is too new for mitmproxy 8.1
      const w21 = await FlowWriter.open(`${dir}/v21.mitm`);
      await w21.add(tflow());
      await w21.close();
      const r21 = await python(
        `
import sys
from mitmproxy import io, exceptions
try:
    list(io.FlowReader(open(sys.argv[1], "rb")).stream())
except exceptions.FlowReadException as e:
    print(e)
`,
        `${dir}/v21.mitm`,
      );
      assert.match(r21.stdout, /cannot read files with flow format version 21, please update mitmproxy/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
