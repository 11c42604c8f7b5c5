/**
 * WebSocket flows cached on the worker side (wsflows.ts): the proxy's bookkeeping of what a worker keeps,
 * and a sandboxed script in a real worker that sees, message after message, exactly the flow the proxy has.
 */
import assert from "node:assert/strict";
import { sandboxed, type TestContext, twebsocketflow, WebSocketMessage } from "../../../../testing.ts";
import { wsDeltaText, WsFlowRefs } from "../../../../lib/addons/script/wsflows.ts";
import { ConnRefs, type ConnSync, packFlow } from "../../../../lib/addons/script/wire.ts";
import { Response } from "../../../../lib/http/message.ts";
import type { HTTPFlow } from "../../../../lib/flow/flow.ts";

/** Pack `f` as the proxy does for a full websocket_message and register it in `refs`. */
function sent(refs: WsFlowRefs, f: HTTPFlow): number {
  const sync: ConnSync = {};
  const p = packFlow(f, "websocket_message", new ConnRefs(), sync, [], false);
  return refs.add(f, p.wire!);
}

function openFlow(): HTTPFlow {
  const f = twebsocketflow({ messages: false, live: true });
  f.websocket!.timestampEnd = null;
  f.websocket!.closeCode = null;
  return f;
}

Deno.test("wsflows: a flow is cached once the worker says it kept it, and only while nothing changed", () => {
  const refs = new WsFlowRefs();
  const f = openFlow();
  assert.equal(refs.lookup(f), null);
  const k = sent(refs, f);
  // no reply yet: not usable
  refs.settle(f, k, true);
  assert.equal(refs.lookup(f), k);
  refs.settle(f, k, true);
  assert.equal(refs.lookup(f), k);
  assert.equal(refs.takeDrops(), undefined);
  // a reply that says the worker dropped it: nothing to tell the worker
  refs.settle(f, k, false);
  assert.equal(refs.lookup(f), null);
  assert.equal(refs.takeDrops(), undefined);
  assert.equal(refs.size, 0);
  // every change on the proxy's side sends the flow whole again, and the worker forgets the old key
  const changes: ((f: HTTPFlow) => void)[] = [
    (f) => f.comment = "changed",
    (f) => f.marked = ":star:",
    (f) => f.request.headers.set("x-new", "1"),
    (f) => f.request.path = "/other",
    (f) => f.response!.headers.delete("upgrade"),
    (f) => f.response = Response.make(101),
    (f) => f.metadata.k = 1,
    (f) => f.kill(),
  ];
  for (const change of changes) {
    const g = openFlow();
    const key = sent(refs, g);
    refs.settle(g, key, true);
    assert.equal(refs.lookup(g), key);
    refs.settle(g, key, true);
    change(g);
    assert.equal(refs.lookup(g), null, String(change));
    assert.deepEqual(refs.takeDrops(), [key]);
  }
});

Deno.test("wsflows: a call that never settled is not trusted; at most `capacity` flows, the oldest dropped", () => {
  const refs = new WsFlowRefs(2);
  const f = openFlow();
  const k = sent(refs, f);
  // the call failed (timeout, crash): no reply
  assert.equal(refs.lookup(f), null);
  assert.deepEqual(refs.takeDrops(), [k]);
  const [a, b, c] = [openFlow(), openFlow(), openFlow()];
  const ka = sent(refs, a);
  sent(refs, b);
  assert.equal(refs.takeDrops(), undefined);
  sent(refs, c);
  assert.deepEqual(refs.takeDrops(), [ka]);
  assert.equal(refs.size, 2);
  refs.forget(b);
  assert.equal(refs.size, 1);
});

