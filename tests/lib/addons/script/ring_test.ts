import assert from "node:assert/strict";
import { RING_MAX, RingReader, RingWriter } from "../../../../lib/addons/script/ring.ts";

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);

Deno.test("ring: messages come out in order with their bodies, copied; space is released as they are read", () => {
  const w = new RingWriter(256);
  const r = new RingReader(w.buffer);
  assert.equal(r.nextSeq(), 0, "empty");
  assert.ok(w.post(1, '{"a":"é"}', bytes(3, 1), bytes(2, 2)));
  assert.ok(w.post(2, "{}", null, null));
  assert.equal(r.nextSeq(), 1);
  const m1 = r.read();
  assert.equal(m1.text, '{"a":"é"}', "UTF-8 text");
  assert.deepEqual([...m1.body], [1, 1, 1, 2, 2]);
  assert.equal(r.nextSeq(), 2);
  const m2 = r.read();
  assert.deepEqual([m2.text, m2.body.length], ["{}", 0]);
  assert.equal(w.used, 0);
  // the reader's copies do not change when the space is reused
  assert.ok(w.post(3, "x".repeat(40), bytes(8, 9), null));
  assert.deepEqual([...m1.body], [1, 1, 1, 2, 2]);
  assert.equal(r.read().body[7], 9);
});

Deno.test("ring: a message that does not fit now is refused; records start over at 0 rather than wrap", () => {
  const w = new RingWriter(128);
  const r = new RingReader(w.buffer);
  assert.equal(w.post(1, "t", bytes(RING_MAX + 1, 0), null), false, "large bodies go another way");
  assert.equal(w.post(1, "x".repeat(200), null, null), false, "larger than the ring");
  assert.ok(w.post(1, "a", bytes(60, 1), null)); // 12 + 1 + 60 -> 76 bytes
  assert.equal(w.post(2, "b", bytes(60, 2), null), false, "52 bytes free");
  assert.ok(w.post(2, "b", bytes(20, 2), null)); // 36 bytes: 112 used, 16 left at the end
  assert.equal(r.read().body[0], 1); // [0, 76) free again
  assert.ok(w.post(3, "c", bytes(30, 3), null), "does not fit the 16 bytes at the end: starts at 0");
  assert.equal(w.used, 36 + 16 + 44, "the skipped end counts until the reader passes it");
  assert.equal(r.nextSeq(), 2);
  assert.equal(r.read().body[0], 2);
  assert.equal(r.nextSeq(), 3, "the reader follows the wrap marker");
  assert.equal(r.read().body[29], 3);
  assert.equal(w.used, 0);
});

Deno.test("ring: positions keep working across many laps", () => {
  const w = new RingWriter(1000);
  const r = new RingReader(w.buffer);
  for (let i = 1; i <= 5000; i++) {
    const n = (i * 37) % 300;
    assert.ok(w.post(i, `{"i":${i}}`, bytes(n, i & 255), bytes(1, 7)));
    assert.equal(r.nextSeq(), i);
    const m = r.read();
    assert.equal(JSON.parse(m.text).i, i);
    assert.equal(m.body.length, n + 1);
    if (n) assert.equal(m.body[0], i & 255);
    assert.equal(m.body[n], 7);
  }
  assert.equal(w.used, 0);
});

Deno.test("ring: the reader sleeps until the writer rings, and only then", async () => {
  const w = new RingWriter(256);
  const r = new RingReader(w.buffer);
  w.post(1, "a", null, null);
  await r.wait(1); // there already: at once
  r.read();
  let woke = false;
  const waiting = r.wait(2).then(() => woke = true);
  await new Promise((res) => setTimeout(res, 30));
  assert.equal(woke, false, "nothing to read: still asleep");
  // a pending Atomics.waitAsync does not keep Deno's event loop alive (the worker's message port does)
  const keepAlive = setTimeout(() => {}, 5000);
  w.post(2, "b", null, null); // rings at the end of this turn
  await waiting;
  clearTimeout(keepAlive);
  assert.equal(r.nextSeq(), 2);
});
