/** Flows have readable string forms (String(flow), template literals), like mitmproxy's repr. */
import assert from "node:assert/strict";
import { terr, tflow } from "../../../testing.ts";

Deno.test("String(flow): request, response, error and connections, one per line", () => {
  const f = tflow({ resp: true });
  assert.equal(
    String(f),
    "<HTTPFlow\n  request = Request(GET address:22/path)\n  response = Response(200, unknown content type, 7b)\n" +
      "  clientConn = 127.0.0.1:22\n  serverConn = address:22>",
  );
  assert.equal(`${f.request}`, "Request(GET address:22/path)");
  const e = tflow({ err: terr("Connection killed.") });
  assert.match(String(e), /\n {2}error = Connection killed\.\n/);
  assert.doesNotMatch(String(e), /response =/);
  assert.doesNotMatch(String(f), /\[object Object\]/);
});
