/**
 * The TCP hooks of a sandboxed script (script.ts with tcpwire.ts), each test with the script in a real
 * worker: what crosses, what comes back, and the same isolation as HTTP hooks (a throwing hook is logged
 * with file:line, a hung one stops its worker alone).
 */
import assert from "node:assert/strict";
import {
  sandboxed,
  TCPMessage,
  type TestContext,
  tflow,
  ttcpflow,
  twebsocketflow,
  WebSocketMessage,
} from "../../../../testing.ts";
import type { TCPFlow } from "../../../../lib/flow/tcp.ts";

async function withScript(
  source: string,
  fn: (tctx: TestContext, path: string) => Promise<void>,
  sets: string[] = [],
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-script-tcp-" });
  const path = `${dir}/s.ts`;
  await Deno.writeTextFile(path, source);
  const tctx = await sandboxed([path], { set: sets });
  try {
    await fn(tctx, path);
  } finally {
    await tctx.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A live TCP flow with no messages yet; what is injected into it is recorded. */
function live(): { f: TCPFlow; injected: TCPMessage[] } {
  const f = ttcpflow({ messages: false });
  const injected: TCPMessage[] = [];
  f.setInjector((m) => void injected.push(m));
  return { f, injected };
}

/** As the TCP layer does: record a message, run tcp_message. */
async function message(
  tctx: TestContext,
  f: TCPFlow,
  fromClient: boolean,
  text: string,
): Promise<TCPMessage> {
  const m = new TCPMessage(fromClient, text);
  f.messages.push(m);
  await tctx.master.addons.handleLifecycle("tcp_message", f);
  return m;
}

const SCRIPT = `import { ctx, type TCPFlow } from "mitmdeno";
export function tcp_start(flow: TCPFlow) {
  ctx.log.info("start " + flow.id + " " + flow.messages.length + " " + flow.clientConn.peername?.join(":"));
  flow.metadata.started = true;
}
export async function tcp_message(flow: TCPFlow) {
  const m = flow.messages.at(-1)!;
  ctx.log.info("seen " + flow.messages.length + " " + m.fromClient + " " + m.text + " " + flow.metadata.started);
  if (m.injected || !m.fromClient) return;
  if (m.text === "drop") m.content = new Uint8Array(0);
  else if (m.text === "ping") flow.inject(true, "pong");
  else if (m.text === "cmd") await ctx.master.commands.call("inject.tcp", flow, false, "by command");
  else if (m.text === "kill") flow.kill();
  else m.text = m.text.replaceAll("foo", "bar");
}
export function tcp_end(flow: TCPFlow) {
  ctx.log.info("end " + flow.id + ": " + flow.messages.map((m) => (m.fromClient ? ">" : "<") + m.text).join(","));
}
export function tcp_error(flow: TCPFlow) {
  ctx.log.info("error " + flow.error?.msg + " " + flow.messages.length);
}
`;

Deno.test("script tcp: a sandboxed script rewrites, drops and injects; tcp_start and tcp_end see the flow", async () => {
  await withScript(SCRIPT, async (tctx) => {
    for (const h of ["tcp_start", "tcp_message", "tcp_end", "tcp_error"]) {
      assert.ok(tctx.master.addons.has(h), `the script's ${h} counts as an addon's`);
    }
    assert.ok(!tctx.hasLog("not available to sandboxed scripts"), JSON.stringify(tctx.logs));
    const { f, injected } = live();
    await tctx.master.addons.handleLifecycle("tcp_start", f);
    await tctx.waitForLog(`start ${f.id} 0 ${f.clientConn.peername!.join(":")}`);
    assert.equal(f.metadata.started, true);
    const a = await message(tctx, f, true, "a foo b");
    assert.equal(a.text, "a bar b");
    const b = await message(tctx, f, false, "foo from the server");
    assert.equal(b.text, "foo from the server", "server messages untouched");
    const d = await message(tctx, f, true, "drop");
    assert.equal(d.content.byteLength, 0, "dropped: an empty content is not sent on");
    await message(tctx, f, true, "ping");
    await message(tctx, f, true, "cmd");
    assert.deepEqual(injected.map((m) => [m.fromClient, m.text, m.injected]), [
      [false, "pong", true],
      [true, "by command", true],
    ]);
    // only the newest message crosses for tcp_message
    await tctx.waitForLog("seen 1 true cmd true");
    assert.ok(!tctx.logs.some((e) => /seen [2-9]/.test(e.msg)), JSON.stringify(tctx.logs));
    f.setInjector(null);
    await tctx.master.addons.handleLifecycle("tcp_end", f);
    await tctx.waitForLog(`end ${f.id}: >a bar b,<foo from the server,>,>ping,>cmd`);
    // the order the hooks ran in
    const order = tctx.logs.map((e) => e.msg.split(" ")[0]).filter((w) =>
      ["start", "seen", "end"].includes(w)
    );
    assert.deepEqual(order, ["start", "seen", "seen", "seen", "seen", "seen", "end"]);
  });
});

Deno.test("script tcp: kill, tcp_error with every message; HTTP flows never reach TCP hooks", async () => {
  await withScript(SCRIPT, async (tctx) => {
    const { f } = live();
    await message(tctx, f, true, "one");
    await message(tctx, f, true, "kill");
    assert.equal(f.killed, true);
    const e = ttcpflow({ err: true });
    await tctx.master.addons.handleLifecycle("tcp_error", e);
    await tctx.waitForLog(`error ${e.error!.msg} 2`);
    // a flow of the wrong type is not sent
    const seen = () => tctx.logs.filter((l) => l.msg.startsWith("seen")).length;
    const before = seen();
    await tctx.master.addons.handleLifecycle("tcp_message", tflow() as unknown as TCPFlow);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen(), before, JSON.stringify(tctx.logs));
    assert.ok(!tctx.hasLog("error", "error"), JSON.stringify(tctx.logs));
  });
});

Deno.test("script tcp: a script without TCP hooks gets no TCP flows (and adds no TCP hook)", async () => {
  await withScript(
    `import { ctx } from "mitmdeno";\nexport function request(f: any) { ctx.log.info("request " + f.type); }\n`,
    async (tctx) => {
      assert.equal(tctx.master.addons.has("tcp_message"), false);
      const { f } = live();
      await message(tctx, f, true, "x");
      await tctx.master.addons.handleLifecycle("request", f as never);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(!tctx.hasLog("request tcp"), JSON.stringify(tctx.logs));
    },
  );
});

Deno.test("script tcp: a tcp_message that throws is logged with file:line; the message goes on unchanged", async () => {
  const src = `export function tcp_message(flow: any) {
  const m = flow.messages.at(-1);
  m.text = "changed";
  if (m.text.length) throw new Error("tcp kaput");
}
`;
  await withScript(src, async (tctx) => {
    const { f, injected } = live();
    const m = await message(tctx, f, true, "original");
    const e = await tctx.waitForLog("tcp kaput", { level: "error" });
    assert.match(e.msg, /Addon error in s\.ts\.tcp_message: .*tcp kaput.*s\.ts:4:\d+/);
    assert.equal(m.text, "original");
    assert.deepEqual(injected, []);
    // the script still runs
    const n = await message(tctx, f, true, "again");
    assert.equal(n.text, "again");
    await tctx.waitForLog("tcp kaput");
  });
});

Deno.test("script tcp: a hung tcp_message stops its worker alone; the flow goes on, the script restarts", async () => {
  const src = `let n = 0;
export function tcp_message(flow: any) {
  const m = flow.messages.at(-1);
  n++;
  if (m.text === "hang") { const t = Date.now(); while (Date.now() - t < 20000) {} }
  m.text = m.text + " #" + n;
}
`;
  await withScript(src, async (tctx) => {
    const { f } = live();
    const t0 = performance.now();
    const h = await message(tctx, f, true, "hang");
    assert.ok(performance.now() - t0 < 5000, `took ${performance.now() - t0} ms`);
    assert.equal(h.text, "hang", "unchanged");
    await tctx.waitForLog("took longer than 1s", { level: "error" });
    // a fresh instance (its counter starts over) once it has loaded again
    const deadline = Date.now() + 20_000;
    let m = await message(tctx, f, true, "next");
    while (m.text === "next" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      m = await message(tctx, f, true, "next");
    }
    assert.equal(m.text, "next #1");
  }, ["script_timeout=1"]);
});

Deno.test("script tcp: a script injects from a timer after its hook returned; into a closed flow it is refused", async () => {
  const src = `import type { TCPFlow } from "mitmdeno";
let kept: TCPFlow | null = null;
export function tcp_start(flow: TCPFlow) {
  kept = flow;
  setTimeout(() => flow.inject(true, "later, to the client"), 50);
}
export function tcp_message(flow: TCPFlow) {
  const m = flow.messages.at(-1)!;
  if (m.text === "again") setTimeout(() => kept!.inject(false, "from the kept flow"), 50);
}
`;
  await withScript(src, async (tctx) => {
    const { f, injected } = live();
    await tctx.master.addons.handleLifecycle("tcp_start", f);
    const until = async (n: number) => {
      const deadline = Date.now() + 5000;
      while (injected.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    };
    await until(1);
    await message(tctx, f, true, "again");
    await until(2);
    assert.deepEqual(injected.map((m) => [m.fromClient, m.text, m.injected]), [
      [false, "later, to the client", true],
      [true, "from the kept flow", true],
    ]);
    // the connection closed: the proxy refuses, and says so once
    f.setInjector(null);
    await message(tctx, f, true, "again");
    await message(tctx, f, true, "again");
    await tctx.waitForLog("is not live", { level: "warn" });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(tctx.logs.filter((e) => e.msg.includes("is not live")).length, 1);
    assert.equal(injected.length, 2);
  });
});

Deno.test("script: the inject.websocket command works from a sandboxed websocket_message hook too", async () => {
  const src = `import { ctx, type HTTPFlow } from "mitmdeno";
export async function websocket_message(flow: HTTPFlow) {
  const m = flow.websocket!.messages.at(-1)!;
  if (!m.injected) await ctx.master.commands.call("inject.websocket", flow, true, "by command");
}
`;
  await withScript(src, async (tctx) => {
    const f = twebsocketflow({ messages: false, live: true });
    // open: not closed yet
    f.websocket!.timestampEnd = null;
    f.websocket!.closeCode = null;
    const injected: WebSocketMessage[] = [];
    f.websocket!.setInjector((m) => void injected.push(m));
    f.websocket!.messages.push(new WebSocketMessage(1, true, "hi"));
    await tctx.master.addons.handleLifecycle("websocket_message", f);
    assert.deepEqual(injected.map((m) => [m.fromClient, m.text, m.isText, m.injected]), [
      [false, "by command", true, true],
    ]);
  });
});
