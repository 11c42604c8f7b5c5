import assert from "node:assert/strict";
import zlib from "node:zlib";
import { Headers } from "../../../lib/http/headers.ts";
import { defaultPort, hostPort, Request, Response } from "../../../lib/http/message.ts";
import { decode, encode } from "../../../lib/http/encoding.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function req(over: Partial<ConstructorParameters<typeof Request>[0]> = {}): Request {
  return new Request({
    method: "GET",
    scheme: "http",
    host: "example.com",
    port: 80,
    path: "/a/b?x=1&y=2",
    headers: [["Host", "example.com"]],
    ...over,
  });
}

function gzResponse(text: string, extra: [string, string][] = []): Response {
  const raw = encode(te.encode(text), "gzip");
  return new Response({
    statusCode: 200,
    headers: [["Content-Encoding", "gzip"], ["Content-Length", String(raw.length)], ...extra],
    rawContent: raw,
  });
}

// ---------------------------------------------------------------- helpers

Deno.test("defaultPort/hostPort: default ports by scheme and IPv6 brackets", () => {
  assert.equal(defaultPort("http"), 80);
  assert.equal(defaultPort("https"), 443);
  assert.equal(defaultPort("wss"), 443);
  assert.equal(defaultPort("ws"), 80);
  assert.equal(hostPort("example.com", 8080), "example.com:8080");
  assert.equal(hostPort("::1", 8080), "[::1]:8080");
});

// ---------------------------------------------------------------- Message basics

Deno.test("Message: defaults to HTTP/1.1, empty body, no trailers and a current timestamp", () => {
  const before = Date.now() / 1000;
  const r = new Response({ statusCode: 204 });
  assert.equal(r.httpVersion, "HTTP/1.1");
  assert.ok(r.isHttp11 && !r.isHttp10 && !r.isHttp2);
  assert.deepEqual(r.rawContent, new Uint8Array(0));
  assert.equal(r.trailers, null);
  assert.equal(r.timestampEnd, null);
  assert.ok(r.timestampStart >= before && r.timestampStart <= Date.now() / 1000 + 1);
  assert.equal(r.stream, false);
});

Deno.test("Message: isHttp10/isHttp2 follow httpVersion", () => {
  assert.ok(new Response({ statusCode: 200, httpVersion: "HTTP/1.0" }).isHttp10);
  assert.ok(new Response({ statusCode: 200, httpVersion: "HTTP/2.0" }).isHttp2);
});

Deno.test("Message: a null rawContent means no body for content and text", () => {
  const r = new Response({ statusCode: 200, rawContent: null });
  assert.equal(r.content, null);
  assert.equal(r.text, null);
  assert.equal(r.getContent(false), null);
});

Deno.test("Message: content without Content-Encoding is the raw body", () => {
  const r = new Response({ statusCode: 200, content: "hi" });
  assert.deepEqual(r.rawContent, te.encode("hi"));
  assert.equal(r.content, r.rawContent);
});

// ---------------------------------------------------------------- content decode/encode

Deno.test("Message: content decodes gzip while rawContent stays encoded", () => {
  const r = gzResponse("hello gzip");
  assert.equal(td.decode(r.content!), "hello gzip");
  assert.equal(r.text, "hello gzip");
  assert.deepEqual(decode(r.rawContent!, "gzip"), te.encode("hello gzip"));
});

Deno.test("Message: content decodes br, deflate, zstd and stacked codings", () => {
  for (const ce of ["br", "deflate", "zstd", "gzip, br", "deflate,gzip"]) {
    const r = new Response({ statusCode: 200, headers: { "content-encoding": ce } });
    r.text = `body via ${ce}`;
    assert.notDeepEqual(r.rawContent, te.encode(`body via ${ce}`), ce);
    const fresh = new Response({
      statusCode: 200,
      headers: { "content-encoding": ce },
      rawContent: r.rawContent,
    });
    assert.equal(fresh.text, `body via ${ce}`, ce);
  }
});

