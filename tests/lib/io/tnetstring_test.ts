import assert from "node:assert/strict";
import {
  dumps,
  loads,
  pop,
  pyFloatRepr,
  readTnetstrings,
  tfloat,
  TnetstringError,
  TnetstringReader,
  type TNetValue,
} from "../../../lib/io/tnetstring.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const s = (v: Parameters<typeof dumps>[0]) => dec.decode(dumps(v));

Deno.test("tnetstring: §6.1 examples", () => {
  assert.equal(s(enc.encode("hello")), "5:hello,");
  assert.equal(s(12345), "5:12345#");
  assert.equal(s([12345, true, 0]), "19:5:12345#4:true!1:0#]");
  assert.equal(s(null), "0:~");
  assert.equal(s(false), "5:false!");
  assert.equal(s("héllo"), "6:héllo;");
  assert.equal(s({ a: 1 }), "8:1:a;1:1#}");
  assert.equal(s(new Map<unknown, unknown>([[enc.encode("k"), "v"]]) as never), "8:1:k,1:v;}");
  assert.equal(s(-42), "3:-42#");
  assert.equal(s(2n ** 64n), "20:18446744073709551616#");
  assert.equal(s([]), "0:]");
  assert.equal(s({}), "0:}");
});

Deno.test("tnetstring: floats use Python repr", () => {
  assert.equal(s(1.5), "3:1.5^");
  assert.equal(s(tfloat(1)), "3:1.0^");
  assert.equal(s(tfloat(946681200)), "11:946681200.0^");
  const cases: [number, string][] = [
    [1e-5, "1e-05"],
    [0.0001, "0.0001"],
    [1e16, "1e+16"],
    [1e15, "1000000000000000.0"],
    [1.5e300, "1.5e+300"],
    [-0, "-0.0"],
    [Infinity, "inf"],
    [-Infinity, "-inf"],
    [NaN, "nan"],
    [5e-324, "5e-324"],
    [0.1, "0.1"],
    [123456789012345680, "1.2345678901234568e+17"],
  ];
  for (const [v, r] of cases) assert.equal(pyFloatRepr(v), r, String(v));
  for (const r of ["1.0", "1e-05", "1e+16", "-2.5", "inf", "-inf", "1E5", " 3.0 "]) {
    assert.equal(loads(enc.encode(`${r.length}:${r}^`)), Number(r.trim().replace("inf", "Infinity")));
  }
  assert.ok(Number.isNaN(loads(enc.encode("3:nan^")) as number));
});

Deno.test("tnetstring: decoding keeps types; ints stay exact", () => {
  const v = loads(enc.encode("41:5:bytes,3:str;2:-7#4:true!0:~0:]3:2.5^0:}]")) as unknown[];
  assert.deepEqual(v[0], enc.encode("bytes"));
  assert.equal(v[1], "str");
  assert.equal(v[2], -7);
  assert.equal(v[3], true);
  assert.equal(v[4], null);
  assert.deepEqual(v[5], []);
  assert.equal(v[6], 2.5);
  assert.deepEqual(v[7], {});
  assert.equal(loads(enc.encode("20:18446744073709551616#")), 18446744073709551616n);
  assert.equal(loads(enc.encode("16:9007199254740991#")), 9007199254740991);
  // bytes dict keys (Python 2 era files) decode to strings
  assert.deepEqual(loads(enc.encode("12:3:key,3:val;}")), { key: "val" });
  // round trip of a nested structure
  const x = {
    a: [1, 2.5, "x", enc.encode("\x00\xff"), null, true],
    b: { c: { d: [] } },
    ...JSON.parse('{"__proto__": 1}'),
  };
  const back = loads(dumps(x)) as Record<string, unknown>;
  assert.deepEqual(back.b, { c: { d: [] } });
  assert.deepEqual((back.a as unknown[]).filter((_, i) => i !== 3), [1, 2.5, "x", null, true]);
  assert.deepEqual((back.a as unknown[])[3], enc.encode("\x00\xff"));
  assert.equal(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, 1);
  const [first, rest] = pop(enc.encode("1:a,1:b,"));
  assert.deepEqual(first, enc.encode("a"));
  assert.equal(dec.decode(rest), "1:b,");
});

