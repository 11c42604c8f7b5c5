import assert from "node:assert/strict";
import { chunk, lastChunk, requestHead, responseHead } from "../../../lib/http1/serialize.ts";
import {
  ChunkedDecoder,
  findHeadEnd,
  parseRequestHead,
  parseResponseHead,
} from "../../../lib/http1/parse.ts";
import { concat, latin1 } from "../../../lib/http/bytes.ts";
import { Headers } from "../../../lib/http/headers.ts";

Deno.test("requestHead: writes the request line, header fields and the blank line", () => {
  const out = requestHead("GET", "/a?b=1", "HTTP/1.1", [["Host", "example.com"], ["X", "1"]]);
  assert.equal(latin1(out), "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX: 1\r\n\r\n");
});

Deno.test("requestHead: works without headers and accepts a Headers object", () => {
  assert.equal(latin1(requestHead("OPTIONS", "*", "HTTP/1.0", [])), "OPTIONS * HTTP/1.0\r\n\r\n");
  const h = new Headers([["A", "1"], ["a", "2"]]);
  assert.equal(latin1(requestHead("GET", "/", "HTTP/1.1", h)), "GET / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n");
});

Deno.test("responseHead: writes the status line and header fields", () => {
  const out = responseHead("HTTP/1.1", 404, "Not Found", [["Content-Length", "0"]]);
  assert.equal(latin1(out), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  assert.equal(latin1(responseHead("HTTP/1.1", 200, "", [])), "HTTP/1.1 200 \r\n\r\n");
});

Deno.test("requestHead/responseHead: binary (latin1) header values are written byte for byte", () => {
  const out = responseHead("HTTP/1.1", 200, "OK", [["X", "caf\xe9\xff"]]);
  assert.deepEqual(
    out.subarray(out.length - 9, out.length - 4),
    new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0xff]),
  );
});

Deno.test("requestHead/responseHead: output parses back to the same head", () => {
  const fields: [string, string][] = [["Host", "h"], ["Set-Cookie", "a=1"], ["set-cookie", "b=2"], ["X", ""]];
  const rq = requestHead("POST", "http://h/x", "HTTP/1.1", fields);
  assert.equal(findHeadEnd(rq), rq.length);
  assert.deepEqual(parseRequestHead(rq), {
    method: "POST",
    target: "http://h/x",
    httpVersion: "HTTP/1.1",
    headers: fields,
  });
  const rs = responseHead("HTTP/1.0", 302, "Found", fields);
  assert.deepEqual(parseResponseHead(rs), {
    httpVersion: "HTTP/1.0",
    statusCode: 302,
    reason: "Found",
    headers: fields,
  });
});

Deno.test("chunk: frames data with its hex size and CRLF, and yields nothing for empty data", () => {
  const parts = chunk(new Uint8Array(26).fill(0x61));
  assert.equal(parts.length, 3);
  assert.equal(latin1(concat(parts)), "1a\r\n" + "a".repeat(26) + "\r\n");
  assert.deepEqual(chunk(new Uint8Array(0)), []);
});

Deno.test("lastChunk: writes the zero chunk, with or without trailers", () => {
  assert.equal(latin1(lastChunk()), "0\r\n\r\n");
  assert.equal(latin1(lastChunk(null)), "0\r\n\r\n");
  assert.equal(latin1(lastChunk([["Grpc-Status", "0"], ["X", "y"]])), "0\r\nGrpc-Status: 0\r\nX: y\r\n\r\n");
});

Deno.test("chunk/lastChunk: round-trip through ChunkedDecoder including trailers", () => {
  const payloads = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(4096).fill(7)];
  const wire = concat([...payloads.flatMap((p) => chunk(p)), lastChunk([["T", "v"]])]);
  const dec = new ChunkedDecoder();
  const r = dec.feed(wire);
  assert.ok(r.done);
  assert.equal(r.rest, null);
  assert.deepEqual(concat(r.data), concat(payloads));
  assert.deepEqual(dec.trailers, [["T", "v"]]);
});
