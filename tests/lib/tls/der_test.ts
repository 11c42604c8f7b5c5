import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as der from "../../../lib/tls/der.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

Deno.test("DER encodings of the primitives certificates use", () => {
  assert.equal(hex(der.oid("2.5.29.17")), "0603551d11");
  assert.equal(hex(der.oid("1.2.840.113549.1.1.11")), "06092a864886f70d01010b");
  assert.equal(
    der.oidToString(der.content(der.oid("1.2.840.10045.4.3.2"), der.read(der.oid("1.2.840.10045.4.3.2")))),
    "1.2.840.10045.4.3.2",
  );
  assert.equal(hex(der.uint(Uint8Array.of(0x80))), "02020080");
  assert.equal(hex(der.uint(Uint8Array.of(0, 0, 5))), "020105");
  assert.equal(hex(der.smallInt(2)), "020102");
  assert.equal(hex(der.bool(true)), "0101ff");
  assert.equal(
    hex(der.time(new Date(Date.UTC(2036, 0, 2, 3, 4, 5)))),
    hex(Uint8Array.of(0x17, 13, ...new TextEncoder().encode("360102030405Z"))),
  );
  assert.equal(
    hex(der.time(new Date(Date.UTC(2050, 0, 1)))),
    hex(Uint8Array.of(0x18, 15, ...new TextEncoder().encode("20500101000000Z"))),
  );
  const long = der.octets(new Uint8Array(300));
  assert.equal(hex(long.subarray(0, 4)), "0482012c");
  const n = der.read(long);
  assert.equal(n.end - n.contentStart, 300);
  assert.throws(() => der.read(long.subarray(0, 100)), /past the end/);
  const s = der.seq(der.nul(), der.bool(false));
  assert.deepEqual(der.children(s, der.read(s)).map((c) => c.tag), [0x05, 0x01]);
});
