import assert from "node:assert/strict";
import { reasonPhrase } from "../../../lib/http/status.ts";

Deno.test("reasonPhrase: returns the standard phrase for known codes", () => {
  assert.equal(reasonPhrase(200), "OK");
  assert.equal(reasonPhrase(101), "Switching Protocols");
  assert.equal(reasonPhrase(204), "No Content");
  assert.equal(reasonPhrase(304), "Not Modified");
  assert.equal(reasonPhrase(404), "Not Found");
  assert.equal(reasonPhrase(418), "I'm a teapot");
  assert.equal(reasonPhrase(431), "Request Header Fields Too Large");
  assert.equal(reasonPhrase(502), "Bad Gateway");
  assert.equal(reasonPhrase(505), "HTTP Version Not Supported");
});

Deno.test("reasonPhrase: returns Unknown for unlisted codes", () => {
  assert.equal(reasonPhrase(299), "Unknown");
  assert.equal(reasonPhrase(999), "Unknown");
  assert.equal(reasonPhrase(0), "Unknown");
});
