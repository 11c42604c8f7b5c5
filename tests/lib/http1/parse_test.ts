import assert from "node:assert/strict";
import {
  bodyFraming,
  ChunkedDecoder,
  DEFAULT_LIMITS,
  findHeadEnd,
  HttpSyntaxError,
  parseAuthority,
  parseRequestHead,
  parseResponseHead,
  parseTarget,
} from "../../../lib/http1/parse.ts";
import { concat, fromLatin1, latin1 } from "../../../lib/http/bytes.ts";

const b = (s: string) => fromLatin1(s);

/** Assert `fn` throws an HttpSyntaxError with `status` and a one-line reason matching `re`. */
function assertSyntax(fn: () => unknown, status: number, re?: RegExp, label?: string): HttpSyntaxError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof HttpSyntaxError, `${label ?? ""}: expected HttpSyntaxError, got ${err}`);
  assert.equal(err.status, status, `${label ?? ""}: ${err.message}`);
  assert.equal(err.name, "HttpSyntaxError");
  assert.ok(
    err.message.length > 0 && !err.message.includes("\n"),
    `one-line reason: ${JSON.stringify(err.message)}`,
  );
  if (re) assert.match(err.message, re, label);
  return err;
}

// ---------------------------------------------------------------- HttpSyntaxError

Deno.test("HttpSyntaxError: defaults to status 400 and keeps a custom status", () => {
  const e = new HttpSyntaxError("bad");
  assert.equal(e.status, 400);
  assert.equal(e.message, "bad");
  assert.ok(e instanceof Error);
  assert.equal(new HttpSyntaxError("big", 431).status, 431);
});

// ---------------------------------------------------------------- findHeadEnd

Deno.test("findHeadEnd: returns the index just past CRLFCRLF", () => {
  const buf = b("GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY");
  assert.equal(findHeadEnd(buf), buf.length - 4);
});

Deno.test("findHeadEnd: accepts a bare LF LF and mixed LF CRLF endings", () => {
  for (
    const head of [
      "GET / HTTP/1.1\nHost: x\n\n",
      "GET / HTTP/1.1\nHost: x\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n\n",
    ]
  ) {
    assert.equal(findHeadEnd(b(head + "rest")), head.length, JSON.stringify(head));
  }
});

Deno.test("findHeadEnd: returns -1 while the head is incomplete", () => {
  assert.equal(findHeadEnd(b("")), -1);
  assert.equal(findHeadEnd(b("GET / HTTP/1.1\r\nHost: x\r\n")), -1);
  assert.equal(findHeadEnd(b("GET / HTTP/1.1\r\nHost: x\r\n\r")), -1);
  assert.equal(findHeadEnd(b("GET / HTTP/1.1\r\n")), -1);
  assert.equal(findHeadEnd(b("\r\nX")), -1);
});

