import assert from "node:assert/strict";
import { Master } from "../../../lib/master.ts";
import { readLimits } from "../../../lib/proxy/limits.ts";

Deno.test("readLimits: sizes in bytes, timeouts in milliseconds, null sizes stay null; validate_inbound_headers off is lenient parsing", async () => {
  const m = new Master();
  m.onLog(() => {});
  const d = readLimits(m.options);
  assert.deepEqual(d, {
    maxHeadSize: 65536,
    maxHeaders: 256,
    bodySizeLimit: null,
    streamLargeBodies: null,
    idleTimeout: 600_000,
    connectTimeout: 30_000,
    headerTimeout: 60_000,
    responseTimeout: 60_000,
    connectAddr: null,
    lenientHeaders: false,
    normalizeOutbound: true,
    websocketKeep: "auto",
  });
  await m.options.update({
    body_size_limit: "2k",
    stream_large_bodies: "3m",
    tcp_timeout: 7,
    connect_timeout: 2,
    http_header_timeout: 0,
    http_response_timeout: 9,
    max_header_size: 1000,
    max_header_count: 10,
    validate_inbound_headers: false,
    normalize_outbound_headers: false,
    connect_addr: "127.0.0.1",
    websocket_keep_messages: "all",
  });
  assert.deepEqual(readLimits(m.options), {
    maxHeadSize: 1000,
    maxHeaders: 10,
    bodySizeLimit: 2048,
    streamLargeBodies: 3 * 1024 * 1024,
    idleTimeout: 7000,
    connectTimeout: 2000,
    headerTimeout: 0,
    responseTimeout: 9000,
    connectAddr: "127.0.0.1",
    lenientHeaders: true,
    normalizeOutbound: false,
    websocketKeep: "all",
  });
});
