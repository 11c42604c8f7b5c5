/** HAR export (hardump, save.har) validated against the HAR 1.2 required fields, and HAR import. */
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { SaveHar } from "../../addons/savehar.ts";
import { flowToHarEntry, harToFlows, makeHar, validateHar } from "../../lib/io/har.ts";
import { readFlowsToArray } from "../../lib/io/flowfile.ts";
import { Headers } from "../../lib/http/headers.ts";
import { Request, Response } from "../../lib/http/message.ts";
import { tflow } from "../lib/io/_tflow.ts";
import { testMaster, withTempDir } from "../lib/io/_master.ts";
import { gzipSync } from "node:zlib";

function richFlows() {
  const a = tflow({ resp: true });
  a.request = Request.make("POST", "https://example.com:8443/form?x=1&y=%C3%A9", "a=1&b=two", {
    "content-type": "application/x-www-form-urlencoded",
    cookie: "sid=abc; theme=dark",
  });
  a.request.timestampStart = 946681200.5;
  a.request.timestampEnd = 946681200.6;
  a.response = new Response({
    statusCode: 302,
    reason: "Found",
    headers: new Headers([
      ["content-type", "text/html; charset=utf-8"],
      ["content-encoding", "gzip"],
      ["location", "/next"],
      ["set-cookie", "sid=xyz; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Lax"],
    ]),
    rawContent: new Uint8Array(gzipSync(new TextEncoder().encode("<p>héllo</p>"))),
    timestampStart: 946681200.7,
    timestampEnd: 946681200.9,
  });
  const bin = tflow({ resp: true });
  bin.response!.headers.set("content-type", "image/png");
  bin.response!.rawContent = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3, 4, 5, 255, 254]);
  const err = tflow({ err: true });
  const ws = tflow({ resp: true, ws: true });
  return [a, bin, err, ws];
}

Deno.test("har: an export has every HAR 1.2 required field (what Chromium's importer reads)", () => {
  const har = makeHar(richFlows());
  assert.deepEqual(validateHar(har), []);
  assert.deepEqual(validateHar(JSON.parse(JSON.stringify(har))), []);
  const [a, bin, err, ws] = har.log.entries;
  assert.equal(har.log.version, "1.2");
  assert.equal(har.log.creator.name, "mitmdeno");
  assert.equal(a.request.url, "https://example.com:8443/form?x=1&y=%C3%A9");
  assert.deepEqual(a.request.queryString, [{ name: "x", value: "1" }, { name: "y", value: "é" }]);
  assert.deepEqual(a.request.cookies, [{ name: "sid", value: "abc" }, { name: "theme", value: "dark" }]);
  assert.deepEqual(a.request.postData.params, [{ name: "a", value: "1" }, { name: "b", value: "two" }]);
  assert.equal(a.request.postData.text, "a=1&b=two");
  assert.equal(a.startedDateTime, "1999-12-31T23:00:00.500Z");
  assert.equal(a.response.status, 302);
  assert.equal(a.response.redirectURL, "/next");
  assert.equal(a.response.content.text, "<p>héllo</p>");
  assert.equal(a.response.content.mimeType, "text/html; charset=utf-8");
  assert.equal(a.response.content.size, 13);
  assert.ok(a.response.bodySize > 0 && a.response.bodySize !== 13);
  assert.deepEqual(a.response.cookies[0], {
    name: "sid",
    value: "xyz",
    path: "/app",
    domain: "example.com",
    httpOnly: true,
    secure: true,
    sameSite: "Lax",
  });
  assert.equal(a.timings.send, 100);
  assert.equal(a.timings.wait, 100);
  assert.equal(a.timings.receive, 200);
  assert.equal(bin.response.content.encoding, "base64");
  assert.equal(err.response.status, 0);
  assert.equal(err.response._error, "error");
  assert.equal(ws._resourceType, "websocket");
  assert.equal((ws._webSocketMessages as unknown[]).length, 3);
  // the same server connection is charged connect/ssl once
  const seen = new Set();
  const f = tflow({ resp: true });
  assert.ok(flowToHarEntry(f, seen).timings.connect >= 0);
  assert.equal(flowToHarEntry(f, seen).timings.connect, -1);
});

