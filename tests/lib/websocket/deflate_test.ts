import assert from "node:assert/strict";
import zlib from "node:zlib";
import { Deflater, Inflater, parseExtensions } from "../../../lib/websocket/deflate.ts";
import { WebSocketError } from "../../../lib/websocket/frame.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("deflate: parameters of a Sec-WebSocket-Extensions response header", () => {
  assert.deepEqual(parseExtensions("permessage-deflate").deflate, {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  });
  const p = parseExtensions(
    'permessage-deflate; server_no_context_takeover; client_max_window_bits=10; server_max_window_bits="12", x-foo',
  );
  assert.equal(p.deflate!.serverNoContextTakeover, true);
  assert.equal(p.deflate!.clientMaxWindowBits, 10);
  assert.equal(p.deflate!.serverMaxWindowBits, 12);
  assert.deepEqual(p.unknown, ["x-foo"]);
  assert.equal(parseExtensions(null).deflate, null);
});

Deno.test("deflate: messages round trip with context takeover (later messages reference earlier ones)", async () => {
  const d = new Deflater(15, false);
  const i = new Inflater(15, false);
  const msg = enc.encode("hello websocket world, ".repeat(4));
  const first = await d.deflate(msg);
  const second = await d.deflate(msg);
  assert.ok(second.length < first.length, `${second.length} < ${first.length}: the window was kept`);
  assert.equal(dec.decode(await i.inflate(first, null)), dec.decode(msg));
  assert.equal(dec.decode(await i.inflate(second, null)), dec.decode(msg));
  // without context takeover every message stands alone
  const d2 = new Deflater(15, true);
  const a = await d2.deflate(msg);
  const b = await d2.deflate(msg);
  assert.deepEqual(a, b);
  assert.equal(dec.decode(await new Inflater(15, true).inflate(b, null)), dec.decode(msg));
  for (const z of [d, i, d2]) z.close();
});

Deno.test("deflate: reads what another implementation (zlib raw, sync flush) wrote; bad data and the size limit fail", async () => {
  const raw = zlib.deflateRawSync(enc.encode("x".repeat(100_000)), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const body = raw.subarray(0, raw.length - 4);
  const i = new Inflater(15, false);
  assert.equal((await i.inflate(body, null)).length, 100_000);
  await assert.rejects(
    () => new Inflater(15, false).inflate(body, 1000),
    (e) => e instanceof WebSocketError && e.code === 1009,
  );
  await assert.rejects(
    () => new Inflater(15, false).inflate(Uint8Array.of(0xff, 0xff, 0xff), null),
    (e) => e instanceof WebSocketError && e.code === 1007,
  );
  i.close();
});