Deno.test("Message: setting content re-encodes with the current Content-Encoding and updates Content-Length", () => {
  const r = gzResponse("old");
  r.text = "a new, longer body that replaces the old one";
  assert.equal(r.headers.get("content-encoding"), "gzip");
  assert.equal(td.decode(zlib.gunzipSync(r.rawContent!)), "a new, longer body that replaces the old one");
  assert.equal(r.headers.get("content-length"), String(r.rawContent!.length));
  assert.equal(r.text, "a new, longer body that replaces the old one");
});

Deno.test("Message: setting content adds Content-Length when missing", () => {
  const r = new Response({ statusCode: 200 });
  r.content = new Uint8Array([1, 2, 3]);
  assert.equal(r.headers.get("content-length"), "3");
  r.content = "";
  assert.equal(r.headers.get("content-length"), "0");
});

Deno.test("Message: setting content on a chunked message leaves Content-Length out", () => {
  const r = new Response({ statusCode: 200, headers: { "transfer-encoding": "chunked" } });
  r.text = "streamed";
  assert.equal(r.headers.has("content-length"), false);
  assert.equal(r.text, "streamed");
});

Deno.test("Message: setting content to null drops the body and keeps headers", () => {
  const r = new Response({ statusCode: 200, headers: { "content-length": "2" }, content: "hi" });
  r.content = null;
  assert.equal(r.rawContent, null);
  assert.equal(r.content, null);
  r.text = null;
  assert.equal(r.rawContent, null);
});

Deno.test("Message: an undecodable body throws in strict mode and is returned raw otherwise", () => {
  const raw = te.encode("not gzip at all");
  const r = new Response({ statusCode: 200, headers: { "content-encoding": "gzip" }, rawContent: raw });
  assert.throws(() => r.content, /cannot decode gzip body/);
  assert.throws(() => r.text, /cannot decode gzip body/);
  assert.equal(r.getContent(false), raw);
  assert.equal(r.getText(false), "not gzip at all");
});

Deno.test("Message: an unknown Content-Encoding throws in strict mode", () => {
  const r = new Response({ statusCode: 200, headers: { "content-encoding": "compress" }, content: "x" });
  assert.throws(() => r.content, /compress/);
  assert.deepEqual(r.getContent(false), te.encode("x"));
});

Deno.test("Message: setting content with an unknown Content-Encoding drops that header (as mitmproxy)", () => {
  const r = new Response({ statusCode: 200, headers: { "content-encoding": "compress" }, content: "x" });
  r.text = "plain now";
  assert.equal(r.headers.has("content-encoding"), false);
  assert.deepEqual(r.rawContent, te.encode("plain now"));
  assert.equal(r.headers.get("content-length"), "9");
});

Deno.test("Message: the decoded body is recomputed when rawContent is replaced", () => {
  const r = gzResponse("first");
  assert.equal(r.text, "first");
  r.rawContent = encode(te.encode("second"), "gzip");
  assert.equal(r.text, "second");
});

Deno.test("Message: the decoded body is recomputed when Content-Encoding changes", () => {
  const raw = te.encode("abc");
  const r = new Response({ statusCode: 200, rawContent: raw });
  assert.equal(r.text, "abc");
  r.headers.set("content-encoding", "gzip");
  assert.throws(() => r.content);
  r.headers.delete("content-encoding");
  r.rawContent = encode(te.encode("gz"), "gzip");
  r.headers.set("content-encoding", "gzip");
  assert.equal(r.text, "gz");
  r.headers.set("content-encoding", "zstd");
  assert.throws(() => r.content, /cannot decode zstd body/, "a stale gzip decode must not be reused");
});

Deno.test("Message: decode() removes Content-Encoding and stores the plain body", () => {
  const r = gzResponse("to be decoded");
  r.decode();
  assert.equal(r.headers.has("content-encoding"), false);
  assert.deepEqual(r.rawContent, te.encode("to be decoded"));
  assert.equal(r.headers.get("content-length"), "13");
});

Deno.test("Message: decode(false) on a corrupt body keeps the raw bytes and drops the header", () => {
  const raw = te.encode("garbage");
  const r = new Response({ statusCode: 200, headers: { "content-encoding": "gzip" }, rawContent: raw });
  assert.throws(() => r.decode(), /cannot decode/);
  assert.equal(r.headers.get("content-encoding"), "gzip", "a failed strict decode changes nothing");
  r.decode(false);
  assert.equal(r.headers.has("content-encoding"), false);
  assert.deepEqual(r.rawContent, raw);
});

