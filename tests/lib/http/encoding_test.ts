import assert from "node:assert/strict";
import zlib from "node:zlib";
import { decode, decodeAll, encode, encodeAll, SUPPORTED_ENCODINGS } from "../../../lib/http/encoding.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const body = te.encode("hello hello hello hello, compressible world! ".repeat(20));

Deno.test("encoding: every supported coding round-trips", () => {
  for (const enc of ["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "none", ""]) {
    const e = encode(body, enc);
    assert.deepEqual(decode(e, enc), body, enc);
  }
});

Deno.test("encoding: compressing codings actually shrink a repetitive body", () => {
  for (const enc of ["gzip", "deflate", "br", "zstd"]) {
    assert.ok(encode(body, enc).length < body.length / 2, enc);
  }
});

Deno.test("encoding: identity returns the same bytes", () => {
  assert.equal(encode(body, "identity"), body);
  assert.equal(decode(body, "none"), body);
});

Deno.test("encoding: coding names are case-insensitive and trimmed", () => {
  const gz = encode(body, " GZIP ");
  assert.deepEqual(decode(gz, "Gzip"), body);
  assert.equal(gz[0], 0x1f);
  assert.equal(gz[1], 0x8b);
});

Deno.test("encoding: decodes what other implementations produce", () => {
  assert.deepEqual(decode(zlib.gzipSync(body), "gzip"), body);
  assert.deepEqual(decode(zlib.brotliCompressSync(body), "br"), body);
  assert.deepEqual(decode(zlib.deflateSync(body), "deflate"), body);
});

Deno.test("encoding: deflate also accepts raw deflate streams without a zlib header", () => {
  const raw = zlib.deflateRawSync(body);
  assert.deepEqual(decode(new Uint8Array(raw), "deflate"), body);
});

Deno.test("encoding: decoders return plain Uint8Arrays", () => {
  const out = decode(encode(body, "gzip"), "gzip");
  assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype);
});

Deno.test("encoding: unknown codings throw", () => {
  assert.throws(() => decode(body, "compress"), /unknown content encoding: compress/);
  assert.throws(() => encode(body, "bogus"), /unknown content encoding: bogus/);
});

Deno.test("encoding: corrupt gzip/deflate/zstd data throws", () => {
  const junk = te.encode("this is not compressed");
  for (const enc of ["gzip", "deflate", "zstd"]) {
    assert.throws(() => decode(junk, enc), Error, enc);
  }
  const gz = encode(body, "gzip");
  assert.throws(() => decode(gz.subarray(0, gz.length - 10), "gzip"), /unexpected end of file/);
  const df = encode(body, "deflate");
  assert.throws(() => decode(df.subarray(0, df.length - 4), "deflate"));
});

// Deno 2.9's node:zlib brotliDecompressSync returns empty/partial output instead of throwing on corrupt or
// truncated input (the same for truncated zstd). Kept as an ignored test documenting the gap.
Deno.test({
  name: "encoding: corrupt or truncated brotli data throws (blocked by Deno node:zlib)",
  ignore: true,
  fn() {
    assert.throws(() => decode(te.encode("this is not compressed"), "br"));
    const br = encode(body, "br");
    assert.throws(() => decode(br.subarray(0, br.length - 3), "br"));
  },
});

Deno.test("encodeAll/decodeAll: apply a list of codings in header order and reverse it to decode", () => {
  const enc = encodeAll(body, "gzip, br");
  // br was applied last, so it must be removed first
  assert.deepEqual(decode(decode(enc, "br"), "gzip"), body);
  assert.deepEqual(decodeAll(enc, "gzip, br"), body);
  assert.deepEqual(decodeAll(encodeAll(body, "deflate,zstd,identity"), " deflate , zstd, identity"), body);
});

Deno.test("encodeAll/decodeAll: no header or an empty one leaves the body untouched", () => {
  assert.equal(decodeAll(body, undefined), body);
  assert.equal(encodeAll(body, ""), body);
  assert.equal(decodeAll(body, " , "), body);
  assert.equal(td.decode(decodeAll(te.encode("x"), "identity")), "x");
});

Deno.test("encoding: SUPPORTED_ENCODINGS lists the codecs mitmproxy supports", () => {
  for (const e of ["gzip", "deflate", "br", "zstd", "identity"]) {
    assert.ok(SUPPORTED_ENCODINGS.includes(e), e);
  }
});
