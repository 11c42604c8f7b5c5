import assert from "node:assert/strict";
import {
  context,
  eventSequence,
  tclientConn,
  terr,
  type TestContext,
  tflow,
  treq,
  tresp,
  tserverConn,
  twebsocketflow,
  withContext,
} from "mitmdeno/testing";
import { ctx, type HTTPFlow, type Loader, OptionsError } from "mitmdeno";
import { AntiCache } from "../addons/anticache.ts";

// SEEDS 7: mitmproxy's documented anticache test, in TypeScript.
Deno.test("anticache example from the docs", async () => {
  const a = new AntiCache();
  await using tctx = await context();
  const f = tflow({ resp: true });
  f.request.headers.set("if-modified-since", "test");
  f.request.headers.set("if-none-match", "test");

  await tctx.cycle(a, f);
  assert.ok(f.request.headers.has("if-modified-since"));
  assert.ok(f.request.headers.has("if-none-match"));

  await tctx.configure(a, { anticache: true });
  await tctx.cycle(a, f);
  assert.ok(!f.request.headers.has("if-modified-since"));
  assert.ok(!f.request.headers.has("if-none-match"));
});

Deno.test("factories have mitmproxy's defaults", () => {
  const r = treq();
  assert.equal(r.url, "http://address:22/path");
  assert.equal(r.headers.get("header"), "qvalue");
  assert.equal(r.text, "content");
  assert.equal(r.timestampStart, 946681200);
  const s = tresp();
  assert.equal(s.statusCode, 200);
  assert.equal(s.reason, "OK");
  assert.equal(s.text, "message");
  assert.equal(s.headers.get("header-response"), "svalue");
  assert.equal(terr().msg, "error");
  assert.equal(terr().timestamp, 946681207);
  assert.deepEqual(tclientConn().peername, ["127.0.0.1", 22]);
  assert.deepEqual(tserverConn().address, ["address", 22]);
  assert.deepEqual(tserverConn().peername, ["192.168.0.1", 22]);
  const f = tflow();
  assert.equal(f.response, null);
  assert.equal(f.error, null);
  assert.equal(f.live, true);
  assert.equal(f.timestampCreated, 946681200);
  assert.equal(tflow({ resp: true }).response?.statusCode, 200);
  assert.equal(tflow({ err: true }).error?.msg, "error");
  assert.equal(tflow({ live: false }).live, false);
  assert.equal(tflow({ req: treq({ method: "POST", path: "/x" }) }).request.method, "POST");
  const w = tflow({ ws: true });
  assert.equal(w.websocket!.messages.length, 3);
  assert.equal(w.websocket!.messages[1].text, "hello text");
  assert.equal(w.websocket!.closeCode, 1000);
  const wf = twebsocketflow();
  assert.equal(wf.response!.statusCode, 101);
  assert.equal(wf.request.headers.get("sec-websocket-version"), "13");
  assert.deepEqual(eventSequence(wf), [
    "requestheaders",
    "request",
    "responseheaders",
    "response",
    "websocket_start",
    "websocket_message",
    "websocket_message",
    "websocket_message",
    "websocket_end",
  ]);
  assert.deepEqual(eventSequence(tflow({ resp: true })), [
    "requestheaders",
    "request",
    "responseheaders",
    "response",
  ]);
  assert.deepEqual(eventSequence(tflow({ err: true })), ["requestheaders", "request", "error"]);
});

class Recorder {
  events: string[] = [];
  configured: Set<string>[] = [];
  limit = 0;
  load(loader: Loader) {
    loader.addOption("rec_limit", "int", 0, "A test option.");
    loader.addCommand("rec.count", (n: string) => this.events.length + Number(n), "count");
  }
  configure(updated: Set<string>) {
    this.configured.push(updated);
    if (updated.has("rec_limit")) {
      if (ctx.options.rec_limit < 0) throw new OptionsError('Option "rec_limit": must be >= 0');
      this.limit = ctx.options.rec_limit;
    }
  }
  requestheaders(f: HTTPFlow) {
    this.events.push(`requestheaders ${f.request.method}`);
  }
  request() {
    this.events.push("request");
    ctx.log.info("saw a request");
  }
  responseheaders() {
    this.events.push("responseheaders");
  }
  response() {
    this.events.push("response");
  }
  error() {
    this.events.push("error");
  }
  done() {
    this.events.push("done");
  }
}

