import assert from "node:assert/strict";
import { normalizeH2HeaderNames } from "../../../lib/http/h2_normalize.ts";

Deno.test("normalizeH2HeaderNames: lower-cases upper-case names in place, one log line each", () => {
  const fields: [string, string][] = [["content-type", "a"], ["X-Custom", "B"], ["x-ok", "c"], [
    "Set-Cookie",
    "d",
  ]];
  const logs = normalizeH2HeaderNames(fields);
  assert.deepEqual(fields, [["content-type", "a"], ["x-custom", "B"], ["x-ok", "c"], ["set-cookie", "d"]]);
  assert.deepEqual(logs, [
    "Lowercased 'X-Custom' header as uppercase is not allowed with HTTP/2.",
    "Lowercased 'Set-Cookie' header as uppercase is not allowed with HTTP/2.",
  ]);
  assert.deepEqual(normalizeH2HeaderNames(fields), []);
});
