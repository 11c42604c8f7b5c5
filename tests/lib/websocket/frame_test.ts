import assert from "node:assert/strict";
import {
  closePayload,
  encodeClose,
  encodeFrame,
  fragment,
  FrameReader,
  isUtf8,
  MaskKeys,
  MessageReader,
  Opcode,
  parseClose,
  unmask,
  WebSocketError,
} from "../../../lib/websocket/frame.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function reader(masked: boolean, opts: { rsv1?: boolean; max?: number | null } = {}) {
  return new MessageReader({
    masked,
    rsv1: opts.rsv1 ?? false,
    maxPayload: opts.max ?? null,
    maxMessage: opts.max ?? null,
  });
}

Deno.test("frame: RFC 6455 §5.7 examples decode (unmasked and masked 'Hello')", () => {
  const r = new FrameReader({ masked: false, rsv1: false, maxPayload: null });
  r.push(Uint8Array.of(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f));
  const f = r.next()!;
  assert.equal(f.fin, true);
  assert.equal(f.opcode, Opcode.TEXT);
  assert.equal(dec.decode(f.payload), "Hello");
  const m = new FrameReader({ masked: true, rsv1: false, maxPayload: null });
  m.push(Uint8Array.of(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58));
  assert.equal(dec.decode(m.next()!.payload), "Hello");
  assert.equal(m.next(), null);
});

Deno.test("frame: encode/decode round trip at the length boundaries, masked and not, byte by byte", () => {
  for (const n of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    for (const mask of [false, true]) {
      const payload = new Uint8Array(n).map((_, i) => i * 7);
      const bytes = encodeFrame(true, Opcode.BINARY, payload, mask);
      assert.equal(bytes.length, n + 2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + (mask ? 4 : 0));
      const r = new FrameReader({ masked: mask, rsv1: false, maxPayload: null });
      // in pieces: the header split too
      const step = n > 1000 ? 4099 : 1;
      let got = null;
      for (let o = 0; o < bytes.length; o += step) {
        r.push(bytes.subarray(o, o + step));
        got ??= r.next();
      }
      got ??= r.next();
      assert.ok(got, `length ${n}`);
      assert.deepEqual(got.payload, payload);
      assert.equal(r.buffered, 0);
    }
  }
});

Deno.test("frame: masking rules, reserved bits, unknown opcodes, control frame rules are protocol errors", () => {
  const cases: [Uint8Array, boolean, RegExp][] = [
    [encodeFrame(true, 1, enc.encode("x"), false), true, /unmasked client frame/],
    [encodeFrame(true, 1, enc.encode("x"), true), false, /masked server frame/],
    [Uint8Array.of(0xa1, 0x00), false, /RSV2\/RSV3/],
    [Uint8Array.of(0xc1, 0x00), false, /RSV1 set without permessage-deflate/],
    [Uint8Array.of(0x83, 0x00), false, /unknown opcode 3/],
    [Uint8Array.of(0x09, 0x00), false, /fragmented control frame/],
    [encodeFrame(true, Opcode.PING, new Uint8Array(126), false), false, /over 125 bytes/],
  ];
  for (const [bytes, masked, re] of cases) {
    const r = new FrameReader({ masked, rsv1: false, maxPayload: null });
    r.push(bytes);
    assert.throws(
      () => r.next(),
      (e) => e instanceof WebSocketError && e.code === 1002 && re.test(e.message),
    );
  }
});

Deno.test("frame: frame and message size limits answer 1009", () => {
  const r = reader(false, { max: 10 });
  r.push(encodeFrame(true, 2, new Uint8Array(11), false));
  assert.throws(() => r.next(), (e) => e instanceof WebSocketError && e.code === 1009);
  const m = reader(false, { max: 10 });
  m.push(encodeFrame(false, 2, new Uint8Array(6), false));
  m.push(encodeFrame(true, 0, new Uint8Array(6), false));
  assert.throws(
    () => m.next(),
    (e) => e instanceof WebSocketError && e.code === 1009 && /message exceeds/.test(e.message),
  );
});

