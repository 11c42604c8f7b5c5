import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { Cut, extract } from "../../addons/cut.ts";

Deno.test("cut: extract with mitmproxy's snake_case paths", () => {
  const f = tflow({ resp: true });
  f.request.headers.set("content-type", "text/plain");
  assert.equal(extract("request.method", f), "GET");
  assert.equal(extract("request.pretty_url", f), "http://address:22/path");
  assert.equal(extract("request.host", f), "address");
  assert.equal(extract("request.port", f), "22");
  assert.equal(extract("request.http_version", f), "HTTP/1.1");
  assert.equal(extract("request.header[content-type]", f), "text/plain");
  assert.equal(extract("request.header[missing]", f), "");
  assert.equal(extract("response.status_code", f), "200");
  assert.equal(extract("response.reason", f), "OK");
  assert.equal(extract("response.text", f), "message");
  assert.deepEqual(extract("response.content", f), new TextEncoder().encode("message"));
  assert.equal(extract("client_conn.peername.host", f), "127.0.0.1");
  assert.equal(extract("client_conn.peername.port", f), "22");
  assert.equal(extract("server_conn.address", f), "address:22");
  assert.equal(extract("client_conn.tls", f), "false");
  assert.equal(extract("marked", f), "");
  assert.throws(() => extract("request._private", f), /internal attribute/);
  assert.equal(extract("response.header[x]", tflow()), "");
});

Deno.test("cut: cut and cut.save (single value raw, CSV otherwise, +append)", async () => {
  const cut = new Cut();
  await using tctx = await context(cut);
  const a = tflow({ resp: true });
  const b = tflow({ resp: true });
  b.request.path = '/quote"and,comma';
  assert.deepEqual(await tctx.command("cut", [a, b], "request.method,response.status_code"), [
    ["GET", "200"],
    ["GET", "200"],
  ]);
  const dir = await Deno.makeTempDir();
  try {
    await tctx.command("cut.save", [a, b], ["request.path", "response.status_code"], `${dir}/out.csv`);
    assert.equal(await Deno.readTextFile(`${dir}/out.csv`), '/path,200\r\n"/quote""and,comma",200\r\n');
    await tctx.waitForLog("Saved 2 cuts over 2 flows as CSV.");
    await tctx.command("cut.save", a, "response.content", `${dir}/one`);
    await tctx.command("cut.save", a, "response.content", `+${dir}/one`);
    assert.equal(await Deno.readTextFile(`${dir}/one`), "message\nmessage");
    await tctx.command("cut.save", a, "request.method", `${dir}/missing/dir/file`);
    await tctx.waitForLog("No such file", { level: "error" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