Deno.test("findHeadEnd: finds the end when the head arrives one byte at a time", () => {
  const full = b("HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
  for (let n = 0; n < full.length; n++) assert.equal(findHeadEnd(full.subarray(0, n)), -1, `prefix ${n}`);
  assert.equal(findHeadEnd(full), full.length);
});

Deno.test("findHeadEnd: `from` resumes a scan without missing a terminator across the boundary", () => {
  const buf = b("GET / HTTP/1.1\r\nA: b\r\n\r\n");
  // a caller that already scanned up to (but excluding) the last 3 bytes resumes 3 back
  assert.equal(findHeadEnd(buf, buf.length - 4), buf.length);
  assert.equal(findHeadEnd(buf, buf.length), -1);
});

// ---------------------------------------------------------------- parseRequestHead

Deno.test("parseRequestHead: parses method, target, version and ordered headers", () => {
  const h = parseRequestHead(b("POST /submit?a=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-a: 2\r\n\r\n"));
  assert.equal(h.method, "POST");
  assert.equal(h.target, "/submit?a=1");
  assert.equal(h.httpVersion, "HTTP/1.1");
  assert.deepEqual(h.headers, [["Host", "example.com"], ["X-A", "1"], ["x-a", "2"]]);
});

Deno.test("parseRequestHead: accepts HTTP/1.0, bare LF line endings and leading empty lines", () => {
  const h = parseRequestHead(b("\r\n\nGET http://x/ HTTP/1.0\nA: b\n\n"));
  assert.equal(h.method, "GET");
  assert.equal(h.target, "http://x/");
  assert.equal(h.httpVersion, "HTTP/1.0");
  assert.deepEqual(h.headers, [["A", "b"]]);
});

Deno.test("parseRequestHead: trims optional whitespace around values but keeps inner spaces", () => {
  const h = parseRequestHead(b("GET / HTTP/1.1\r\nA:   x  y \t\r\nB:\r\nC:\tz\r\n\r\n"));
  assert.deepEqual(h.headers, [["A", "x  y"], ["B", ""], ["C", "z"]]);
});

Deno.test("parseRequestHead: keeps non-ASCII (obs-text) bytes of values exactly, including 0xA0", () => {
  // "voilà" in UTF-8 ends with the byte 0xA0, which is not whitespace on the wire
  const value = "voil\xc3\xa0";
  const h = parseRequestHead(b(`GET / HTTP/1.1\r\nX-Name: ${value}\r\nX-Nbsp: \xa0a\xa0\r\n\r\n`));
  assert.equal(h.headers[0][1], value);
  assert.equal(h.headers[1][1], "\xa0a\xa0");
});

Deno.test("parseRequestHead: handles authority-form, asterisk-form and lowercase methods", () => {
  assert.equal(parseRequestHead(b("CONNECT example.com:443 HTTP/1.1\r\n\r\n")).target, "example.com:443");
  assert.equal(parseRequestHead(b("OPTIONS * HTTP/1.1\r\n\r\n")).target, "*");
  assert.equal(parseRequestHead(b("patch / HTTP/1.1\r\n\r\n")).method, "patch");
});

Deno.test("parseRequestHead: rejects malformed request lines with 400", () => {
  const cases: [string, RegExp][] = [
    ["\r\n\r\n", /empty request/],
    ["GET /\r\n\r\n", /malformed request line/],
    ["GET  / HTTP/1.1\r\n\r\n", /malformed request line/],
    ["GET / HTTP/1.1 extra\r\n\r\n", /malformed request line/],
    ["GET\t/\tHTTP/1.1\r\n\r\n", /malformed request line/],
    ["G(T / HTTP/1.1\r\n\r\n", /invalid method/],
    [" GET / HTTP/1.1\r\n\r\n", /malformed request line/],
    ["GET / HTTP/1.1 \r\n\r\n", /malformed request line/],
    ["GET / http/1.1\r\n\r\n", /invalid HTTP version/],
    ["GET / HTTP/1\r\n\r\n", /invalid HTTP version/],
    ["GET / HTTP/11.1\r\n\r\n", /invalid HTTP version/],
    ["GET / FOO/1.1\r\n\r\n", /invalid HTTP version/],
    ["GET /\x00 HTTP/1.1\r\n\r\n", /invalid character in request target/],
    ["GET /\x7f HTTP/1.1\r\n\r\n", /invalid character in request target/],
    ["GET /a\rb HTTP/1.1\r\n\r\n", /invalid character in request target/],
  ];
  for (const [head, re] of cases) {
    assertSyntax(() => parseRequestHead(b(head)), 400, re, JSON.stringify(head));
  }
});

Deno.test("parseRequestHead: answers HTTP/2.0 and HTTP/0.9 request lines with 505", () => {
  assertSyntax(
    () => parseRequestHead(b("GET / HTTP/2.0\r\n\r\n")),
    505,
    /unsupported HTTP version HTTP\/2\.0/,
  );
  assertSyntax(() => parseRequestHead(b("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), 505);
  assertSyntax(() => parseRequestHead(b("GET / HTTP/0.9\r\n\r\n")), 505);
  assertSyntax(() => parseRequestHead(b("GET / HTTP/3.0\r\n\r\n")), 505);
});

Deno.test("parseRequestHead: rejects malformed header lines with 400", () => {
  const cases: [string, RegExp][] = [
    ["NoColon", /malformed header line/],
    [": empty-name", /malformed header line/],
    ["Bad Name: x", /invalid header name/],
    ["Name : x", /invalid header name/],
    ["Na\x00me: x", /invalid header name/],
    ["Name(): x", /invalid header name/],
    ["\xe9: x", /invalid header name/],
    ["X: a\x00b", /invalid character in header X/],
    ["X: a\rb", /invalid character in header X/],
  ];
  for (const [line, re] of cases) {
    assertSyntax(
      () => parseRequestHead(b(`GET / HTTP/1.1\r\n${line}\r\n\r\n`)),
      400,
      re,
      JSON.stringify(line),
    );
  }
});

Deno.test("parseRequestHead: rejects obsolete line folding", () => {
  assertSyntax(
    () => parseRequestHead(b("GET / HTTP/1.1\r\nA: b\r\n  continued\r\n\r\n")),
    400,
    /line folding/,
  );
  assertSyntax(
    () => parseRequestHead(b("GET / HTTP/1.1\r\nA: b\r\n\tcontinued\r\n\r\n")),
    400,
    /line folding/,
  );
});

Deno.test("parseRequestHead: a head over maxHeadSize gives 431", () => {
  const head = b(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}\r\n\r\n`);
  assertSyntax(() => parseRequestHead(head, { maxHeadSize: 100, maxHeaders: 100 }), 431, /too large/);
  assert.doesNotThrow(() => parseRequestHead(head, { maxHeadSize: head.length, maxHeaders: 100 }));
  const huge = b(`GET / HTTP/1.1\r\nX: ${"a".repeat(DEFAULT_LIMITS.maxHeadSize)}\r\n\r\n`);
  assertSyntax(() => parseRequestHead(huge), 431);
});

Deno.test("parseRequestHead: more header fields than maxHeaders gives 431", () => {
  const lines = Array.from({ length: 5 }, (_, i) => `H${i}: v`).join("\r\n");
  const head = b(`GET / HTTP/1.1\r\n${lines}\r\n\r\n`);
  assertSyntax(
    () => parseRequestHead(head, { maxHeadSize: 65536, maxHeaders: 4 }),
    431,
    /too many header fields/,
  );
  assert.equal(parseRequestHead(head, { maxHeadSize: 65536, maxHeaders: 5 }).headers.length, 5);
  const many = Array.from({ length: DEFAULT_LIMITS.maxHeaders + 1 }, (_, i) => `H${i}: v`).join("\r\n");
  assertSyntax(() => parseRequestHead(b(`GET / HTTP/1.1\r\n${many}\r\n\r\n`)), 431);
});

// ---------------------------------------------------------------- parseResponseHead

Deno.test("parseResponseHead: parses version, status, reason and headers", () => {
  const h = parseResponseHead(b("HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n"));
  assert.equal(h.httpVersion, "HTTP/1.1");
  assert.equal(h.statusCode, 404);
  assert.equal(h.reason, "Not Found Here");
  assert.deepEqual(h.headers, [["Content-Length", "0"]]);
});

Deno.test("parseResponseHead: the reason phrase may be empty or absent", () => {
  assert.equal(parseResponseHead(b("HTTP/1.1 200\r\n\r\n")).reason, "");
  assert.equal(parseResponseHead(b("HTTP/1.0 204 \r\n\r\n")).reason, "");
  assert.equal(parseResponseHead(b("HTTP/1.0 204 \r\n\r\n")).httpVersion, "HTTP/1.0");
  assert.equal(parseResponseHead(b("HTTP/1.1 200 OK\n\n")).statusCode, 200);
});

Deno.test("parseResponseHead: rejects malformed status lines with 400", () => {
  const cases = [
    "\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 2000 OK\r\n\r\n",
    "HTTP/1.1 abc OK\r\n\r\n",
    "HTTP/1.1  200 OK\r\n\r\n",
    "HTTP/1.1200 OK\r\n\r\n",
    "http/1.1 200 OK\r\n\r\n",
    "ICY 200 OK\r\n\r\n",
    "HTTP/1 200 OK\r\n\r\n",
  ];
  for (const head of cases) {
    assertSyntax(
      () => parseResponseHead(b(head)),
      400,
      /malformed status line|empty response/,
      JSON.stringify(head),
    );
  }
});

Deno.test("parseResponseHead: rejects bad header lines and enforces the limits", () => {
  assertSyntax(
    () => parseResponseHead(b("HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n")),
    400,
    /invalid header name/,
  );
  assertSyntax(() => parseResponseHead(b("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n")), 400, /folding/);
  assertSyntax(
    () =>
      parseResponseHead(b("HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n\r\n"), { maxHeadSize: 1000, maxHeaders: 1 }),
    431,
  );
  assertSyntax(() => parseResponseHead(b("HTTP/1.1 200 OK\r\n\r\n"), { maxHeadSize: 5, maxHeaders: 1 }), 431);
});

// ---------------------------------------------------------------- parseAuthority

Deno.test("parseAuthority: splits host and port, with IPv6 brackets", () => {
  assert.deepEqual(parseAuthority("example.com:443"), { host: "example.com", port: 443 });
  assert.deepEqual(parseAuthority("[::1]:8080"), { host: "::1", port: 8080 });
  assert.deepEqual(parseAuthority("1.2.3.4:0"), { host: "1.2.3.4", port: 0 });
  assert.deepEqual(parseAuthority("h:65535"), { host: "h", port: 65535 });
});

Deno.test("parseAuthority: uses the default port when none is given", () => {
  assert.deepEqual(parseAuthority("example.com", 80), { host: "example.com", port: 80 });
  assert.deepEqual(parseAuthority("example.com:", 443), { host: "example.com", port: 443 });
  assert.deepEqual(parseAuthority("[2001:db8::1]", 443), { host: "2001:db8::1", port: 443 });
});

Deno.test("parseAuthority: rejects missing or invalid ports and hosts with 400", () => {
  const cases: [string, RegExp][] = [
    ["example.com", /missing port/],
    ["example.com:", /missing port/],
    ["example.com:65536", /invalid port/],
    ["example.com:123456", /invalid port/],
    ["example.com:-1", /invalid port/],
    ["example.com:+80", /invalid port/],
    ["example.com:8o", /invalid port/],
    [":443", /invalid host/],
    ["", /invalid host/],
    ["ex ample.com:80", /invalid host/],
    ["a/b:80", /invalid host/],
    ["user@host:80", /invalid host/],
    ["[::1", /invalid authority/],
    ["[::1]x:80", /invalid authority/],
    ["[]:80", /invalid host/],
  ];
  for (const [a, re] of cases) assertSyntax(() => parseAuthority(a), 400, re, a);
});

// ---------------------------------------------------------------- parseTarget

Deno.test("parseTarget: classifies origin, asterisk, authority and absolute forms", () => {
  assert.deepEqual(parseTarget("GET", "/a?b=1"), { form: "origin", path: "/a?b=1" });
  assert.deepEqual(parseTarget("OPTIONS", "*"), { form: "asterisk" });
  assert.deepEqual(parseTarget("CONNECT", "example.com:443"), {
    form: "authority",
    host: "example.com",
    port: 443,
  });
  assert.deepEqual(parseTarget("GET", "http://example.com:8080/p?q=1"), {
    form: "absolute",
    scheme: "http",
    host: "example.com",
    port: 8080,
    path: "/p?q=1",
  });
});

Deno.test("parseTarget: absolute-form defaults ports and paths, lowercases the scheme and drops userinfo", () => {
  assert.deepEqual(parseTarget("GET", "HTTPS://Example.com"), {
    form: "absolute",
    scheme: "https",
    host: "Example.com",
    port: 443,
    path: "/",
  });
  assert.equal(parseTarget("GET", "http://h?x=1").path, "/?x=1");
  assert.equal(parseTarget("GET", "http://h/p#frag").path, "/p");
  const u = parseTarget("GET", "http://user:pw@h.org:81/");
  assert.equal(u.host, "h.org");
  assert.equal(u.port, 81);
  const v6 = parseTarget("GET", "http://[::1]:8080/x");
  assert.equal(v6.host, "::1");
  assert.equal(v6.port, 8080);
});

Deno.test("parseTarget: rejects bad targets with 400", () => {
  const cases: [string, string, RegExp][] = [
    ["CONNECT", "example.com", /missing port/],
    ["CONNECT", "/path", /invalid host|missing port/],
    ["CONNECT", "example.com:99999", /invalid port/],
    ["GET", "example.com/path", /invalid request target/],
    ["GET", "ftp://example.com/", /unsupported scheme/],
    ["GET", "ws://example.com/", /unsupported scheme/],
    ["GET", "http:///path", /invalid host/],
    ["GET", "http://h:0x50/", /invalid port/],
    ["GET", "1http://h/", /invalid request target/],
  ];
  for (const [m, t, re] of cases) assertSyntax(() => parseTarget(m, t), 400, re, `${m} ${t}`);
});

// ---------------------------------------------------------------- bodyFraming

const req11 = { request: true as const, httpVersion: "HTTP/1.1" };
const resp = (statusCode = 200, requestMethod = "GET", httpVersion = "HTTP/1.1") => ({
  request: false as const,
  httpVersion,
  statusCode,
  requestMethod,
});

Deno.test("bodyFraming: requests without framing headers have no body", () => {
  assert.deepEqual(bodyFraming([], req11), { kind: "none" });
  assert.deepEqual(bodyFraming([["Host", "x"]], { request: true, httpVersion: "HTTP/1.0" }), {
    kind: "none",
  });
});

Deno.test("bodyFraming: responses without framing headers are read until close", () => {
  assert.deepEqual(bodyFraming([], resp()), { kind: "close" });
});

Deno.test("bodyFraming: Content-Length gives a fixed length, and 0 means no body", () => {
  assert.deepEqual(bodyFraming([["Content-Length", "42"]], req11), { kind: "length", length: 42 });
  assert.deepEqual(bodyFraming([["content-length", "0"]], req11), { kind: "none" });
  assert.deepEqual(bodyFraming([["CONTENT-LENGTH", " 7 "]], resp()), { kind: "length", length: 7 });
});

Deno.test("bodyFraming: repeated identical Content-Length values are accepted", () => {
  assert.deepEqual(bodyFraming([["Content-Length", "5"], ["Content-Length", "5"]], req11), {
    kind: "length",
    length: 5,
  });
  assert.deepEqual(bodyFraming([["Content-Length", "5, 5"]], req11), { kind: "length", length: 5 });
});

Deno.test("bodyFraming: conflicting Content-Length values are rejected (smuggling)", () => {
  assertSyntax(
    () => bodyFraming([["Content-Length", "5"], ["Content-Length", "6"]], req11),
    400,
    /conflicting/,
  );
  assertSyntax(() => bodyFraming([["Content-Length", "5, 6"]], resp()), 400, /conflicting/);
});

Deno.test("bodyFraming: invalid Content-Length values are rejected", () => {
  for (const v of ["", "-1", "+5", "05", "0x10", "1.5", "abc", "1 2", "99999999999999999"]) {
    assertSyntax(() => bodyFraming([["Content-Length", v]], req11), 400, /Content-Length/, JSON.stringify(v));
  }
});

Deno.test("bodyFraming: Transfer-Encoding chunked (any case) is chunked", () => {
  assert.deepEqual(bodyFraming([["Transfer-Encoding", "chunked"]], req11), { kind: "chunked" });
  assert.deepEqual(bodyFraming([["transfer-encoding", "Chunked"]], resp()), { kind: "chunked" });
});

Deno.test("bodyFraming: a transfer coding besides chunked is refused, not silently dropped", () => {
  for (const te of [["gzip, chunked"], ["gzip", "chunked"], ["deflate,chunked"]]) {
    const fields = te.map((v): [string, string] => ["Transfer-Encoding", v]);
    assertSyntax(
      () => bodyFraming(fields, req11),
      501,
      /unsupported Transfer-Encoding: .*not gzip|not deflate/,
    );
    assertSyntax(() => bodyFraming(fields, resp()), 501, /only chunked is supported/);
  }
});

Deno.test("bodyFraming: Transfer-Encoding together with Content-Length is rejected (smuggling)", () => {
  assertSyntax(
    () => bodyFraming([["Content-Length", "5"], ["Transfer-Encoding", "chunked"]], req11),
    400,
    /both Transfer-Encoding and Content-Length/,
  );
  assertSyntax(() => bodyFraming([["Transfer-Encoding", "chunked"], ["Content-Length", "0"]], resp()), 400);
});

Deno.test("bodyFraming: Transfer-Encoding in an HTTP/1.0 message is rejected", () => {
  assertSyntax(
    () => bodyFraming([["Transfer-Encoding", "chunked"]], { request: true, httpVersion: "HTTP/1.0" }),
    400,
    /HTTP\/1\.0/,
  );
  assertSyntax(() => bodyFraming([["Transfer-Encoding", "chunked"]], resp(200, "GET", "HTTP/1.0")), 400);
});

Deno.test("bodyFraming: chunked applied twice is rejected", () => {
  assertSyntax(() => bodyFraming([["Transfer-Encoding", "chunked, chunked"]], req11), 400, /more than once/);
  assertSyntax(
    () => bodyFraming([["Transfer-Encoding", "chunked"], ["Transfer-Encoding", "chunked"]], resp()),
    400,
    /more than once/,
  );
});

Deno.test("bodyFraming: a request Transfer-Encoding not ending in chunked is 501", () => {
  for (const te of ["gzip", "identity", "chunked, gzip", "x-custom"]) {
    assertSyntax(
      () => bodyFraming([["Transfer-Encoding", te]], req11),
      501,
      /unsupported Transfer-Encoding/,
      te,
    );
  }
});

Deno.test("bodyFraming: a response Transfer-Encoding not ending in chunked is refused (it cannot be forwarded)", () => {
  for (const te of ["gzip", "chunked, gzip"]) {
    assertSyntax(
      () => bodyFraming([["Transfer-Encoding", te]], resp()),
      501,
      /unsupported Transfer-Encoding/,
      te,
    );
  }
});

Deno.test("bodyFraming: HEAD, 1xx, 204 and 304 responses have no body whatever the headers say", () => {
  const hs: [string, string][] = [["Content-Length", "10"]];
  assert.deepEqual(bodyFraming(hs, resp(200, "HEAD")), { kind: "none" });
  assert.deepEqual(bodyFraming(hs, resp(100)), { kind: "none" });
  assert.deepEqual(bodyFraming(hs, resp(101)), { kind: "none" });
  assert.deepEqual(bodyFraming(hs, resp(204)), { kind: "none" });
  assert.deepEqual(bodyFraming(hs, resp(304)), { kind: "none" });
  assert.deepEqual(bodyFraming([["Transfer-Encoding", "chunked"]], resp(204)), { kind: "none" });
});

Deno.test("bodyFraming: a 2xx answer to CONNECT has no body, a failed CONNECT has one", () => {
  assert.deepEqual(bodyFraming([["Content-Length", "5"]], resp(200, "CONNECT")), { kind: "none" });
  assert.deepEqual(bodyFraming([], resp(200, "CONNECT")), { kind: "none" });
  assert.deepEqual(bodyFraming([["Content-Length", "5"]], resp(407, "CONNECT")), {
    kind: "length",
    length: 5,
  });
});

// ---------------------------------------------------------------- ChunkedDecoder

const CHUNKED = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";

function feedAll(dec: ChunkedDecoder, parts: Uint8Array[]) {
  const data: Uint8Array[] = [];
  let done = false;
  let rest: Uint8Array | null = null;
  for (const p of parts) {
    assert.ok(!done, "no feed after done");
    const r = dec.feed(p);
    data.push(...r.data);
    done = r.done;
    rest = r.rest;
  }
  return { body: latin1(concat(data)), done, rest };
}

Deno.test("ChunkedDecoder: decodes a complete body in one feed", () => {
  const r = feedAll(new ChunkedDecoder(), [b(CHUNKED)]);
  assert.equal(r.body, "hello, world");
  assert.equal(r.done, true);
  assert.equal(r.rest, null);
});

Deno.test("ChunkedDecoder: decodes a body split at every byte boundary", () => {
  const wire = b(CHUNKED + "NEXT");
  for (let i = 0; i <= wire.length; i++) {
    const dec = new ChunkedDecoder();
    const first = dec.feed(wire.subarray(0, i));
    let body = latin1(concat(first.data));
    let done = first.done;
    let rest = latin1(first.rest ?? new Uint8Array(0));
    if (done) {
      // the caller keeps the unfed bytes after the body
      rest += latin1(wire.subarray(i));
    } else {
      const second = dec.feed(wire.subarray(i));
      body += latin1(concat(second.data));
      done = second.done;
      rest = latin1(second.rest ?? new Uint8Array(0));
    }
    assert.equal(body, "hello, world", `split at ${i}`);
    assert.equal(done, true, `split at ${i}`);
    assert.equal(rest, "NEXT", `rest at ${i}`);
  }
});

Deno.test("ChunkedDecoder: decodes a body fed one byte at a time", () => {
  const wire = b(CHUNKED);
  const dec = new ChunkedDecoder();
  const parts = Array.from(wire, (_, i) => wire.subarray(i, i + 1));
  const r = feedAll(dec, parts);
  assert.equal(r.body, "hello, world");
  assert.equal(r.done, true);
});

Deno.test("ChunkedDecoder: binary chunk data passes through untouched", () => {
  const payload = new Uint8Array(300).map((_, i) => i % 256);
  const wire = concat([b("12c\r\n"), payload, b("\r\n0\r\n\r\n")]);
  const dec = new ChunkedDecoder();
  const r = dec.feed(wire);
  assert.deepEqual(concat(r.data), payload);
  assert.ok(r.done);
});

Deno.test("ChunkedDecoder: returns the bytes after the last chunk as rest (pipelined next message)", () => {
  const r = new ChunkedDecoder().feed(b("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"));
  assert.ok(r.done);
  assert.equal(latin1(r.rest!), "GET / HTTP/1.1\r\n\r\n");
});

Deno.test("ChunkedDecoder: feeding after done returns everything as rest", () => {
  const dec = new ChunkedDecoder();
  assert.ok(dec.feed(b("0\r\n\r\n")).done);
  const again = dec.feed(b("more"));
  assert.ok(again.done);
  assert.deepEqual(again.data, []);
  assert.equal(latin1(again.rest!), "more");
});

Deno.test("ChunkedDecoder: accepts upper- and lower-case hex sizes, extensions and whitespace before them", () => {
  const r = new ChunkedDecoder().feed(b('A\r\n0123456789\r\na ; name="v"\r\n0123456789\r\n000\r\n\r\n'));
  assert.equal(latin1(concat(r.data)), "01234567890123456789");
  assert.ok(r.done);
});

Deno.test("ChunkedDecoder: accepts bare LF line endings", () => {
  const r = new ChunkedDecoder().feed(b("3\nabc\n0\n\n"));
  assert.equal(latin1(concat(r.data)), "abc");
  assert.ok(r.done);
});

Deno.test("ChunkedDecoder: parses trailers, keeping order and duplicates", () => {
  const dec = new ChunkedDecoder();
  const r = dec.feed(b("2\r\nok\r\n0\r\nGrpc-Status: 0\r\nX-T: a\r\nx-t: b\r\n\r\n"));
  assert.ok(r.done);
  assert.deepEqual(dec.trailers, [["Grpc-Status", "0"], ["X-T", "a"], ["x-t", "b"]]);
});

Deno.test("ChunkedDecoder: trailers split at every byte boundary are parsed the same", () => {
  const wire = b("1\r\nx\r\n0\r\nA: 1\r\nB: 2\r\n\r\n");
  for (let i = 0; i <= wire.length; i++) {
    const dec = new ChunkedDecoder();
    const r1 = dec.feed(wire.subarray(0, i));
    const r2 = r1.done ? r1 : dec.feed(wire.subarray(i));
    assert.ok(r2.done, `split ${i}`);
    assert.deepEqual(dec.trailers, [["A", "1"], ["B", "2"]], `split ${i}`);
  }
});

Deno.test("ChunkedDecoder: is not done until the final blank line arrives", () => {
  const dec = new ChunkedDecoder();
  assert.equal(dec.feed(b("3\r\nabc\r\n0\r\n")).done, false);
  assert.equal(dec.feed(b("T: v\r\n")).done, false);
  assert.equal(dec.feed(b("\r\n")).done, true);
  assert.deepEqual(dec.trailers, [["T", "v"]]);
});

Deno.test("ChunkedDecoder: rejects malformed chunk sizes with 400", () => {
  const cases = [
    "x\r\n",
    "\r\n",
    "-1\r\n",
    "+5\r\n",
    " 5\r\n",
    "0x5\r\n",
    "5 5\r\n",
    "1234567890abc\r\n",
    "5\x00\r\n",
    "g\r\n",
  ];
  for (const c of cases) {
    assertSyntax(() => new ChunkedDecoder().feed(b(c)), 400, /invalid chunk size/, JSON.stringify(c));
  }
});

Deno.test("ChunkedDecoder: rejects chunk data not followed by CRLF", () => {
  assertSyntax(
    () => new ChunkedDecoder().feed(b("3\r\nabcd\r\n0\r\n\r\n")),
    400,
    /missing CRLF after chunk data/,
  );
  assertSyntax(() => new ChunkedDecoder().feed(b("3\r\nabcX\r\n")), 400, /missing CRLF/);
});

Deno.test("ChunkedDecoder: a smuggling attempt with a too-short size is caught", () => {
  // the declared size covers less than the data; the leftover must not be parsed as a new message
  assertSyntax(() => new ChunkedDecoder().feed(b("2\r\nabcGET /admin HTTP/1.1\r\n\r\n0\r\n\r\n")), 400);
});

Deno.test("ChunkedDecoder: rejects overlong size and trailer lines", () => {
  assertSyntax(() => new ChunkedDecoder().feed(b("1" + ";x".repeat(5000))), 400, /too long/);
  const dec = new ChunkedDecoder();
  dec.feed(b("0\r\n"));
  assertSyntax(() => dec.feed(b("X: " + "a".repeat(9000))), 400, /too long/);
});

Deno.test("ChunkedDecoder: an overlong line is caught even when fed in small pieces", () => {
  const dec = new ChunkedDecoder();
  assertSyntax(
    () => {
      for (let i = 0; i < 10000; i++) dec.feed(b("0"));
    },
    400,
    /too long/,
  );
});

Deno.test("ChunkedDecoder: rejects malformed trailer fields with 400", () => {
  assertSyntax(() => new ChunkedDecoder().feed(b("0\r\nBad Trailer: x\r\n\r\n")), 400, /invalid header name/);
  assertSyntax(() => new ChunkedDecoder().feed(b("0\r\nno-colon\r\n\r\n")), 400, /malformed header line/);
  assertSyntax(() => new ChunkedDecoder().feed(b("0\r\nA: b\r\n folded\r\n\r\n")), 400, /folding/);
});

Deno.test("ChunkedDecoder: too many trailer fields gives 431", () => {
  const dec = new ChunkedDecoder({ maxHeadSize: 65536, maxHeaders: 2 });
  assertSyntax(() => dec.feed(b("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")), 431, /too many trailer fields/);
  const ok = new ChunkedDecoder({ maxHeadSize: 65536, maxHeaders: 2 });
  assert.ok(ok.feed(b("0\r\nA: 1\r\nB: 2\r\n\r\n")).done);
});

Deno.test("ChunkedDecoder: a large chunk spread over many feeds yields all its bytes", () => {
  const payload = new Uint8Array(100000).map((_, i) => (i * 31) % 256);
  const wire = concat([b(payload.length.toString(16) + "\r\n"), payload, b("\r\n0\r\n\r\n")]);
  const dec = new ChunkedDecoder();
  const out: Uint8Array[] = [];
  let done = false;
  for (let i = 0; i < wire.length; i += 4093) {
    const r = dec.feed(wire.subarray(i, i + 4093));
    out.push(...r.data);
    done = r.done;
  }
  assert.ok(done);
  assert.deepEqual(concat(out), payload);
});

Deno.test("parseRequestHead: lenientHeaders (validate_inbound_headers=false) accepts folding, odd names, space before colon", () => {
  const lenient = { ...DEFAULT_LIMITS, lenientHeaders: true };
  const h = parseRequestHead(
    b("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n  two\r\n\tthree \r\nBad Name: x\r\nSpaced : y\r\n\r\n"),
    lenient,
  );
  assert.deepEqual(h.headers, [["Host", "a"], ["X-Long", "one two three"], ["Bad Name", "x"], [
    "Spaced",
    "y",
  ]]);
  // still refused: a fold before any field, NUL/CR in names or values, an empty name, framing errors
  assertSyntax(
    () => parseRequestHead(b("GET / HTTP/1.1\r\n folded\r\nHost: a\r\n\r\n"), lenient),
    400,
    /folding/,
  );
  assertSyntax(
    () => parseRequestHead(b("GET / HTTP/1.1\r\nNa\x00me: x\r\n\r\n"), lenient),
    400,
    /header name/,
  );
  assertSyntax(
    () => parseRequestHead(b("GET / HTTP/1.1\r\n: x\r\n\r\n"), lenient),
    400,
    /malformed header line/,
  );
  assertSyntax(
    () => parseRequestHead(b("GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n"), lenient),
    400,
    /invalid character/,
  );
  const req = parseRequestHead(
    b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
    lenient,
  );
  assertSyntax(
    () => bodyFraming(req.headers, { request: true, httpVersion: req.httpVersion }),
    400,
    /conflicting Content-Length/,
  );
});

Deno.test("parse: the regex-free paths for http(s):// targets and HTTP/1.x status lines agree with the general ones", () => {
  // "HTTP://" takes the general (regex) path of parseTarget, "http://" the fast one: same parts
  const targets = [
    "//h/",
    "//h",
    "//h:81/a?b=1#frag",
    "//user:pw@h:8080/x",
    "//[::1]:443/p",
    "//h?q",
    "//h#only",
    "//h/a#b?c",
  ];
  for (const t of targets) {
    for (const scheme of ["http:", "https:"]) {
      const general = (() => {
        try {
          return parseTarget("GET", scheme.toUpperCase() + t);
        } catch (e) {
          return (e as Error).message;
        }
      })();
      const fast = (() => {
        try {
          return parseTarget("GET", scheme + t);
        } catch (e) {
          return (e as Error).message;
        }
      })();
      assert.deepEqual(fast, general, scheme + t);
    }
  }
  assertSyntax(() => parseTarget("GET", "http://a b/"), 400, /invalid host/);
  assertSyntax(() => parseTarget("GET", "http://h:123456/"), 400, /invalid port/);
  // status lines: the fast path must accept and split exactly what STATUS_LINE does
  const lines = [
    "HTTP/1.1 200 OK",
    "HTTP/1.1 200",
    "HTTP/1.1 200 ",
    "HTTP/1.0 404 Not  Found ",
    "HTTP/1.1 2000 OK",
    "HTTP/1.1 20 OK",
    "HTTP/1.1 200OK",
    "HTTP/1.2 200 OK",
    "HTTP/2.0 200 OK",
    "HTTP/1.1 2x0 OK",
  ];
  for (const l of lines) {
    const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(l);
    const got = (() => {
      try {
        const p = parseResponseHead(b(`${l}\r\nA: b\r\n\r\n`));
        return [p.httpVersion, p.statusCode, p.reason];
      } catch {
        return null;
      }
    })();
    assert.deepEqual(got, m ? [m[1], Number(m[2]), m[3] ?? ""] : null, l);
  }
});