Deno.test("Message: encode() compresses with the given coding and identity removes it", () => {
  const r = new Response({ statusCode: 200, content: "x".repeat(1000) });
  for (const enc of ["gzip", "deflate", "br", "zstd"]) {
    r.encode(enc);
    assert.equal(r.headers.get("content-encoding"), enc);
    assert.ok(r.rawContent!.length < 1000, enc);
    assert.equal(r.headers.get("content-length"), String(r.rawContent!.length));
    assert.equal(r.text, "x".repeat(1000));
  }
  r.encode("identity");
  assert.equal(r.headers.has("content-encoding"), false);
  assert.equal(r.rawContent!.length, 1000);
});

Deno.test("Message: encode() with an unsupported coding throws and leaves the message unchanged", () => {
  const r = gzResponse("keep me");
  const raw = r.rawContent;
  assert.throws(() => r.encode("compress"), /compress/);
  assert.equal(r.headers.get("content-encoding"), "gzip");
  assert.equal(r.rawContent, raw);
  assert.equal(r.text, "keep me");
});

// ---------------------------------------------------------------- text / charset / json

Deno.test("Message: text uses UTF-8 by default", () => {
  const r = new Response({ statusCode: 200, content: te.encode("héllo ✓") });
  assert.equal(r.text, "héllo ✓");
  r.text = "ünïcode";
  assert.deepEqual(r.rawContent, te.encode("ünïcode"));
});

Deno.test("Message: text honours a latin1 charset both ways", () => {
  const r = new Response({
    statusCode: 200,
    headers: { "content-type": "text/html; charset=ISO-8859-1" },
    rawContent: new Uint8Array([0x63, 0x61, 0x66, 0xe9]),
  });
  assert.equal(r.text, "café");
  r.text = "über";
  assert.deepEqual(r.rawContent, new Uint8Array([0xfc, 0x62, 0x65, 0x72]));
  assert.equal(r.headers.get("content-length"), "4");
});

Deno.test("Message: latin1 text with characters outside latin1 falls back to UTF-8", () => {
  const r = new Response({ statusCode: 200, headers: { "content-type": "text/plain; charset=latin1" } });
  r.text = "snow ☃";
  assert.deepEqual(r.rawContent, te.encode("snow ☃"));
});

Deno.test("Message: text decodes other charsets via TextDecoder and quoted charset values", () => {
  const r = new Response({
    statusCode: 200,
    headers: { "content-type": 'text/plain; charset="windows-1252"' },
    rawContent: new Uint8Array([0x80]),
  });
  assert.equal(r.text, "€");
  const sj = new Response({
    statusCode: 200,
    headers: { "content-type": "text/plain;charset=shift_jis" },
    rawContent: new Uint8Array([0x82, 0xa0]),
  });
  assert.equal(sj.text, "あ");
});

Deno.test("Message: an unknown charset falls back to UTF-8", () => {
  const r = new Response({
    statusCode: 200,
    headers: { "content-type": "text/plain; charset=x-nonexistent" },
    content: "ok ✓",
  });
  assert.equal(r.text, "ok ✓");
});

Deno.test("Message: text of a gzip body with a charset decodes both layers", () => {
  const raw = encode(new Uint8Array([0x6e, 0xe9]), "gzip");
  const r = new Response({
    statusCode: 200,
    headers: { "content-encoding": "gzip", "content-type": "text/plain; charset=iso-8859-1" },
    rawContent: raw,
  });
  assert.equal(r.text, "né");
});

Deno.test("Message: json() parses the decoded body", () => {
  const r = gzResponse('{"a": [1, 2], "b": "ü"}', [["content-type", "application/json"]]);
  assert.deepEqual(r.json(), { a: [1, 2], b: "ü" });
});

Deno.test("Message: json() throws on invalid JSON and on a missing body", () => {
  assert.throws(() => new Response({ statusCode: 200, content: "{nope" }).json(), SyntaxError);
  assert.throws(() => new Response({ statusCode: 200, rawContent: null }).json(), /no content/);
});

// ---------------------------------------------------------------- Request: url & host

