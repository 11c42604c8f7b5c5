/** The layer base (pausing on blocking commands, queueing, children), events, commands and typed errors. */
import assert from "node:assert/strict";
import { Layer, TunnelLayer } from "../../../lib/proxy/layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start, Wakeup } from "../../../lib/proxy/events.ts";
import {
  CloseConnection,
  type Command,
  Log,
  OpenConnection,
  RequestWakeup,
  SendData,
  SetReading,
  StartHook,
  StartTls,
} from "../../../lib/proxy/commands.ts";
import { connectError, errorResponse, ProtocolError } from "../../../lib/proxy/errors.ts";
import { Server } from "../../../lib/flow/connection.ts";
import { fromLatin1 } from "../../../lib/http/bytes.ts";
import { cmd, data, hook, log, Playbook, tctx, wakeup } from "./tutils.ts";

/** Logs every event it handles; `call`s a hook on "wait", `request`s one on "ask". */
class Recorder extends Layer {
  seen: string[] = [];
  protected onEvent(e: Event): void {
    const text = e instanceof DataReceived ? new TextDecoder().decode(e.data) : String(e);
    this.seen.push(text);
    if (text === "wait") this.call(new StartHook("update", null), () => this.seen.push("resumed"));
    if (text === "ask") this.request(new StartHook("update", null), () => this.seen.push("answered"));
    if (text === "log") this.log("a line", "warn");
    if (text === "timer") this.wakeup(10, () => this.seen.push("woke"));
  }
}

Deno.test("layer: events that come while it waits for a reply are queued and handled after it, in order", () => {
  const t = tctx();
  const layer = new Recorder(t.ctx);
  const pb = new Playbook(layer);
  pb.in(data(t.client, "wait")).out(hook("update"));
  assert.ok(layer.paused);
  pb.in(data(t.client, "a")).in(data(t.client, "b"));
  assert.deepEqual(layer.seen, ["wait"]);
  pb.reply();
  assert.ok(!layer.paused);
  assert.deepEqual(layer.seen, ["wait", "resumed", "a", "b"]);
  // a reply given twice, or to a command the layer does not wait for, changes nothing
  pb.reply();
  assert.deepEqual(layer.seen, ["wait", "resumed", "a", "b"]);
});

Deno.test("layer: request() does not pause; the reply runs its continuation", () => {
  const t = tctx();
  const layer = new Recorder(t.ctx);
  const pb = new Playbook(layer);
  pb.in(data(t.client, "ask")).out(hook("update")).in(data(t.client, "x"));
  assert.deepEqual(layer.seen, ["ask", "x"]);
  pb.reply();
  assert.deepEqual(layer.seen, ["ask", "x", "answered"]);
});

Deno.test("layer: log() and wakeup() emit their commands; a cancelled wakeup stops its timer once", () => {
  const t = tctx();
  const layer = new Recorder(t.ctx);
  const pb = new Playbook(layer, { logs: true });
  pb.in(data(t.client, "log")).out(log(/^a line$/, "warn"))
    .in(data(t.client, "timer")).out(wakeup(10))
    .fire();
  assert.deepEqual(layer.seen.slice(-1), ["woke"]);
  const w = pb.history.at(-1) as RequestWakeup;
  let stopped = 0;
  w.onCancel = () => stopped++;
  w.cancel();
  w.cancel();
  assert.equal(stopped, 1);
  pb.fire(w); // cancelled: does not fire
  assert.deepEqual(layer.seen.filter((s) => s === "woke"), ["woke"]);
});

Deno.test("layer: an unattached layer cannot emit", () => {
  const t = tctx();
  assert.throws(() => new Recorder(t.ctx).handle(data(t.client, "log")), /Recorder is not attached/);
});

class Tunnel extends TunnelLayer {
  protected onEvent(e: Event): void {
    if (this.child) return this.child.handle(e);
    if (e instanceof Start) {
      this.setChild(new Recorder(this.context), e, [data(this.context.client, "first")]);
    }
  }
}

