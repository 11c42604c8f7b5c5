/** Flow ids: UUIDv7 strings ordered by creation time. */
import assert from "node:assert/strict";
import { flowId, flowIdTime } from "../../../lib/flow/id.ts";
import { HTTPFlow } from "../../../lib/flow/flow.ts";
import { treq } from "../../../testing.ts";
import { Client, Server } from "../../../lib/flow/connection.ts";

Deno.test("flowId: a version 7 UUID carrying its time, random otherwise", () => {
  const t = Date.UTC(2026, 11, 3, 8, 0, 0, 123);
  const id = flowId(t);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(flowIdTime(id), t);
  assert.notEqual(flowId(t), id);
  const ids = Array.from({ length: 1000 }, () => flowId());
  assert.equal(new Set(ids).size, ids.length);
  // ordered by time as strings, too (what an index on the text would see)
  assert.ok(flowId(t) < flowId(t + 1));
});

Deno.test("flowIdTime: null for ids of other versions and other strings", () => {
  assert.equal(flowIdTime(crypto.randomUUID()), null);
  assert.equal(flowIdTime("x"), null);
  assert.equal(flowIdTime("0192zzzz-0000-7000-8000-000000000000"), null);
});

Deno.test("flows get time-ordered ids", () => {
  const f = new HTTPFlow(new Client(), new Server(["example.com", 80]), treq());
  const t = flowIdTime(f.id);
  assert.ok(t !== null && Math.abs(t - Date.now()) < 60_000);
});
