import assert from "node:assert/strict";
import {
  clientWantsKeepAlive,
  connectionTokens,
  endToEndFields,
  HOP_BY_HOP,
  isUpgrade,
  placeContentLength,
} from "../../../lib/http1/hop.ts";
import { Headers } from "../../../lib/http/headers.ts";

Deno.test("HOP_BY_HOP: lists the RFC 9110 connection-specific fields in lower case", () => {
  for (
    const n of [
      "connection",
      "keep-alive",
      "proxy-connection",
      "te",
      "trailer",
      "transfer-encoding",
      "upgrade",
    ]
  ) {
    assert.ok(HOP_BY_HOP.has(n), n);
  }
  assert.ok(!HOP_BY_HOP.has("content-length"));
  assert.ok(!HOP_BY_HOP.has("host"));
});

Deno.test("connectionTokens: collects lower-cased tokens from every Connection header", () => {
  const h = new Headers([["Connection", "Keep-Alive, X-Custom"], ["connection", " close ,, "]]);
  assert.deepEqual([...connectionTokens(h)].sort(), ["close", "keep-alive", "x-custom"]);
  assert.equal(connectionTokens(new Headers()).size, 0);
});

Deno.test("isUpgrade: needs both an Upgrade header and the upgrade Connection token", () => {
  assert.ok(isUpgrade(new Headers([["Connection", "keep-alive, Upgrade"], ["Upgrade", "websocket"]])));
  assert.ok(!isUpgrade(new Headers([["Upgrade", "websocket"]])));
  assert.ok(!isUpgrade(new Headers([["Connection", "upgrade"]])));
  assert.ok(!isUpgrade(new Headers([["Connection", "upgraded"], ["Upgrade", "h2c"]])));
});

Deno.test("endToEndFields: drops hop-by-hop fields and fields named by Connection, keeping order", () => {
  const h = new Headers([
    ["Host", "x"],
    ["Connection", "keep-alive, X-Secret"],
    ["Keep-Alive", "timeout=5"],
    ["X-Secret", "s"],
    ["Transfer-Encoding", "chunked"],
    ["TE", "trailers"],
    ["Trailer", "X-T"],
    ["Proxy-Connection", "keep-alive"],
    ["Proxy-Authorization", "Basic abc"],
    ["Upgrade", "websocket"],
    ["Accept", "a"],
    ["accept", "b"],
  ]);
  assert.deepEqual(endToEndFields(h), [["Host", "x"], ["Accept", "a"], ["accept", "b"]]);
});

Deno.test("endToEndFields: with keepUpgrade keeps Upgrade and adds a single Connection: Upgrade", () => {
  const h = new Headers([
    ["Host", "x"],
    ["Connection", "Upgrade"],
    ["Upgrade", "websocket"],
    ["Sec-WebSocket-Key", "k"],
  ]);
  assert.deepEqual(endToEndFields(h, true), [
    ["Host", "x"],
    ["Upgrade", "websocket"],
    ["Sec-WebSocket-Key", "k"],
    ["Connection", "Upgrade"],
  ]);
});

Deno.test("endToEndFields: does not modify the given headers", () => {
  const h = new Headers([["Connection", "close"], ["A", "1"]]);
  endToEndFields(h);
  assert.deepEqual(h.fields, [["Connection", "close"], ["A", "1"]]);
});

Deno.test("clientWantsKeepAlive: HTTP/1.1 keeps alive unless close is asked", () => {
  assert.equal(clientWantsKeepAlive("HTTP/1.1", new Headers()), true);
  assert.equal(clientWantsKeepAlive("HTTP/1.1", new Headers([["Connection", "Close"]])), false);
  assert.equal(clientWantsKeepAlive("HTTP/1.1", new Headers([["Proxy-Connection", "close"]])), false);
  assert.equal(clientWantsKeepAlive("HTTP/1.1", new Headers([["Connection", "keep-alive, close"]])), false);
});

Deno.test("clientWantsKeepAlive: HTTP/1.0 closes unless keep-alive is asked", () => {
  assert.equal(clientWantsKeepAlive("HTTP/1.0", new Headers()), false);
  assert.equal(clientWantsKeepAlive("HTTP/1.0", new Headers([["Connection", "Keep-Alive"]])), true);
  assert.equal(clientWantsKeepAlive("HTTP/1.0", new Headers([["Proxy-Connection", "keep-alive"]])), true);
});

Deno.test("placeContentLength: the first field keeps its spelling and place with the new length; others go", () => {
  const f: [string, string][] = [["A", "1"], ["content-length", "3"], ["B", "2"], ["Content-Length", "3"]];
  assert.equal(placeContentLength(f, 7), true);
  assert.deepEqual(f, [["A", "1"], ["content-length", "7"], ["B", "2"]]);
  const none: [string, string][] = [["A", "1"]];
  assert.equal(placeContentLength(none, 7), false, "nothing placed: the caller appends one");
  assert.deepEqual(none, [["A", "1"]]);
  const chunked: [string, string][] = [["Content-Length", "3"], ["A", "1"]];
  assert.equal(placeContentLength(chunked, null), true);
  assert.deepEqual(chunked, [["A", "1"]], "no length to send: every Content-Length goes");
});