Deno.test("Request: url is built from scheme, host, port and path, omitting default ports", () => {
  assert.equal(req().url, "http://example.com/a/b?x=1&y=2");
  assert.equal(req({ scheme: "https", port: 443 }).url, "https://example.com/a/b?x=1&y=2");
  assert.equal(req({ port: 8080 }).url, "http://example.com:8080/a/b?x=1&y=2");
  assert.equal(req({ scheme: "https", port: 80 }).url, "https://example.com:80/a/b?x=1&y=2");
  assert.equal(req({ host: "::1", port: 80 }).url, "http://[::1]/a/b?x=1&y=2");
  assert.equal(req({ host: "::1", port: 8080 }).url, "http://[::1]:8080/a/b?x=1&y=2");
});

Deno.test("Request: the port defaults to the scheme's port", () => {
  assert.equal(new Request({ method: "GET", scheme: "https", host: "h" }).port, 443);
  assert.equal(new Request({ method: "GET", host: "h" }).port, 80);
  assert.equal(new Request({ method: "GET", host: "h" }).path, "/");
});

Deno.test("Request: url of CONNECT and asterisk-form requests is the authority", () => {
  const c = new Request({
    method: "CONNECT",
    host: "example.com",
    port: 443,
    authority: "example.com:443",
    path: "",
  });
  assert.equal(c.url, "example.com:443");
  assert.equal(c.prettyUrl, "example.com:443");
  const noAuth = new Request({ method: "CONNECT", host: "::1", port: 443, path: "" });
  assert.equal(noAuth.url, "[::1]:443");
  const star = new Request({ method: "OPTIONS", host: "example.com", port: 80, path: "*" });
  assert.equal(star.url, "example.com:80");
});

Deno.test("Request: setting url updates scheme, host, port, path and the Host header", () => {
  const r = req();
  r.url = "https://other.org:8443/new/path?q=1";
  assert.equal(r.scheme, "https");
  assert.equal(r.host, "other.org");
  assert.equal(r.port, 8443);
  assert.equal(r.path, "/new/path?q=1");
  assert.equal(r.headers.get("host"), "other.org:8443");
  assert.equal(r.url, "https://other.org:8443/new/path?q=1");
  r.url = "http://plain.net/";
  assert.equal(r.port, 80);
  assert.equal(r.headers.get("host"), "plain.net");
});

Deno.test("Request: setting url to an IPv6 literal brackets the Host header", () => {
  const r = req();
  r.url = "http://[2001:db8::1]:8080/x";
  assert.equal(r.host, "2001:db8::1");
  assert.equal(r.port, 8080);
  assert.equal(r.headers.get("host"), "[2001:db8::1]:8080");
  assert.equal(r.url, "http://[2001:db8::1]:8080/x");
  r.url = "http://[2001:db8::1]/y";
  assert.equal(r.headers.get("host"), "[2001:db8::1]");
});

Deno.test("Request: setting url without a Host header does not create one", () => {
  const r = req({ headers: [] });
  r.url = "http://x.org/";
  assert.equal(r.headers.has("host"), false);
});

Deno.test("Request: an invalid url throws and leaves the request alone", () => {
  const r = req();
  assert.throws(() => (r.url = "not a url"));
  assert.equal(r.url, "http://example.com/a/b?x=1&y=2");
});

Deno.test("Request: setting host updates the Host header (with a non-default port) and the authority", () => {
  const r = req({ port: 8080, headers: [["Host", "example.com:8080"]] });
  r.host = "changed.org";
  assert.equal(r.host, "changed.org");
  assert.equal(r.headers.get("host"), "changed.org:8080");
  const h2 = req({ httpVersion: "HTTP/2.0", authority: "example.com", headers: [] });
  h2.host = "h2.org";
  assert.equal(h2.authority, "h2.org");
  assert.equal(h2.headers.has("host"), false);
});

Deno.test("Request: setting an IPv6 host keeps brackets and the port in Host and authority", () => {
  const r = req({ port: 8080, authority: "example.com:8080", headers: [["Host", "example.com:8080"]] });
  r.host = "::1";
  assert.equal(r.headers.get("host"), "[::1]:8080");
  assert.equal(r.authority, "[::1]:8080");
  const d = req({ authority: "example.com" });
  d.host = "::1";
  assert.equal(d.headers.get("host"), "[::1]");
  assert.equal(d.authority, "[::1]");
});

