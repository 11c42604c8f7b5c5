/** The connection log lines mitmdump prints, from the real CLI with curl and a local origin. */
import assert from "node:assert/strict";
import { curl, startOrigin, startProxy } from "../e2e/helpers.ts";

Deno.test("connection_log: client/server connect and disconnect lines around the flow (info level: -q hides them)", async () => {
  const origin = startOrigin(() => new Response("hi"));
  const proxy = await startProxy(["--flow-detail", "1"]);
  try {
    const r = await curl(["-x", proxy.url, `http://127.0.0.1:${origin.port}/x`]);
    assert.equal(r.body, "hi");
    const out = await proxy.waitFor(/client disconnect/);
    assert.ok(out);
    const lines = proxy.output().split("\n").filter((l) => /connect|GET|<</.test(l));
    const m = /^\[(127\.0\.0\.1:\d+)\] client connect$/.exec(lines[0]);
    assert.ok(m, lines.join("\n"));
    const client = m![1];
    assert.deepEqual(lines.slice(1), [
      `[${client}] server connect 127.0.0.1:${origin.port}`,
      `${client}: GET http://127.0.0.1:${origin.port}/x`,
      lines[3],
      `[${client}] server disconnect 127.0.0.1:${origin.port}`,
      `[${client}] client disconnect`,
    ]);
    assert.match(lines[3], /^ +<< 200 OK 2b$/);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});
