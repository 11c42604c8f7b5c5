/** The dumper prints flows as mitmproxy's dumper.py (main branch) at each flow_detail level. */
import assert from "node:assert/strict";
import { Master } from "../../lib/master.ts";
import { Dumper } from "../../addons/dumper.ts";
import { Client, FlowError, Headers, HTTPFlow, Request, Response, Server } from "../../mod.ts";

async function setup(detail: number, more: Record<string, unknown> = {}) {
  const out: string[] = [];
  const master = new Master();
  master.onLog(() => {});
  const dumper = new Dumper((t) => out.push(t));
  await master.addAddons(dumper);
  await master.options.update({ flow_detail: detail, ...more });
  return { master, dumper, out, text: () => out.join("") };
}

function flow(): HTTPFlow {
  const client = new Client({ peername: ["127.0.0.1", 50000] });
  const req = Request.make("POST", "http://example.com/path?q=1", '{"a": 1, "b": [true, null]}', {
    "content-type": "application/json",
  });
  const f = new HTTPFlow(client, new Server(["example.com", 80]), req);
  f.response = Response.make(404, "<html><body><p>not here</p></body></html>", {
    "content-type": "text/html",
  });
  return f;
}

Deno.test("dumper: flow_detail 1 prints the request line and a response line aligned under the method", async () => {
  const d = await setup(1);
  d.dumper.response(flow());
  assert.equal(
    d.text(),
    "127.0.0.1:50000: POST http://example.com/path?q=1\n" +
      "              << 404 Not Found 41b\n",
  );
});

Deno.test("dumper: flow_detail 2 adds headers, no blank lines", async () => {
  const d = await setup(2);
  d.dumper.response(flow());
  assert.equal(
    d.text(),
    "127.0.0.1:50000: POST http://example.com/path?q=1\n" +
      "    Host: example.com\n" +
      "    content-type: application/json\n" +
      "    content-length: 27\n" +
      " << 404 Not Found 41b\n" +
      "    content-type: text/html\n" +
      "    content-length: 41\n",
  );
});

Deno.test("dumper: flow_detail 3 adds bodies through the content views, each between blank lines", async () => {
  const d = await setup(3);
  d.dumper.response(flow());
  assert.equal(
    d.text(),
    "127.0.0.1:50000: POST http://example.com/path?q=1\n" +
      "    Host: example.com\n" +
      "    content-type: application/json\n" +
      "    content-length: 27\n" +
      "\n" +
      '    {\n        "a": 1,\n        "b": [\n            true,\n            null\n        ]\n    }\n' +
      "\n" +
      " << 404 Not Found 41b\n" +
      "    content-type: text/html\n" +
      "    content-length: 41\n" +
      "\n" +
      "    <html>\n    <body>\n      <p>not here</p>\n    </body>\n    </html>\n" +
      "\n",
  );
  // an empty body: just the blank line after the headers
  const g = flow();
  g.request = Request.make("GET", "http://example.com/");
  const e = await setup(3);
  e.dumper.response(g);
  assert.match(
    e.text(),
    /^127\.0\.0\.1:50000: GET http:\/\/example\.com\/\n {4}Host: example\.com\n\n << 404/,
  );
});

Deno.test("dumper: bodies are cut at content_view_lines_cutoff below flow_detail 4", async () => {
  const f = flow();
  f.response = Response.make(200, Array.from({ length: 600 }, (_, i) => `line ${i}`).join("\n"), {
    "content-type": "text/plain",
  });
  const three = await setup(3);
  three.dumper.response(f);
  assert.match(three.text(), /line 511\n {4}\(cut off\)\n\n$/);
  assert.doesNotMatch(three.text(), /line 512/);
  const small = await setup(3, { content_view_lines_cutoff: 3 });
  small.dumper.response(f);
  assert.match(small.text(), /line 2\n {4}\(cut off\)\n/);
  assert.doesNotMatch(small.text(), /line 3/);
  const four = await setup(4);
  four.dumper.response(f);
  assert.match(four.text(), /line 599\n\n$/);
  await assert.rejects(
    () => four.master.options.update({ content_view_lines_cutoff: 0 }),
    /content_view_lines_cutoff/,
  );
});

Deno.test("dumper: dumper_default_contentview chooses the view; mitmproxy-only views fall back to auto", async () => {
  const hex = await setup(3, { dumper_default_contentview: "hex dump" });
  hex.dumper.response(flow());
  assert.match(hex.text(), /\n {4}0000: {3}7b 22 61 22/);
  const logs: string[] = [];
  const m = await setup(3);
  m.master.onLog((e) => logs.push(e.msg));
  await m.master.options.update({ dumper_default_contentview: "grpc" });
  assert.ok(logs.some((l) => /"grpc" view is not supported by mitmdeno yet/.test(l)), logs.join("\n"));
  m.dumper.response(flow());
  assert.match(m.text(), /"a": 1/);
  await assert.rejects(() => m.master.options.update({ dumper_default_contentview: "nope" }), /one of auto/);
});