Deno.test("Request: hostHeader reads the authority first, then the Host header, and can be set or removed", () => {
  const r = req();
  assert.equal(r.hostHeader, "example.com");
  r.hostHeader = "elsewhere:81";
  assert.equal(r.headers.get("host"), "elsewhere:81");
  r.hostHeader = undefined;
  assert.equal(r.headers.has("host"), false);
  assert.equal(r.hostHeader, undefined);
  assert.equal(req({ authority: "auth.org" }).hostHeader, "auth.org");
});

Deno.test("Request: prettyHost prefers the Host header without its port", () => {
  assert.equal(req({ host: "10.0.0.1", headers: [["Host", "site.org:8080"]] }).prettyHost, "site.org");
  assert.equal(req({ host: "10.0.0.1", headers: [["Host", "site.org"]] }).prettyHost, "site.org");
  assert.equal(req({ host: "10.0.0.1", headers: [["Host", "[::1]:8080"]] }).prettyHost, "::1");
  assert.equal(req({ host: "10.0.0.1", headers: [["Host", "[::1]"]] }).prettyHost, "::1");
  assert.equal(req({ host: "10.0.0.1", headers: [] }).prettyHost, "10.0.0.1");
});

Deno.test("Request: prettyUrl uses the Host header (what the client asked for)", () => {
  const r = req({ host: "10.0.0.1", headers: [["Host", "site.org"]] });
  assert.equal(r.url, "http://10.0.0.1/a/b?x=1&y=2");
  assert.equal(r.prettyUrl, "http://site.org/a/b?x=1&y=2");
  assert.equal(req({ headers: [] }).prettyUrl, "http://example.com/a/b?x=1&y=2");
});

// ---------------------------------------------------------------- path, query

Deno.test("Request: pathname and pathComponents strip the query and URL-decode segments", () => {
  const r = req({ path: "/a/b%20c//d%2Fe/%ZZ?x=1" });
  assert.equal(r.pathname, "/a/b%20c//d%2Fe/%ZZ");
  assert.deepEqual(r.pathComponents, ["a", "b c", "d/e", "%ZZ"]);
  assert.deepEqual(req({ path: "/" }).pathComponents, []);
});

Deno.test("Request: query reads the query string as a multidict", () => {
  const r = req({ path: "/p?a=1&b=2&a=3&e=%20x&plus=a+b" });
  const q = r.query;
  assert.equal(q.get("b"), "2");
  assert.deepEqual(q.getAll("a"), ["1", "3"]);
  assert.equal(q.get("e"), " x");
  assert.equal(q.get("plus"), "a b");
  assert.equal(req({ path: "/p" }).query.toString(), "");
});

Deno.test("Request: query is a live view: set, append, delete and sort write back into path", () => {
  const r = req({ path: "/p?a=1&b=2" });
  r.query.set("a", "9");
  assert.equal(r.path, "/p?a=9&b=2");
  r.query.append("c", "x y");
  assert.equal(r.path, "/p?a=9&b=2&c=x+y");
  r.query.delete("b");
  assert.equal(r.path, "/p?a=9&c=x+y");
  r.query.append("0", "z");
  r.query.sort();
  assert.equal(r.path, "/p?0=z&a=9&c=x+y");
  const q = r.query;
  q.delete("a");
  q.delete("c");
  q.delete("0");
  assert.equal(r.path, "/p", "an empty query drops the '?'");
});

Deno.test("Request: query can be assigned from a record, pairs or URLSearchParams", () => {
  const r = req({ path: "/p?old=1" });
  r.query = { k: "v", s: "a b" };
  assert.equal(r.path, "/p?k=v&s=a+b");
  r.query = [["d", "1"], ["d", "2"]];
  assert.equal(r.path, "/p?d=1&d=2");
  r.query = new URLSearchParams("z=&y=1");
  assert.equal(r.path, "/p?z=&y=1");
  r.query = {};
  assert.equal(r.path, "/p");
});

// ---------------------------------------------------------------- cookies & forms

