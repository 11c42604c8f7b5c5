/**
 * shutdown.ts and duplicate_modify_replay.ts (mitmproxy's shutdown.py, duplicate-modify-replay.py) through the
 * real CLI: what acts beyond the script works only with `--script-allow shutdown` / `--script-allow replay`,
 * and is refused otherwise with a message naming the grant.
 */
import assert from "node:assert/strict";
import { curl, startOrigin, startProxy } from "../../e2e/helpers.ts";
import { sandboxed, tflow } from "../../../testing.ts";
import { example } from "./_sandbox.ts";
import { capabilitiesFor, parseAllowSpec } from "../../../lib/addons/script/spec.ts";

Deno.test("grants: parsing shutdown/replay, per script, with all", () => {
  const allows = ["shutdown", "x.ts:replay", "net=127.0.0.1:1,replay"].map((s) => parseAllowSpec(s));
  assert.deepEqual(allows[0].caps, ["shutdown"]);
  assert.deepEqual(allows[1].script, "x.ts");
  assert.deepEqual(capabilitiesFor("/a/x.ts", allows.slice(0, 2)), ["shutdown", "replay"]);
  assert.deepEqual(capabilitiesFor("/a/y.ts", allows.slice(1, 2)), []);
  assert.deepEqual(capabilitiesFor("/a/y.ts", allows.slice(2)), ["replay"]);
  assert.deepEqual(capabilitiesFor("/a/y.ts", [parseAllowSpec("all")]), ["shutdown", "replay"]);
  assert.throws(() => parseAllowSpec("shutdown=1"), /unknown permission "shutdown".*shutdown, replay or all/);
});

Deno.test("shutdown.ts: with --script-allow shutdown a request stops the proxy", async () => {
  const conf = await Deno.makeTempDir();
  const proxy = await startProxy([
    "--confdir",
    conf,
    "-s",
    example("shutdown.ts"),
    "--script-allow",
    "shutdown",
  ]);
  try {
    await proxy.waitFor(/Loading script .*grants: shutdown/);
    await curl(["-x", proxy.url, "http://example.com/path"]);
    await proxy.waitFor(/Shutting down everything\.\.\./);
    // the process ends by itself
    await assert.rejects(() => proxy.waitFor(/(?!)/, 15000), /exited before printing/);
    assert.doesNotMatch(proxy.output(), /needs the grant/);
  } finally {
    await proxy.stop();
    await Deno.remove(conf, { recursive: true });
  }
});

Deno.test("shutdown.ts: without the grant the call is refused, naming the grant; the proxy goes on", async () => {
  await using tctx = await sandboxed(example("shutdown.ts"));
  await tctx.waitForLog("Loading script");
  let stopped = false;
  const shutdown = tctx.master.shutdown.bind(tctx.master);
  tctx.master.shutdown = () => {
    stopped = true;
    shutdown();
  };
  const f = tflow();
  f.request.url = "http://example.com/path";
  await tctx.hook("request", f);
  const e = await tctx.waitForLog("needs the grant --script-allow shutdown");
  assert.equal(e.level, "error");
  assert.match(e.msg, /--script-allow "shutdown\.ts:shutdown"/);
  assert.equal(stopped, false);
});

Deno.test("duplicate_modify_replay.ts: with --script-allow replay the origin also gets /changed", async () => {
  const seen: string[] = [];
  const origin = startOrigin((req) => {
    seen.push(new URL(req.url).pathname);
    return new Response("ok");
  });
  const conf = await Deno.makeTempDir();
  const proxy = await startProxy([
    "--confdir",
    conf,
    "-s",
    example("duplicate_modify_replay.ts"),
    "--script-allow",
    "duplicate_modify_replay.ts:replay",
  ]);
  try {
    await proxy.waitFor(/Loading script .*grants: replay/);
    const r = await curl(["-x", proxy.url, `${origin.url}/original`]);
    assert.equal(r.status, 200, r.stderr);
    await proxy.waitFor(/\[replay\]|GET http:\/\/127\.0\.0\.1:\d+\/changed/);
    const deadline = Date.now() + 10000;
    while (!seen.includes("/changed") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen.sort(), ["/changed", "/original"]);
    // the replayed request was not replayed again (no loop)
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.length, 2);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(conf, { recursive: true });
  }
});

Deno.test("duplicate_modify_replay.ts: without the grant replay.client is refused, naming the grant", async () => {
  await using tctx = await sandboxed(example("duplicate_modify_replay.ts"));
  await tctx.waitForLog("Loading script");
  const f = tflow();
  await tctx.hook("request", f);
  const e = await tctx.waitForLog("needs the grant --script-allow replay");
  assert.match(e.msg, /replay\.client/);
  assert.equal(f.request.path, "/path", "the original flow is untouched");
});