Deno.test("frame: fragmented messages are assembled; control frames come through between fragments", () => {
  const r = reader(true);
  r.push(encodeFrame(false, Opcode.TEXT, enc.encode("Hel"), true));
  r.push(encodeFrame(true, Opcode.PING, enc.encode("p"), true));
  r.push(encodeFrame(false, Opcode.CONTINUATION, enc.encode("lo "), true));
  r.push(encodeFrame(true, Opcode.CONTINUATION, enc.encode("world"), true));
  const ping = r.next()!;
  assert.ok("control" in ping && ping.control.opcode === Opcode.PING);
  assert.equal(r.inMessage, true);
  const msg = r.next()!;
  assert.ok("message" in msg);
  assert.equal(msg.message.opcode, Opcode.TEXT);
  assert.deepEqual(msg.message.fragments.map((f) => dec.decode(f)), ["Hel", "lo ", "world"]);
  assert.equal(r.next(), null);
  // sequence errors
  const a = reader(false);
  a.push(encodeFrame(true, Opcode.CONTINUATION, enc.encode("x"), false));
  assert.throws(() => a.next(), /continuation frame without a message/);
  const b = reader(false);
  b.push(encodeFrame(false, Opcode.TEXT, enc.encode("x"), false));
  b.push(encodeFrame(true, Opcode.TEXT, enc.encode("y"), false));
  assert.throws(() => b.next(), /new data frame inside a fragmented message/);
});

Deno.test("frame: close payloads: code and reason, none, invalid codes and reasons", () => {
  assert.deepEqual(parseClose(closePayload(1000, "bye")), { code: 1000, reason: "bye" });
  assert.deepEqual(parseClose(new Uint8Array(0)), { code: 1005, reason: "" });
  assert.equal(closePayload(1006).length, 0);
  assert.throws(() => parseClose(Uint8Array.of(3)), /one-byte payload/);
  assert.throws(() => parseClose(Uint8Array.of(0x03, 0xed)), /invalid close code 1005/);
  assert.throws(
    () => parseClose(Uint8Array.of(0x03, 0xe8, 0xff)),
    (e) => (e as WebSocketError).code === 1007,
  );
  assert.deepEqual(parseClose(closePayload(4000, "x".repeat(200))).reason.length, 123);
  const f = new FrameReader({ masked: true, rsv1: false, maxPayload: null });
  f.push(encodeClose(1001, "going", true));
  assert.deepEqual(parseClose(f.next()!.payload), { code: 1001, reason: "going" });
});

Deno.test("frame: fragment keeps the original sizes when the length is unchanged, else ~4 kB pieces", () => {
  const c = new Uint8Array(10);
  assert.deepEqual(fragment(c, [3, 7]).map((p) => p.length), [3, 7]);
  assert.deepEqual(fragment(new Uint8Array(9000), [3, 7]).map((p) => p.length), [4000, 4000, 1000]);
  assert.deepEqual(fragment(new Uint8Array(0), []).map((p) => p.length), [0]);
});

Deno.test("frame: unmask in place, aligned or not", () => {
  const key = Uint8Array.of(1, 2, 3, 4);
  const data = new Uint8Array(37).map((_, i) => i);
  const copy = data.slice();
  unmask(data, key);
  for (let i = 0; i < copy.length; i++) assert.equal(data[i], copy[i] ^ key[i & 3]);
  const off = new Uint8Array(40).subarray(1);
  off.set(copy.subarray(0, 39 > copy.length ? copy.length : 39));
  unmask(off, key);
  for (let i = 0; i < copy.length; i++) assert.equal(off[i], copy[i] ^ key[i & 3]);
});

Deno.test("frame: masking with pooled keys round-trips at every length around the word boundaries; isUtf8", () => {
  const keys = new MaskKeys();
  const seen = new Set<string>();
  for (let n = 0; n < 300; n++) {
    const payload = Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
    const bytes = encodeFrame(true, Opcode.BINARY, payload, true, false, keys);
    const r = new FrameReader({ masked: true, rsv1: false, maxPayload: null });
    r.push(bytes);
    const f = r.next()!;
    assert.deepEqual([...f.payload], [...payload]);
    const head = n < 126 ? 2 : 4;
    seen.add([...bytes.subarray(head, head + 4)].join());
  }
  // the keys differ from frame to frame (1024 random bytes per refill)
  assert.ok(seen.size > 290);
  const enc2 = new TextEncoder();
  assert.equal(isUtf8(enc2.encode("plain ascii")), true);
  assert.equal(isUtf8(enc2.encode("ascii, then ünïcödé €")), true);
  assert.equal(isUtf8(Uint8Array.of(0x61, 0xff, 0xfe)), false);
  assert.equal(isUtf8(Uint8Array.of(0x61, 0xe2, 0x82)), false);
  assert.equal(isUtf8(new Uint8Array(0)), true);
});