Deno.test("Request: cookies parses every Cookie header in order", () => {
  const r = req({ headers: [["Cookie", "a=1; b=x=y"], ["Cookie", " c ; d="]] });
  assert.deepEqual(r.cookies, [["a", "1"], ["b", "x=y"], ["c", ""], ["d", ""]]);
  assert.deepEqual(req({ headers: [] }).cookies, []);
});

Deno.test("Request: setting cookies writes one Cookie header and an empty list removes it", () => {
  const r = req({ headers: [["Cookie", "a=1"], ["X", "y"], ["cookie", "b=2"]] });
  r.cookies = [["s", "1"], ["t", "2"]];
  assert.deepEqual(r.headers.getAll("cookie"), ["s=1; t=2"]);
  r.cookies = { only: "one" };
  assert.equal(r.headers.get("cookie"), "only=one");
  r.cookies = [];
  assert.equal(r.headers.has("cookie"), false);
});

Deno.test("Request: urlencodedForm parses a form body and is empty for other content types", () => {
  const r = req({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    content: "a=1&b=h%C3%A9&b=2&sp=x+y",
  });
  const f = r.urlencodedForm;
  assert.equal(f.get("a"), "1");
  assert.deepEqual(f.getAll("b"), ["hé", "2"]);
  assert.equal(f.get("sp"), "x y");
  const other = req({ method: "POST", headers: { "content-type": "text/plain" }, content: "a=1" });
  assert.equal([...other.urlencodedForm].length, 0);
});

Deno.test("Request: setting urlencodedForm sets the body, content type and length", () => {
  const r = req({ method: "POST", headers: [] });
  r.urlencodedForm = { q: "a b", x: "é" };
  assert.equal(r.headers.get("content-type"), "application/x-www-form-urlencoded");
  assert.equal(r.text, "q=a+b&x=%C3%A9");
  assert.equal(r.headers.get("content-length"), String(r.rawContent!.length));
  assert.equal(r.urlencodedForm.get("x"), "é");
});

Deno.test("Request: anticache removes conditional headers, anticomp asks for identity", () => {
  const r = req({
    headers: [["If-Modified-Since", "x"], ["If-None-Match", "y"], ["Accept-Encoding", "gzip"]],
  });
  r.anticache();
  assert.equal(r.headers.has("if-modified-since"), false);
  assert.equal(r.headers.has("if-none-match"), false);
  r.anticomp();
  assert.equal(r.headers.get("accept-encoding"), "identity");
});

Deno.test("Request: constrainEncoding keeps only encodings mitmdeno can decode", () => {
  const r = req({ headers: [["Accept-Encoding", "gzip, compress;q=0.5, br;q=0.9, sdch, ZSTD, deflate"]] });
  r.constrainEncoding();
  assert.equal(r.headers.get("accept-encoding"), "gzip, br;q=0.9, ZSTD, deflate");
  const none = req({ headers: [] });
  none.constrainEncoding();
  assert.equal(none.headers.has("accept-encoding"), false);
});

// ---------------------------------------------------------------- Request.make & copy

Deno.test("Request.make: builds a request from a URL with a Host header first", () => {
  const r = Request.make("get", "https://example.com:8443/a?b=c", "", { Accept: "*/*" });
  assert.equal(r.method, "GET");
  assert.equal(r.scheme, "https");
  assert.equal(r.host, "example.com");
  assert.equal(r.port, 8443);
  assert.equal(r.path, "/a?b=c");
  assert.deepEqual(r.headers.fields, [["Host", "example.com:8443"], ["Accept", "*/*"]]);
  assert.deepEqual(r.rawContent, new Uint8Array(0));
  assert.equal(r.headers.has("content-length"), false);
  assert.equal(r.url, "https://example.com:8443/a?b=c");
});

Deno.test("Request.make: sets the body and Content-Length and keeps a given Host header", () => {
  const r = Request.make("POST", "http://example.com/", "héllo", [["host", "custom"], ["X", "1"]]);
  assert.equal(r.headers.get("host"), "custom");
  assert.deepEqual(r.headers.getAll("host"), ["custom"]);
  assert.equal(r.text, "héllo");
  assert.equal(r.headers.get("content-length"), "6");
  const b = Request.make("PUT", "http://example.com/", new Uint8Array([0, 1]));
  assert.equal(b.headers.get("content-length"), "2");
  const h = new Headers([["A", "b"]]);
  assert.equal(Request.make("GET", "http://x/", "", h).headers, h);
});