Deno.test("tnetstring: errors carry the byte offset", () => {
  const bad: [string, RegExp][] = [
    ["5:12345", /truncated value/],
    ["5:12345?", /unknown type tag/],
    ["x:", /invalid length prefix/],
    ["1234567890123:", /absurdly large/],
    ["3:abc#", /invalid integer literal/],
    ["3:abc^", /invalid float literal/],
    ["3:yes!", /invalid boolean literal/],
    ["1:x~", /invalid null literal/],
    ["2:\xff\xfe;", /invalid UTF-8/],
    ["4:1:a;}", /dict key without value/],
  ];
  for (const [input, re] of bad) {
    const bytes = Uint8Array.from(input, (c) => c.charCodeAt(0));
    assert.throws(
      () => loads(bytes),
      (e: unknown) => e instanceof TnetstringError && re.test(e.message),
      input,
    );
  }
  try {
    loads(enc.encode("9:1:a,2:xx#]"));
    assert.fail("should throw");
  } catch (e) {
    assert.ok(e instanceof TnetstringError);
    assert.equal(e.offset, 6);
    assert.match(e.message, /at byte offset 6/);
  }
});

async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.slice(i, i + size);
}

Deno.test("tnetstring: streaming reader across chunk boundaries", async () => {
  const items: TNetValue[] = [{ a: 1 }, [enc.encode("x".repeat(1000)), "y"], null, 3.25, {
    big: enc.encode("z".repeat(200_000)),
  }];
  const all = new Uint8Array(items.reduce((n: number, i) => n + dumps(i).length, 0));
  let o = 0;
  for (const i of items) {
    all.set(dumps(i), o);
    o += dumps(i).length;
  }
  for (const size of [1, 3, 7, 100, 65536, all.length]) {
    const got: TNetValue[] = [];
    for await (const v of readTnetstrings(chunked(all, size))) got.push(v);
    assert.deepEqual(got, items, `chunk size ${size}`);
  }
  // offsets
  const r = new TnetstringReader(chunked(all, 5));
  const first = await r.next();
  assert.equal(first?.offset, 0);
  const second = await r.next();
  assert.equal(second?.offset, dumps(items[0]).length);
});

Deno.test("tnetstring: streaming reader reports truncation with offset", async () => {
  const one = dumps({ a: "b" });
  const data = new Uint8Array(one.length * 2 - 3);
  data.set(one);
  data.set(one.subarray(0, one.length - 3), one.length);
  const got: TNetValue[] = [];
  await assert.rejects(async () => {
    for await (const v of readTnetstrings(chunked(data, 4))) got.push(v);
  }, (e: unknown) => e instanceof TnetstringError && e.offset === one.length && /truncated/.test(e.message));
  assert.deepEqual(got, [{ a: "b" }]);
  // a truncated length prefix
  await assert.rejects(async () => {
    for await (const _ of readTnetstrings(chunked(enc.encode("0:~12"), 2))) { /* */ }
  }, /incomplete length prefix.*byte offset 3/);
});

Deno.test("tnetstring: integers and length prefixes of every digit count, to the largest safe integer", () => {
  for (const n of [0, 1, 9, 10, 99, 100, 12345, 2 ** 31, 2 ** 32 + 7, 2 ** 53 - 1]) {
    assert.equal(s(n), `${String(n).length}:${n}#`);
    assert.equal(s(-n), n === 0 ? "1:0#" : `${String(n).length + 1}:-${n}#`);
    assert.equal(loads(dumps(n)), n);
  }
  const long = "x".repeat(123456);
  assert.equal(s(long).slice(0, 7), "123456:");
});