Deno.test("cycle, invoke, command and logs", async () => {
  const r = new Recorder();
  let saved: TestContext;
  {
    await using tctx = await context(r);
    saved = tctx;
    assert.equal(ctx.master, tctx.master);
    await tctx.cycle(r, tflow({ resp: true }));
    assert.deepEqual(r.events, ["requestheaders GET", "request", "responseheaders", "response"]);
    await tctx.cycle(r, tflow({ err: true }));
    assert.equal(r.events.at(-1), "error");
    await tctx.invoke(r, "request", tflow());
    assert.equal(await tctx.command("rec.count", "1"), r.events.length + 1);
    assert.equal(await tctx.command((a: number, b: number) => a + b, 1, 2), 3);
    assert.ok(tctx.hasLog("saw a request", "info"));
    await tctx.waitForLog("saw a request");
    await assert.rejects(tctx.waitForLog("never logged", { timeoutMs: 50 }), assert.AssertionError);
    await assert.rejects(tctx.invoke(r, "reqest", tflow()), /unknown event/);
    tctx.clearLogs();
    assert.equal(tctx.logs.length, 0);
  }
  assert.equal(r.events.at(-1), "done");
  assert.notEqual(ctx.master, saved.master);
});

Deno.test("configure: registers unknown addons, rolls back on OptionsError", async () => {
  await withContext([], async (tctx) => {
    const r = new Recorder();
    await tctx.configure(r, { rec_limit: 3 });
    assert.equal(r.limit, 3);
    assert.equal(tctx.options.rec_limit, 3);
    await assert.rejects(tctx.configure(r, { rec_limit: -1 }), OptionsError);
    assert.equal(tctx.options.rec_limit, 3);
    assert.equal(r.limit, 3);
    await tctx.configure(r);
    assert.equal(r.configured.at(-1)!.size, 0);
    await assert.rejects(tctx.configure(r, { rec_limit: "x" }), OptionsError);
  });
});

Deno.test("handler errors propagate; intercept stops cycle", async () => {
  const boom = {
    name: "boom",
    request() {
      throw new Error("kaput");
    },
  };
  const stopper = {
    name: "stopper",
    seen: [] as string[],
    requestheaders(f: HTTPFlow) {
      this.seen.push("requestheaders");
      f.intercept();
    },
    request() {
      this.seen.push("request");
    },
  };
  await using tctx = await context(boom, stopper);
  await assert.rejects(tctx.cycle(boom, tflow()), /kaput/);
  await tctx.cycle(stopper, tflow());
  assert.deepEqual(stopper.seen, ["requestheaders"]);
});

Deno.test("script: loads a script module in-process", async () => {
  const dir = await Deno.makeTempDir({ dir: new URL(".", import.meta.url).pathname, prefix: ".tmp_script_" });
  try {
    await Deno.writeTextFile(
      `${dir}/add_header.ts`,
      `import type { HTTPFlow } from "mitmdeno";\nexport function response(flow: HTTPFlow) {\n  flow.response?.headers.set("newheader", "foo");\n}\n`,
    );
    await Deno.writeTextFile(
      `${dir}/counter.ts`,
      `import { ctx } from "mitmdeno";\nclass Counter {\n  num = 0;\n  request() {\n    this.num++;\n    ctx.log.info(\`We've seen \${this.num} flows\`);\n  }\n}\nexport const addons = [new Counter()];\n`,
    );
    await using tctx = await context();
    const s = await tctx.script(`${dir}/add_header.ts`);
    const f = tflow({ resp: true });
    await tctx.cycle(s, f);
    assert.equal(f.response?.headers.get("newheader"), "foo");
    const c = await tctx.script(new URL(`file://${dir}/counter.ts`));
    await tctx.cycle(c, tflow());
    await tctx.waitForLog("We've seen 1 flows");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
