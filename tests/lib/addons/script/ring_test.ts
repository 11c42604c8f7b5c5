import assert from "node:assert/strict";
import { RING_MAX, RingReader, RingWriter } from "../../../../lib/addons/script/ring.ts";

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);

Deno.test("ring: regions are copied out in order and released; the reader's copy is its own", () => {
  const w = new RingWriter(64);
  const r = new RingReader(w.buffer);
  const at = w.write(bytes(3, 1), bytes(2, 2));
  assert.equal(at, 0);
  assert.equal(w.used, 5);
  const end = w.end;
  const out = r.take(at, 5, end);
  assert.deepEqual([...out], [1, 1, 1, 2, 2]);
  assert.equal(w.used, 0, "released");
  // the region is reused; the copy taken before does not change
  const at2 = w.write(bytes(4, 9), null);
  assert.equal(at2, 5);
  assert.deepEqual([...out], [1, 1, 1, 2, 2]);
  assert.deepEqual([...r.take(at2, 4, w.end)], [9, 9, 9, 9]);
});

Deno.test("ring: full or oversized writes are refused; a region never wraps around the end", () => {
  const w = new RingWriter(16);
  const r = new RingReader(w.buffer);
  assert.equal(w.write(null, null), -1, "nothing to send");
  assert.equal(w.write(bytes(17, 1), null), -1, "larger than the ring");
  const a = w.write(bytes(10, 1), null);
  const aEnd = w.end;
  assert.equal(a, 0);
  assert.equal(w.write(bytes(7, 2), null), -1, "only 6 bytes free");
  const b = w.write(bytes(4, 2), null);
  const bEnd = w.end;
  assert.equal(b, 10);
  // 2 bytes left at the end: a 5-byte region must start over at 0, which is still in use
  assert.equal(w.write(bytes(5, 3), null), -1);
  r.take(a, 10, aEnd);
  const c = w.write(bytes(5, 3), null);
  assert.equal(c, 0, "skips the short tail");
  assert.equal(w.used, 4 + 2 + 5, "the skipped tail counts until released");
  assert.deepEqual([...r.take(b, 4, bEnd)], [2, 2, 2, 2]);
  assert.deepEqual([...r.take(c, 5, w.end)], [3, 3, 3, 3, 3]);
  assert.equal(w.used, 0);
  assert.equal(new RingWriter().write(bytes(RING_MAX + 1, 0), null), -1, "large bodies go another way");
});

Deno.test("ring: positions keep working across many laps", () => {
  const w = new RingWriter(1000);
  const r = new RingReader(w.buffer);
  for (let i = 0; i < 5000; i++) {
    const n = 1 + (i * 37) % 300;
    const at = w.write(bytes(n, i & 255), bytes(1, 7));
    assert.ok(at >= 0 && at + n + 1 <= 1000);
    const out = r.take(at, n + 1, w.end);
    assert.equal(out[0], i & 255);
    assert.equal(out[n], 7);
    assert.equal(w.used, 0);
  }
});