async function withScript(source: string, fn: (tctx: TestContext) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-script-ws-" });
  const path = `${dir}/s.ts`;
  await Deno.writeTextFile(path, source);
  const tctx = await sandboxed([path]);
  try {
    await fn(tctx);
  } finally {
    await tctx.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("wsflows: a sandboxed websocket_message sees each message and the flow as the proxy has it, cached or not", async () => {
  const src = `import { ctx, type HTTPFlow } from "mitmdeno";
export function websocket_message(flow: HTTPFlow) {
  const ms = flow.websocket!.messages;
  const m = ms.at(-1)!;
  ctx.log.info(\`seen \${ms.length} \${m.text} comment=\${flow.comment} x=\${flow.request.headers.get("x") ?? "-"}\`);
  if (m.text === "throw") throw new Error("boom");
  if (m.text === "header") flow.request.headers.set("x", "from script");
  if (m.text === "binary") { m.content = Uint8Array.of(0xff, 0); return; }
  m.text = m.text.toUpperCase();
}
`;
  await withScript(src, async (tctx) => {
    const f = openFlow();
    const send = async (text: string) => {
      f.websocket!.messages = [new WebSocketMessage(1, true, text)];
      await tctx.master.addons.handleLifecycle("websocket_message", f);
      return f.websocket!.messages[0];
    };
    const script = [...tctx.master.addons.walk()].find((a) => a.host?.wsFlows) as {
      host: { wsFlows: WsFlowRefs };
    };
    assert.equal((await send("one")).text, "ONE");
    // the worker kept the flow: the next message goes alone
    assert.equal(script.host.wsFlows.size, 1);
    assert.equal((await send("two")).text, "TWO");
    // another addon changes the flow between two messages: the script sees it
    f.comment = "by the proxy";
    assert.equal((await send("three")).text, "THREE");
    // the script changes the request: the proxy gets it, the next hook still sees it
    await send("header");
    assert.equal(f.request.headers.get("x"), "from script");
    // a change beyond messages: the worker dropped the flow, the next message sends it whole
    assert.equal(script.host.wsFlows.size, 0);
    assert.equal((await send("four")).text, "FOUR");
    // a hook that throws changes nothing; the next one works
    assert.equal((await send("throw")).text, "throw");
    assert.equal((await send("five")).text, "FIVE");
    // a content that is not text crosses as bytes
    assert.deepEqual([...(await send("binary")).content], [0xff, 0]);
    await tctx.waitForLog("seen 1 binary");
    const seen = tctx.logs.filter((e) => e.msg.includes("seen")).map((e) => e.msg.replace(/^\[s\.ts\] /, ""));
    assert.deepEqual(seen, [
      "seen 1 one comment= x=-",
      "seen 1 two comment= x=-",
      "seen 1 three comment=by the proxy x=-",
      "seen 1 header comment=by the proxy x=-",
      "seen 1 four comment=by the proxy x=from script",
      "seen 1 throw comment=by the proxy x=from script",
      "seen 1 five comment=by the proxy x=from script",
      "seen 1 binary comment=by the proxy x=from script",
    ]);
  });
});

Deno.test("wsflows: the wsm text written by hand is the JSON of the message", () => {
  const d = {
    k: 3,
    c: 1,
    s: 2,
    ws: {
      total: 5,
      first: 4,
      messages: [{
        type: 1,
        fromClient: true,
        timestamp: 1764740000.123456,
        dropped: false,
        injected: true,
        body: 64,
      }],
      closedByClient: null,
      closeCode: null,
      closeReason: null,
      timestampEnd: null,
    },
  };
  const m = { t: "wsm", id: 7, event: "websocket_message", d };
  assert.deepEqual(JSON.parse(wsDeltaText(7, "websocket_message", d, undefined)), m);
  const closed = {
    ...d,
    ws: { ...d.ws, closedByClient: false, closeCode: 1000, closeReason: 'bye "\n', timestampEnd: 2.5 },
  };
  assert.deepEqual(JSON.parse(wsDeltaText(7, "websocket_message", closed, [1, 2])), {
    ...m,
    d: closed,
    kd: [1, 2],
  });
});
