/** The segment file: appends read back before and after a flush, large entries, entries, torn tails. */
import assert from "node:assert/strict";
import { BODY, FILE_HEADER, RECORD, Segment } from "../../../lib/store/segment.ts";

function tmp(): { path: string; dir: string } {
  const dir = Deno.makeTempDirSync({ prefix: "mitmdeno-seg-" });
  return { path: `${dir}/s-seg`, dir };
}

Deno.test("segment: records and bodies read back buffered, flushed and reopened; entries list them", () => {
  const { path, dir } = tmp();
  try {
    const seg = Segment.open(path, true);
    const small = new TextEncoder().encode("hello");
    const big = new Uint8Array(600 * 1024).map((_, i) => i % 251);
    const a = seg.appendBody(small);
    const [r, rl] = seg.appendRecord(`{"k":"caf\u00e9 \u{1f600}"}`, a, null);
    assert.equal(seg.readText(r, rl), `{"k":"caf\u00e9 \u{1f600}"}`, "from the buffer");
    const b = seg.appendBody(big);
    const [r2, r2l] = seg.appendRecord("x".repeat(200_000), a, b);
    assert.ok(a > 0 && r > a && b > r && r2 > b);
    assert.deepEqual(seg.read(a, 5), small);
    assert.deepEqual(seg.read(b, big.length), big);
    seg.flush();
    assert.equal(Deno.statSync(path).size, seg.size);
    assert.equal(seg.readText(r2, r2l), "x".repeat(200_000));
    seg.close();
    const again = Segment.open(path, false);
    try {
      assert.equal(seg.size, again.size);
      assert.deepEqual(again.read(a, 5), small);
      assert.equal(again.readText(r, rl), `{"k":"caf\u00e9 \u{1f600}"}`);
      assert.equal(again.lengthAt(b), big.length);
      const out = { torn: null as number | null };
      const list = [...again.entries(FILE_HEADER, out)];
      assert.deepEqual(list.map((e) => [e.kind, e.offset, e.length, e.request, e.response]), [
        [BODY, a, 5, null, null],
        [RECORD, r, rl, a, null],
        [BODY, b, big.length, null, null],
        [RECORD, r2, r2l, a, b],
      ]);
      assert.equal(out.torn, null);
    } finally {
      again.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("segment: a torn last entry is reported where it starts; a file that is not a segment is refused", () => {
  const { path, dir } = tmp();
  try {
    const seg = Segment.open(path, true);
    const [r, rl] = seg.appendRecord(`{"a":1}`, null, null);
    seg.appendRecord(`{"b":2}`.repeat(100), null, null);
    seg.close();
    const full = Deno.readFileSync(path);
    Deno.writeFileSync(path, full.subarray(0, full.length - 10));
    const again = Segment.open(path, false);
    const out = { torn: null as number | null };
    const list = [...again.entries(FILE_HEADER, out)];
    assert.deepEqual(list.map((e) => e.offset), [r]);
    assert.equal(out.torn, r + rl);
    again.truncate(out.torn!);
    assert.equal(Deno.statSync(path).size, r + rl);
    again.close();
    Deno.writeTextFileSync(path, "not a segment file at all, no....");
    assert.throws(() => Segment.open(path, false), /is not a flow segment file/);
    assert.throws(() => Segment.open(`${dir}/none`, false), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