Deno.test("Request.make: IPv6 URLs, default path and default ports", () => {
  const r = Request.make("GET", "http://[::1]:8080");
  assert.equal(r.host, "::1");
  assert.equal(r.port, 8080);
  assert.equal(r.path, "/");
  assert.equal(r.headers.get("host"), "[::1]:8080");
  assert.equal(Request.make("GET", "https://h.org").port, 443);
});

Deno.test("Request.make: an invalid URL throws", () => {
  assert.throws(() => Request.make("GET", "/relative"));
});

Deno.test("Request: copy is deep for headers and trailers and keeps every field", () => {
  const r = req({ authority: "example.com", trailers: new Headers([["T", "1"]]), content: "body" });
  r.stream = true;
  const c = r.copy();
  assert.equal(c.url, r.url);
  assert.equal(c.authority, "example.com");
  assert.equal(c.stream, true);
  assert.equal(c.text, "body");
  c.headers.set("host", "changed");
  c.trailers!.set("T", "2");
  assert.equal(r.headers.get("host"), "example.com");
  assert.equal(r.trailers!.get("t"), "1");
  assert.deepEqual(r.toJSON(), {
    method: "GET",
    url: "http://example.com/a/b?x=1&y=2",
    httpVersion: "HTTP/1.1",
    headers: [["Host", "example.com"]],
  });
});

// ---------------------------------------------------------------- Response

Deno.test("Response.make: reason from the status table, Content-Length set, timestamps now", () => {
  const before = Date.now() / 1000;
  const r = Response.make(404, "not here", { "Content-Type": "text/plain" });
  assert.equal(r.statusCode, 404);
  assert.equal(r.reason, "Not Found");
  assert.equal(r.text, "not here");
  assert.equal(r.headers.get("content-length"), "8");
  assert.equal(r.headers.get("content-type"), "text/plain");
  assert.ok(r.timestampStart >= before);
  assert.equal(r.timestampEnd, r.timestampStart);
});

Deno.test("Response.make: defaults to 200 with an empty body and Content-Length 0", () => {
  const r = Response.make();
  assert.equal(r.statusCode, 200);
  assert.equal(r.reason, "OK");
  assert.deepEqual(r.rawContent, new Uint8Array(0));
  assert.deepEqual(r.headers.fields, [["content-length", "0"]]);
  assert.equal(Response.make(299).reason, "Unknown");
});

Deno.test("Response.make: bytes bodies and gzip Content-Encoding are honoured", () => {
  const r = Response.make(200, new Uint8Array([1, 2, 3]), [["Content-Encoding", "gzip"]]);
  assert.deepEqual(r.content, new Uint8Array([1, 2, 3]));
  assert.deepEqual(decode(r.rawContent!, "gzip"), new Uint8Array([1, 2, 3]));
  assert.equal(r.headers.get("content-length"), String(r.rawContent!.length));
});

Deno.test("Response.make: a string body is encoded with the Content-Type charset", () => {
  const r = Response.make(200, "café", { "content-type": "text/html; charset=iso-8859-1" });
  assert.deepEqual(r.rawContent, new Uint8Array([0x63, 0x61, 0x66, 0xe9]));
  assert.equal(r.text, "café");
});

Deno.test("Response: a custom reason is kept", () => {
  assert.equal(new Response({ statusCode: 200, reason: "Fine" }).reason, "Fine");
  assert.equal(new Response({ statusCode: 503 }).reason, "Service Unavailable");
});

Deno.test("Response: cookies parses Set-Cookie name, value and attributes", () => {
  const r = new Response({
    statusCode: 200,
    headers: [
      ["Set-Cookie", "sid=abc=def; Path=/; HttpOnly; Max-Age=60"],
      ["set-cookie", "flag"],
      ["Set-Cookie", " x = 1 ;Secure"],
    ],
  });
  assert.deepEqual(r.cookies, [
    ["sid", "abc=def", { Path: "/", HttpOnly: "", "Max-Age": "60" }],
    ["flag", "", {}],
    ["x", "1", { Secure: "" }],
  ]);
  assert.deepEqual(new Response({ statusCode: 200 }).cookies, []);
});