Deno.test("dumper: [replay] markers, HTTP versions, trailers, errors, missing content", async () => {
  const f = flow();
  f.isReplay = "request";
  const one = await setup(1);
  one.dumper.response(f);
  assert.equal(
    one.text(),
    "[replay]: POST http://example.com/path?q=1\n              << 404 Not Found 41b\n",
  );

  const g = flow();
  g.isReplay = "response";
  const r = await setup(1);
  r.dumper.response(g);
  assert.equal(r.text().split("\n")[1], "[replay]      << 404 Not Found 41b");

  const h2 = flow();
  h2.request.httpVersion = "HTTP/2.0";
  h2.response!.httpVersion = "HTTP/2.0";
  h2.response!.reason = "";
  h2.response!.rawContent = null;
  const v = await setup(1);
  v.dumper.response(h2);
  assert.equal(
    v.text(),
    "127.0.0.1:50000: POST http://example.com/path?q=1 HTTP/2.0\n     << HTTP/2.0 404 Not Found (content missing)\n",
  );

  const t = flow();
  t.response!.trailers = new Headers([["x-checksum", "abc"]]);
  const tr = await setup(2);
  tr.dumper.response(t);
  assert.match(tr.text(), /content-length: 41\n {4}--- HTTP Trailers\n {4}x-checksum: abc\n$/);

  const e = flow();
  e.response = null;
  e.error = new FlowError("Cannot connect to example.com:80: connection refused");
  const err = await setup(1);
  err.dumper.error(e);
  assert.equal(
    err.text(),
    "127.0.0.1:50000: POST http://example.com/path?q=1\n << Cannot connect to example.com:80: connection refused\n",
  );
});

Deno.test("dumper: long URLs are cut at flow_detail 1, header bytes escaped, IPv6 clients bracketed", async () => {
  const f = flow();
  f.request.path = "/" + "x".repeat(200);
  f.clientConn.peername = ["::1", 1234];
  f.request.headers.set("x-name", "caf\u00c3\u00a9");
  const one = await setup(1);
  one.dumper.response(f);
  const first = one.text().split("\n")[0];
  assert.match(first, /^\[::1\]:1234: POST http:\/\/example\.com\/x+…$/);
  assert.ok(first.length < 100);
  const two = await setup(2);
  two.dumper.response(f);
  assert.match(two.text(), /x{200}\n/, "not cut at flow_detail 2");
  assert.match(two.text(), /x-name: caf\\xc3\\xa9\n/);
});

Deno.test("dumper: flow_detail 0 prints nothing; dumper_filter selects flows; colours only when asked", async () => {
  const zero = await setup(0);
  zero.dumper.response(flow());
  assert.equal(zero.out.length, 0);
  const filtered = await setup(1, { dumper_filter: "~m GET" });
  filtered.dumper.response(flow());
  assert.equal(filtered.out.length, 0);
  const matched = await setup(1, { dumper_filter: "~m POST & ~c 404" });
  matched.dumper.response(flow());
  assert.equal(matched.out.length, 1);
  await assert.rejects(
    () => matched.master.options.update({ dumper_filter: "~c" }),
    /Option "dumper_filter"/,
  );

  const out: string[] = [];
  const master = new Master();
  const colored = new Dumper((t) => out.push(t), true);
  await master.addAddons(colored);
  await master.options.update({ flow_detail: 3 });
  colored.response(flow());
  const text = out.join("");
  assert.ok(text.includes("\x1b[35m\x1b[1mPOST\x1b[0m"), "method magenta and bold");
  assert.ok(text.includes("\x1b[31m\x1b[1m404\x1b[0m"), "4xx red");
  assert.ok(text.includes('\x1b[33m"a"\x1b[0m'), "JSON keys highlighted as names");
});

Deno.test("dumper: WebSocket messages and closes as mitmdump prints them", async () => {
  const { twebsocketflow } = await import("../../testing.ts");
  const d = await setup(1);
  const f = twebsocketflow();
  f.clientConn.peername = ["127.0.0.1", 50000];
  f.serverConn.address = ["example.com", 80];
  d.dumper.websocket_message(f);
  assert.equal(d.text(), "127.0.0.1:50000 <- WebSocket text message <- example.com:80/path\n");
  d.out.length = 0;
  f.websocket!.closedByClient = true;
  f.websocket!.closeCode = 1000;
  f.websocket!.closeReason = "bye";
  d.dumper.websocket_end(f);
  assert.equal(d.text(), "WebSocket connection closed by client: 1000 bye\n");
  d.out.length = 0;
  f.websocket!.closeCode = 1006;
  f.websocket!.closeReason = "";
  d.dumper.websocket_end(f);
  assert.match(
    d.text(),
    /^Error in WebSocket connection to example.com:80: WebSocket Error: ABNORMAL_CLOSURE\n$/,
  );
  const d3 = await setup(3);
  f.websocket!.messages.push(
    new (await import("../../mod.ts")).WebSocketMessage(2, true, Uint8Array.of(0, 65)),
  );
  d3.dumper.websocket_message(f);
  assert.equal(
    d3.text(),
    "127.0.0.1:50000 -> WebSocket binary message -> example.com:80/path\n    b'\\x00A'\n",
  );
});
