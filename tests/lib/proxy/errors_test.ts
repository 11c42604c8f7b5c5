import assert from "node:assert/strict";
import { connectError, errorResponse, ProtocolError } from "../../../lib/proxy/errors.ts";

Deno.test("ProtocolError: a kind, a reason, a status and a detail; an Error named ProtocolError", () => {
  const e = new ProtocolError("tls", "handshake failed", null, "untrusted");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "ProtocolError");
  assert.equal(e.kind, "tls");
  assert.equal(e.message, "handshake failed");
  assert.equal(e.status, null);
  assert.equal(e.detail, "untrusted");
  const d = new ProtocolError("internal", "x");
  assert.equal(d.status, null);
  assert.equal(d.detail, null);
});

Deno.test("connectError: socket error codes become readable reasons (504 for timeouts, 502 else)", () => {
  const err = (code: string | undefined, message = "msg") => Object.assign(new Error(message), { code });
  const cases: [unknown, string, number][] = [
    [err("ECONNREFUSED"), "Cannot connect to h:1: connection refused", 502],
    [err("ENOTFOUND"), "Cannot resolve h:1: host not found", 502],
    [err("EAI_AGAIN"), "Cannot resolve h:1: host not found", 502],
    [err("EAI_NONAME"), "Cannot resolve h:1: host not found", 502],
    [err("EAI_NODATA"), "Cannot resolve h:1: host not found", 502],
    [err("ETIMEDOUT"), "Timed out connecting to h:1", 504],
    [err("TIMEOUT"), "Timed out connecting to h:1", 504],
    [err("EHOSTUNREACH"), "Cannot connect to h:1: no route to host", 502],
    [err("ENETUNREACH"), "Cannot connect to h:1: no route to host", 502],
    [err("ECONNRESET"), "Connection to h:1 reset", 502],
    [err("EWHATEVER", "strange failure"), "Cannot connect to h:1: strange failure", 502],
    ["a string", "Cannot connect to h:1: a string", 502],
  ];
  for (const [e, message, status] of cases) {
    const p = connectError(e, "h:1");
    assert.equal(p.kind, "connect");
    assert.equal(p.message, message);
    assert.equal(p.status, status, message);
  }
});

Deno.test("errorResponse: an HTML page with Connection: close, the reason escaped", () => {
  const r = errorResponse(502, `<script>alert("x")</script> & 'y'`);
  assert.equal(r.statusCode, 502);
  assert.equal(r.reason, "Bad Gateway");
  assert.equal(r.headers.get("connection"), "close");
  assert.equal(r.headers.get("content-type"), "text/html");
  assert.match(r.headers.get("server") ?? "", /^mitmdeno /);
  assert.equal(
    r.text,
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>" +
      "<p>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;y&#39;</p></body></html>\n",
  );
});
