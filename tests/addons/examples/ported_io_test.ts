/** Ports of mitmproxy's http-stream-modify.py, http-trailers.py and io-read-saved-flows.py. */
import assert from "node:assert/strict";
import { Headers, Response as MResponse } from "../../../mod.ts";
import { FlowWriter } from "../../../mod.ts";
import { sandboxed, tflow } from "../../../testing.ts";
import { curl, startInProcess, startOrigin } from "../../e2e/helpers.ts";
import { example } from "./_sandbox.ts";
import * as streamModify from "../../../addons/examples/http_stream_modify.ts";
import { printFlows } from "../../../addons/examples/io_read_saved_flows.ts";

Deno.test("http_stream_modify.ts: a streamed response is rewritten chunk by chunk through the proxy", async () => {
  const origin = startOrigin(() => {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const part of ["foo one ", "foo two ", "foo three"]) c.enqueue(enc.encode(part));
        c.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  });
  const proxy = await startInProcess([{
    name: "http_stream_modify",
    responseheaders: streamModify.responseheaders,
  }]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/`]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(r.body, "bar one bar two bar three");
    assert.deepEqual(streamModify.modify(new Uint8Array()), new Uint8Array());
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("http_trailers.ts: logs trailers and injects one on /inject_trailers (sandboxed)", async () => {
  await using tctx = await sandboxed(example("http_trailers.ts"));
  const f = tflow({ resp: MResponse.make(200, "body") });
  f.request.method = "POST";
  f.request.path = "/inject_trailers";
  f.request.content = "data";
  await tctx.hook("request", f);
  assert.equal(f.request.headers.get("transfer-encoding"), "chunked");
  assert.equal(f.request.headers.get("trailer"), "x-my-injected-trailer-header");
  assert.deepEqual([...f.request.trailers!], [["x-my-injected-trailer-header", "foobar"]]);
  await tctx.hook("response", f);
  assert.deepEqual([...f.response!.trailers!], [["x-my-injected-trailer-header", "foobar"]]);
  await tctx.waitForLog("Injected a new response trailer... x-my-injected-trailer-header");
  const g = tflow({ resp: true });
  g.response!.trailers = new Headers([["grpc-status", "0"]]);
  await tctx.hook("response", g);
  await tctx.waitForLog("HTTP Trailers detected! Response contains: grpc-status,0");
  const plainGet = tflow();
  plainGet.request.path = "/inject_trailers";
  plainGet.request.content = new Uint8Array();
  await tctx.hook("request", plainGet);
  assert.equal(plainGet.request.trailers, null, "no trailers on a bodiless HTTP/1.1 request");
});

Deno.test("io_read_saved_flows.ts: prints each flow of a file; a damaged file is reported", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const w = await FlowWriter.open(`${dir}/a.mitm`);
    await w.add(tflow({ resp: true }));
    await w.close();
    const out: string[] = [];
    await printFlows(`${dir}/a.mitm`, (s) => out.push(s));
    assert.match(out[0], /^<HTTPFlow\n {2}request = Request\(GET address:22\/path\)/);
    assert.equal(out[1], "address");
    assert.match(out[2], /method: "GET"/);
    const bytes = await Deno.readFile(`${dir}/a.mitm`);
    await Deno.writeFile(`${dir}/bad.mitm`, bytes.slice(0, bytes.length - 5));
    const bad: string[] = [];
    await printFlows(`${dir}/bad.mitm`, (s) => bad.push(s));
    assert.match(bad.at(-1)!, /^Flow file corrupted: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
