import assert from "node:assert/strict";
import { Headers } from "../../../lib/http/headers.ts";

Deno.test("Headers: lookups are case-insensitive and keep the original spelling", () => {
  const h = new Headers([["Content-Type", "text/html"], ["X-Foo", "1"]]);
  assert.equal(h.get("content-type"), "text/html");
  assert.equal(h.get("CONTENT-TYPE"), "text/html");
  assert.ok(h.has("x-FOO"));
  assert.ok(!h.has("x-bar"));
  assert.equal(h.get("x-bar"), undefined);
  assert.deepEqual(h.keys(), ["Content-Type", "X-Foo"]);
});

Deno.test("Headers: duplicates are kept in order and joined with a comma", () => {
  const h = new Headers([["Accept", "a"], ["X", "1"], ["accept", "b"]]);
  assert.equal(h.get("accept"), "a, b");
  assert.deepEqual(h.getAll("ACCEPT"), ["a", "b"]);
  assert.equal(h.size, 3);
  assert.deepEqual(h.items(), [["Accept", "a, b"], ["X", "1"]]);
  assert.deepEqual(h.items(true), [["Accept", "a"], ["X", "1"], ["accept", "b"]]);
});

Deno.test("Headers: several Cookie fields are joined with a semicolon", () => {
  const h = new Headers([["Cookie", "a=1"], ["cookie", "b=2"]]);
  assert.equal(h.get("cookie"), "a=1; b=2");
  assert.equal(h.get("COOKIE"), "a=1; b=2");
});

Deno.test("Headers: Set-Cookie values stay separate in getAll", () => {
  const h = new Headers([["Set-Cookie", "a=1; Path=/"], ["set-cookie", "b=2"]]);
  assert.deepEqual(h.getAll("set-cookie"), ["a=1; Path=/", "b=2"]);
});

Deno.test("Headers: a name that is a prefix of another does not match", () => {
  const h = new Headers([["Content-Length", "5"], ["Content", "x"]]);
  assert.equal(h.get("content"), "x");
  assert.deepEqual(h.getAll("content-l"), []);
});

Deno.test("Headers: set replaces every field of that name, keeping the first's spelling and place", () => {
  const h = new Headers([["A", "1"], ["B", "2"], ["a", "3"], ["C", "4"]]);
  h.set("a", "x");
  assert.deepEqual(h.fields, [["A", "x"], ["B", "2"], ["C", "4"]]);
});

Deno.test("Headers: set appends a new field when the name is absent", () => {
  const h = new Headers([["A", "1"]]);
  h.set("B", "2");
  assert.deepEqual(h.fields, [["A", "1"], ["B", "2"]]);
});

Deno.test("Headers: setAll writes one field per value in place and an empty list removes the name", () => {
  const h = new Headers([["X", "0"], ["Set-Cookie", "old"], ["Y", "1"], ["set-cookie", "old2"]]);
  h.setAll("Set-Cookie", ["a=1", "b=2", "c=3"]);
  // as mitmproxy's set_all: existing fields take the values in place, extra values go last
  assert.deepEqual(h.fields, [["X", "0"], ["Set-Cookie", "a=1"], ["Y", "1"], ["set-cookie", "b=2"], [
    "Set-Cookie",
    "c=3",
  ]]);
  h.setAll("set-cookie", []);
  assert.deepEqual(h.fields, [["X", "0"], ["Y", "1"]]);
});

Deno.test("Headers: add/append keep existing fields and insert places a field at an index", () => {
  const h = new Headers();
  h.add("A", "1");
  h.append("a", "2");
  h.insert(0, "Host", "example.com");
  assert.deepEqual(h.fields, [["Host", "example.com"], ["A", "1"], ["a", "2"]]);
  assert.equal(h.get("a"), "1, 2");
});

Deno.test("Headers: delete removes every field of that name and reports whether any existed", () => {
  const h = new Headers([["A", "1"], ["B", "2"], ["a", "3"]]);
  assert.equal(h.delete("A"), true);
  assert.deepEqual(h.fields, [["B", "2"]]);
  assert.equal(h.delete("a"), false);
});

Deno.test("Headers: can be built from a record, an iterable and another Headers", () => {
  const fromRecord = new Headers({ "content-type": "text/plain", "x-n": 5 as unknown as string });
  assert.deepEqual(fromRecord.fields, [["content-type", "text/plain"], ["x-n", "5"]]);
  const fromMap = new Headers(new Map([["A", "1"]]));
  assert.deepEqual(fromMap.fields, [["A", "1"]]);
  const fromHeaders = new Headers(fromRecord);
  assert.deepEqual(fromHeaders.fields, fromRecord.fields);
  assert.deepEqual(new Headers().fields, []);
});

Deno.test("Headers: values are coerced to strings", () => {
  const h = new Headers();
  h.set("Content-Length", 42 as unknown as string);
  h.add("X", 1 as unknown as string);
  assert.equal(h.get("content-length"), "42");
  assert.equal(typeof h.fields[1][1], "string");
});

Deno.test("Headers: copy is deep", () => {
  const h = new Headers([["A", "1"]]);
  const c = h.copy();
  c.set("A", "2");
  c.fields[0][0] = "changed";
  assert.equal(h.get("a"), "1");
  assert.deepEqual(h.fields, [["A", "1"]]);
});

Deno.test("Headers: iterating yields every field in wire order", () => {
  const h = new Headers([["A", "1"], ["B", "2"], ["a", "3"]]);
  assert.deepEqual([...h], [["A", "1"], ["B", "2"], ["a", "3"]]);
});

Deno.test("Headers: toString gives the wire block and toJSON a joined object", () => {
  const h = new Headers([["Host", "x"], ["Accept", "a"], ["accept", "b"]]);
  assert.equal(h.toString(), "Host: x\r\nAccept: a\r\naccept: b\r\n");
  assert.deepEqual(h.toJSON(), { Host: "x", Accept: "a, b" });
  assert.equal(new Headers().toString(), "");
});

Deno.test("Headers: binary (latin1) values round-trip unchanged", () => {
  const v = "caf\xe9 \xff\x80";
  const h = new Headers([["X-Bin", v]]);
  assert.equal(h.get("x-bin"), v);
});
