/** Client playback: saved requests go through the proxy core again and get new responses. */
import assert from "node:assert/strict";
import { ClientPlayback } from "../../addons/clientplayback.ts";
import { FlowWriter } from "../../lib/io/flowfile.ts";
import { Request } from "../../lib/http/message.ts";
import { Client, Server } from "../../lib/flow/connection.ts";
import { HTTPFlow } from "../../lib/flow/flow.ts";
import { tflow } from "../lib/io/_tflow.ts";
import { Recorder, testMaster, withTempDir } from "../lib/io/_master.ts";
import { startInProcess, startOrigin } from "../e2e/helpers.ts";
import { startHttpsOrigin } from "../e2e/tls_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";

function saved(url: string, method = "GET", body = ""): HTTPFlow {
  const f = new HTTPFlow(
    new Client({ peername: ["127.0.0.1", 5555] }),
    new Server(null),
    Request.make(method, url, body),
    false,
  );
  return f;
}

Deno.test("clientplayback: requests are replayed through all hooks, responses recorded, is_replay=request", async () => {
  const seen: string[] = [];
  const origin = startOrigin(async (req) => {
    const body = await req.text();
    seen.push(`${req.method} ${new URL(req.url).pathname} ${body} ${req.headers.get("x-hook") ?? ""}`);
    return new globalThis.Response(`answer to ${new URL(req.url).pathname}`, {
      headers: { "x-origin": "1" },
    });
  });
  const cp = new ClientPlayback();
  const rec = new Recorder();
  const hook = { name: "hook", request: (f: HTTPFlow) => f.request.headers.set("x-hook", "yes") };
  const { master } = await testMaster([cp, hook, rec]);
  try {
    await master.addons.trigger("running");
    const flows = [saved(`${origin.url}/a`), saved(`${origin.url}/b`, "POST", "payload")];
    assert.equal(await master.commands.call("replay.client", flows), 2);
    assert.ok((await master.commands.call("replay.client.count") as number) >= 1);
    await cp.idle();
    assert.equal(cp.count(), 0);
    assert.deepEqual(seen, ["GET /a  yes", "POST /b payload yes"]);
    for (const f of flows) {
      assert.equal(f.isReplay, "request");
      assert.equal(f.response!.statusCode, 200);
      assert.equal(f.response!.headers.get("x-origin"), "1");
      assert.equal(f.live, false);
    }
    assert.equal(flows[1].response!.text, "answer to /b");
    assert.deepEqual(rec.names.filter((n) => n !== "server_connect"), [
      "requestheaders",
      "request",
      "responseheaders",
      "response",
      "requestheaders",
      "request",
      "responseheaders",
      "response",
    ]);
    assert.ok(rec.names.includes("server_connect"));
  } finally {
    await master.addons.trigger("done");
    await origin.close();
  }
});

Deno.test("clientplayback: a failing upstream gives the flow an error and the error hook", async () => {
  const origin = startOrigin(() => new globalThis.Response("x"));
  const url = `${origin.url}/gone`;
  await origin.close();
  const cp = new ClientPlayback();
  const rec = new Recorder();
  const { master } = await testMaster([cp, rec]);
  await master.addons.trigger("running");
  const f = saved(url);
  cp.startReplay([f]);
  await cp.idle();
  assert.ok(f.error, "error set");
  assert.match(f.error!.msg, /refused|connect/i);
  assert.equal(rec.names.at(-1), "error");
  await master.addons.trigger("done");
});

Deno.test("clientplayback: check(), --client-replay FILE, concurrency -1, stop, option errors", async () => {
  let inflight = 0;
  let maxInflight = 0;
  const origin = startOrigin(async () => {
    maxInflight = Math.max(maxInflight, ++inflight);
    await new Promise((r) => setTimeout(r, 50));
    inflight--;
    return new globalThis.Response("ok");
  });
  try {
    await withTempDir(async (dir) => {
      const cp = new ClientPlayback();
      const { master, logs } = await testMaster([cp]);
      const live = saved(`${origin.url}/x`);
      live.live = true;
      assert.equal(cp.check(live), "Can't replay live flow.");
      const noBody = saved(`${origin.url}/x`);
      noBody.request.rawContent = null;
      assert.equal(cp.check(noBody), "Can't replay flow with missing content.");
      const ws = tflow({ resp: true, ws: true });
      ws.live = false;
      assert.equal(cp.check(ws), "Can't replay WebSocket flows.");
      assert.equal(cp.startReplay([live, noBody]), 0);
      assert.ok(logs.includes("warn: Can't replay live flow."));
      await assert.rejects(master.options.set(["client_replay_concurrency=3"]), /client_replay_concurrency/);
      await assert.rejects(master.options.set([`client_replay=${dir}/nope`]), /Option "client_replay"/);

      // queued before running; stop restores them
      const q = [saved(`${origin.url}/1`), saved(`${origin.url}/2`)];
      q[0].isReplay = null;
      cp.startReplay(q);
      assert.equal(cp.count(), 2);
      await master.commands.call("replay.client.stop");
      assert.equal(cp.count(), 0);
      assert.equal(q[0].isReplay, null);

      const path = `${dir}/c.mitm`;
      const w = await FlowWriter.open(path);
      for (let i = 0; i < 5; i++) await w.add(saved(`${origin.url}/f${i}`));
      await w.close();
      await master.options.set(["client_replay_concurrency=-1", `client_replay=${path}`]);
      assert.equal(cp.count(), 5);
      await master.addons.trigger("running");
      await cp.idle();
      assert.ok(maxInflight > 1, `concurrency -1 sends requests in parallel (max in flight ${maxInflight})`);
      assert.equal(await master.commands.call("replay.client.file", path), 5);
      await cp.idle();
      await master.addons.trigger("done");
    });
  } finally {
    await origin.close();
  }
});

Deno.test("clientplayback: in upstream mode replays go through the upstream proxy (HTTP and HTTPS)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-replay-upstream-" });
  const origin = startOrigin((req) => new globalThis.Response(`plain ${new URL(req.url).pathname}`));
  const tlsOrigin = await startHttpsOrigin(dir);
  const upstream = await startInProcess([new TlsConfig()], [`confdir=${dir}/up`, "ssl_insecure=true"]);
  const seen: string[] = [];
  await upstream.master.addAddons({
    name: "seen",
    request: (f: HTTPFlow) => void seen.push(f.request.prettyUrl),
  });
  const cp = new ClientPlayback();
  const { master } = await testMaster([cp, new TlsConfig()], [
    `confdir=${dir}/ours`,
    `mode=upstream:http://127.0.0.1:${upstream.port}`,
    "ssl_insecure=true",
  ]);
  try {
    await master.addons.trigger("running");
    const flows = [saved(`${origin.url}/a`), saved(`https://localhost:${tlsOrigin.port}/b`)];
    assert.equal(await master.commands.call("replay.client", flows), 2);
    await cp.idle();
    assert.equal(flows[0].response?.text, "plain /a", flows[0].error?.msg);
    assert.equal(flows[1].response?.text, `hello /b host=localhost:${tlsOrigin.port}\n`, flows[1].error?.msg);
    // both went through the upstream proxy (HTTPS in a CONNECT tunnel it intercepted)
    assert.deepEqual(seen, [`${origin.url}/a`, `https://localhost:${tlsOrigin.port}/b`]);
  } finally {
    await master.addons.trigger("done");
    await upstream.stop();
    await origin.close();
    await tlsOrigin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