Deno.test("har: bodies that are not plain UTF-8 text go as base64 and come back byte-exact", () => {
  // a 264-byte PNG-like body whose first 100 bytes look mostly like text (mitmproxy's is_mostly_bin says
  // "text" and garbles it): IHDR/tEXt chunks with ASCII, then binary
  const png = new Uint8Array(264);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  png.set(
    new TextEncoder().encode("IHDR tEXtComment made by a test of mitmdeno's HAR writer, plain ASCII here"),
    8,
  );
  for (let i = 120; i < 264; i++) png[i] = (i * 37) & 0xff;
  const latin = new Uint8Array([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1: not valid UTF-8
  const text = "plain text ✓\n\tindented";
  const flows = [
    tflow({ resp: Response.make(200, png, { "content-type": "image/png" }) }),
    tflow({ resp: Response.make(200, latin, { "content-type": "text/plain; charset=latin1" }) }),
    tflow({ resp: Response.make(200, text, { "content-type": "text/plain" }) }),
  ];
  flows[0].request.method = "POST";
  flows[0].request.content = png;
  const har = JSON.parse(JSON.stringify(makeHar(flows)));
  assert.equal(har.log.entries[0].response.content.encoding, "base64");
  assert.equal(har.log.entries[0].request.postData.encoding, "base64");
  assert.equal(har.log.entries[1].response.content.encoding, "base64");
  assert.equal(har.log.entries[2].response.content.encoding, undefined);
  assert.equal(har.log.entries[2].response.content.text, text);
  const back = [...harToFlows(har)];
  assert.deepEqual(back[0].response!.content, png);
  assert.equal(back[0].response!.content!.length, 264);
  assert.deepEqual(back[0].request.content, png);
  assert.deepEqual(back[1].response!.content, latin);
  assert.equal(back[2].response!.text, text);
});

Deno.test("har: serverIPAddress only for a known IP address of the server", () => {
  const known = tflow({ resp: true });
  const none = tflow({ resp: true });
  none.serverConn.peername = null;
  const hostname = tflow({ resp: true });
  hostname.serverConn.peername = ["example.com", 443];
  const v6 = tflow({ resp: true });
  v6.serverConn.peername = ["::1", 443];
  const [a, b, c, d] = makeHar([known, none, hostname, v6]).log.entries;
  assert.equal(a.serverIPAddress, "192.168.0.1");
  assert.ok(!("serverIPAddress" in b) && !("serverIPAddress" in c));
  assert.equal(d.serverIPAddress, "::1");
});

Deno.test("har: validateHar reports what is missing", () => {
  const har = makeHar([tflow({ resp: true })]) as unknown as { log: { entries: Record<string, any>[] } };
  delete har.log.entries[0].cache;
  delete har.log.entries[0].response.content.mimeType;
  har.log.entries[0].timings.wait = -1;
  har.log.entries[0].request.headers[0].value = 3;
  assert.deepEqual(validateHar(har), [
    "log.entries[0].cache: missing",
    "log.entries[0].request.headers[0].value: expected a string, got 3",
    "log.entries[0].response.content.mimeType: missing",
    "log.entries[0].timings.wait: expected a non-negative number, got -1",
  ]);
  assert.deepEqual(validateHar({}), [".log: missing"]);
});

Deno.test("har: import round-trips what HAR holds; Chrome-style and Slack-style headers", () => {
  const flows = richFlows();
  const back = [...harToFlows(JSON.parse(JSON.stringify(makeHar(flows))))];
  assert.equal(back.length, 4);
  const [a, bin, err] = back;
  assert.equal(a.request.method, "POST");
  assert.equal(a.request.url, "https://example.com:8443/form?x=1&y=%C3%A9");
  assert.equal(a.request.text, "a=1&b=two");
  assert.equal(a.request.headers.get("cookie"), "sid=abc; theme=dark");
  assert.equal(a.response!.statusCode, 302);
  assert.equal(a.response!.reason, "Found");
  assert.equal(a.response!.headers.get("content-encoding"), "gzip");
  assert.equal(a.response!.text, "<p>héllo</p>", "re-encoded with gzip and decoded again");
  assert.equal(a.request.timestampStart, 946681200.5);
  assert.ok(Math.abs(a.response!.timestampEnd! - 946681200.9) < 1e-6);
  assert.deepEqual([...bin.response!.rawContent!], [0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3, 4, 5, 255, 254]);
  assert.equal(err.response, null);
  assert.equal(err.error!.msg, "error");
  assert.deepEqual(a.serverConn.peername, ["192.168.0.1", 8443]);

  const slack = {
    log: {
      entries: [{
        startedDateTime: "2024-01-02T03:04:05.000Z",
        time: 12,
        request: {
          method: "GET",
          url: "http://h.test/p",
          httpVersion: "http/2.0",
          headers: [["accept", "*/*"]],
        },
        response: {
          status: 404,
          httpVersion: "HTTP/2",
          headers: [["content-type", "text/plain"]],
          content: { text: "nf" },
        },
      }],
    },
  };
  const [s] = [...harToFlows(slack)];
  assert.equal(s.request.headers.get("accept"), "*/*");
  assert.equal(s.request.httpVersion, "HTTP/2.0");
  assert.equal(s.response!.reason, "Not Found");
  assert.equal(s.response!.text, "nf");
  assert.throws(
    () => [...harToFlows({ log: { entries: [{ request: { url: "nope" } }] } })],
    /invalid request url/,
  );
});

Deno.test("savehar: hardump at done honours save_stream_filter; .zhar; save.har command; -r reads it", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/out.har`;
    const { master } = await testMaster([new SaveHar()], [`hardump=${path}`, "save_stream_filter=~s"]);
    const [a, bin, err, ws] = richFlows();
    await master.addons.handleLifecycle("response", a);
    await master.addons.handleLifecycle("response", bin);
    await master.addons.handleLifecycle("error", err);
    await master.addons.handleLifecycle("response", ws);
    await master.addons.handleLifecycle("websocket_end", ws);
    await master.addons.trigger("done");
    const har = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(validateHar(har), []);
    assert.equal(har.log.entries.length, 3, "the error flow is filtered out");
    const read = await readFlowsToArray(path);
    assert.equal(read.length, 3);
    assert.equal(read[0].request.url, a.request.url);

    await master.commands.call("save.har", [a, err], `${dir}/x.zhar`);
    const z = JSON.parse(new TextDecoder().decode(inflateSync(await Deno.readFile(`${dir}/x.zhar`))));
    assert.equal(z.log.entries.length, 2);
    await master.commands.call("save.har", a, `${dir}/one.har`);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/one.har`)).log.entries.length, 1);
  });
});