Deno.test("Response: copy is deep and toJSON summarises the head", () => {
  const r = Response.make(201, "made", { "x-a": "1" });
  r.trailers = new Headers([["grpc-status", "0"]]);
  const c = r.copy();
  c.headers.set("x-a", "2");
  c.trailers!.set("grpc-status", "1");
  assert.equal(r.headers.get("x-a"), "1");
  assert.equal(r.trailers.get("grpc-status"), "0");
  assert.equal(c.text, "made");
  assert.equal(c.reason, "Created");
  assert.deepEqual(r.toJSON(), {
    statusCode: 201,
    reason: "Created",
    httpVersion: "HTTP/1.1",
    headers: [["x-a", "1"], ["content-length", "4"]],
  });
});

Deno.test("Request: urlencodedForm is a live view: set/append/delete rewrite the body (mitmproxy's urlencoded_form)", () => {
  const r = req({ method: "POST", headers: [["content-type", "application/x-www-form-urlencoded"]] });
  r.text = "a=1&b=x+y";
  assert.equal(r.urlencodedForm.get("b"), "x y");
  r.urlencodedForm.set("mitmproxy", "rocks");
  assert.equal(r.text, "a=1&b=x+y&mitmproxy=rocks");
  r.urlencodedForm.delete("a");
  assert.equal(r.text, "b=x+y&mitmproxy=rocks");
  assert.equal(r.headers.get("content-length"), String(r.rawContent!.length));
  // a body of another type reads as an empty form; writing replaces it and sets the Content-Type
  const j = req({ method: "POST", headers: [["content-type", "application/json"]] });
  j.text = "{}";
  assert.equal(j.urlencodedForm.size, 0);
  j.urlencodedForm.append("foo", "bar");
  assert.equal(j.headers.get("content-type"), "application/x-www-form-urlencoded");
  assert.equal(j.text, "foo=bar");
  j.urlencodedForm = [["x", "1"], ["x", "2"]];
  assert.equal(j.text, "x=1&x=2");
});

Deno.test("Request: multipartForm is a live view over the parts; assigning builds a multipart body", () => {
  const boundary = "XyZ";
  const r = req({ method: "POST", headers: [["content-type", `multipart/form-data; boundary=${boundary}`]] });
  r.content = te.encode(
    `--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n` +
      `--XyZ\r\nContent-Disposition: form-data; name="f"; filename="t.txt"\r\nContent-Type: text/plain\r\n\r\nfile\r\n` +
      `--XyZ--\r\n`,
  );
  assert.equal(r.multipartForm.getText("a"), "1");
  r.multipartForm.set("a", "2");
  assert.match(r.text!, /name="a"\r\n\r\n2\r\n/);
  assert.match(r.text!, /filename="t\.txt"\r\nContent-Type: text\/plain\r\n\r\nfile\r\n/, "other parts kept");
  assert.equal(r.headers.get("content-type"), `multipart/form-data; boundary=${boundary}`);
  const fresh = req({ method: "POST" });
  assert.equal(fresh.multipartForm.size, 0);
  fresh.multipartForm = { k: "v", bin: new Uint8Array([0, 1]) };
  const ct = fresh.headers.get("content-type")!;
  assert.match(ct, /^multipart\/form-data; boundary=-{20}[0-9a-f]{32}$/);
  assert.equal(fresh.multipartForm.getText("k"), "v");
  assert.deepEqual(fresh.multipartForm.get("bin"), new Uint8Array([0, 1]));
});

Deno.test("String(request/response/flow) reads like mitmproxy's repr", () => {
  const r = req();
  assert.equal(String(r), `Request(GET ${r.host}:${r.port}${r.path})`);
  assert.equal(String(Response.make(204)), "Response(204, no content)");
  assert.equal(
    String(Response.make(200, "hello", { "content-type": "text/html" })),
    "Response(200, text/html, 5b)",
  );
  assert.equal(
    String(new Response({ statusCode: 200, content: "x" })),
    "Response(200, unknown content type, 1b)",
  );
});