Deno.test("TunnelLayer: the child is started, gets the replayed events, then every event; its commands go up", () => {
  const t = tctx();
  const layer = new Tunnel(t.ctx);
  const pb = new Playbook(layer, { logs: true });
  pb.in(new Start()).in(data(t.client, "log")).out(log(/a line/));
  const child = (layer as unknown as { child: Recorder }).child;
  assert.deepEqual(child.seen, ["Start", "first", "log"]);
  assert.equal(String(layer), "Tunnel");
});

Deno.test("events and commands describe themselves for logs and test failures", () => {
  const t = tctx();
  const s = new Server(["example.com", 443]);
  const w = new RequestWakeup(5, () => {});
  const texts = [
    new Start(),
    new DataReceived(t.client, fromLatin1("abc")),
    new ConnectionClosed(s),
    new Wakeup(w),
    new SendData(s, fromLatin1("xy")),
    new OpenConnection(s),
    new CloseConnection(t.client, { halfClose: true }),
    new CloseConnection(s),
    new StartHook("request", null),
    new Log("hi", "warn"),
    w,
    new StartTls(t.client, { alpn: [], timeoutMs: 0 }),
    new SetReading(s, false),
  ].map(String);
  assert.deepEqual(texts, [
    "Start",
    "DataReceived(client, 3b)",
    "ConnectionClosed(server)",
    "Wakeup",
    "SendData(server, 2b)",
    "OpenConnection(example.com:443)",
    "CloseConnection(client, half)",
    "CloseConnection(server)",
    "StartHook(request)",
    'Log(warn, "hi")',
    "RequestWakeup(5)",
    "StartTls(client)",
    "SetReading",
  ]);
});

Deno.test("a blocking command is completed once: reply kept, later completions ignored", () => {
  const c = new OpenConnection(new Server(["h", 1]));
  const got: unknown[] = [];
  c.onReply((r) => got.push(r));
  assert.equal(c.done, false);
  c.complete(null);
  c.complete(new ProtocolError("connect", "late"));
  assert.deepEqual(got, [null]);
  assert.equal(c.done, true);
  assert.equal(c.reply, null);
  const probe: Command = c;
  assert.ok(cmd(OpenConnection).match(probe) === null);
});

Deno.test("ProtocolError: a kind, a reason, a status and a detail, never guessed from the text", () => {
  const e = new ProtocolError("tls", "unknown ca", null, "untrusted");
  assert.ok(e instanceof Error);
  assert.deepEqual([e.name, e.kind, e.message, e.status, e.detail], [
    "ProtocolError",
    "tls",
    "unknown ca",
    null,
    "untrusted",
  ]);
  assert.deepEqual(new ProtocolError("limit", "x").status, null);
});

Deno.test("connectError: socket error codes become readable reasons with 502, timeouts 504", () => {
  const cases: [string | undefined, string, number][] = [
    ["ECONNREFUSED", "Cannot connect to h:1: connection refused", 502],
    ["ENOTFOUND", "Cannot resolve h:1: host not found", 502],
    ["EAI_AGAIN", "Cannot resolve h:1: host not found", 502],
    ["ETIMEDOUT", "Timed out connecting to h:1", 504],
    ["TIMEOUT", "Timed out connecting to h:1", 504],
    ["EHOSTUNREACH", "Cannot connect to h:1: no route to host", 502],
    ["ENETUNREACH", "Cannot connect to h:1: no route to host", 502],
    ["ECONNRESET", "Connection to h:1 reset", 502],
    ["EWHATEVER", "Cannot connect to h:1: boom", 502],
  ];
  for (const [code, msg, status] of cases) {
    const e = connectError({ code, message: "boom" }, "h:1");
    assert.deepEqual([e.kind, e.message, e.status], ["connect", msg, status], String(code));
  }
  assert.equal(connectError("plain", "h:1").message, "Cannot connect to h:1: plain");
});

Deno.test("errorResponse: mitmproxy's error page, HTML-escaped, Connection: close", () => {
  const r = errorResponse(502, `<script>alert("x")</script> & 'y'`);
  assert.equal(r.statusCode, 502);
  assert.equal(r.headers.get("connection"), "close");
  assert.equal(r.headers.get("content-type"), "text/html");
  assert.match(r.headers.get("server")!, /^mitmdeno /);
  assert.equal(
    r.text,
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>" +
      "<p>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;y&#39;</p></body></html>\n",
  );
});
