import assert from "node:assert/strict";
import {
  concat,
  fromLatin1,
  fromUtf8,
  latin1,
  parseSize,
  prettySize,
  utf8,
} from "../../../lib/http/bytes.ts";

Deno.test("latin1: maps every byte 0..255 to one char and back, losslessly", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const s = latin1(all);
  assert.equal(s.length, 256);
  for (let i = 0; i < 256; i++) assert.equal(s.charCodeAt(i), i);
  assert.deepEqual(fromLatin1(s), all);
});

Deno.test("latin1: decodes a sub-range and inputs larger than one 8 KiB batch", () => {
  const b = new Uint8Array([65, 66, 67, 68]);
  assert.equal(latin1(b, 1, 3), "BC");
  assert.equal(latin1(b, 2), "CD");
  const big = new Uint8Array(20000).map((_, i) => 97 + (i % 26));
  const s = latin1(big);
  assert.equal(s.length, 20000);
  assert.equal(s.slice(8190, 8194), latin1(big.subarray(8190, 8194)));
  assert.deepEqual(fromLatin1(s), big);
});

Deno.test("fromLatin1: truncates chars above 255 to their low byte", () => {
  assert.deepEqual(fromLatin1("\u0141"), new Uint8Array([0x41]));
});

Deno.test("utf8/fromUtf8: round-trip text and replace invalid sequences with U+FFFD", () => {
  assert.deepEqual(utf8("é"), new Uint8Array([0xc3, 0xa9]));
  assert.equal(fromUtf8(utf8("héllo ✓")), "héllo ✓");
  assert.equal(fromUtf8(new Uint8Array([0x61, 0xff, 0x62])), "a\ufffdb");
});

Deno.test("concat: joins parts into one array (and returns a single part as is)", () => {
  const a = new Uint8Array([1, 2]);
  assert.equal(concat([a]), a);
  assert.deepEqual(concat([a, new Uint8Array(0), new Uint8Array([3])]), new Uint8Array([1, 2, 3]));
  assert.deepEqual(concat([]), new Uint8Array(0));
});

Deno.test("prettySize: formats bytes with b/k/m/g suffixes", () => {
  assert.equal(prettySize(0), "0b");
  assert.equal(prettySize(512), "512b");
  assert.equal(prettySize(1023), "1023b");
  assert.equal(prettySize(1024), "1.0k");
  assert.equal(prettySize(1536), "1.5k");
  assert.equal(prettySize(100 * 1024), "100k");
  assert.equal(prettySize(3.4 * 1024 * 1024), "3.4m");
  assert.equal(prettySize(1024 ** 3), "1.0g");
  assert.equal(prettySize(2 * 1024 ** 4), "2.0t");
});

Deno.test("parseSize: accepts plain numbers and k/m/g/t suffixes in powers of 1024", () => {
  assert.equal(parseSize("10"), 10);
  assert.equal(parseSize("512k"), 512 * 1024);
  assert.equal(parseSize("1m"), 1024 ** 2);
  assert.equal(parseSize("2G"), 2 * 1024 ** 3);
  assert.equal(parseSize("1t"), 1024 ** 4);
  assert.equal(parseSize(" 3kb "), 3 * 1024);
  assert.equal(parseSize("7b"), 7);
});

Deno.test("parseSize: rejects malformed sizes with a readable message", () => {
  for (const bad of ["", "k", "1.5m", "-1", "10x", "1 m b", "abc"]) {
    assert.throws(() => parseSize(bad), /invalid size/, bad);
  }
});
