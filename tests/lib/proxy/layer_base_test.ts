/**
 * The Layer base (layer.ts): events queued while paused, call/request/resume, replies given synchronously, adopt and
 * childCommand, log and wakeup, TunnelLayer. (Named layer_base_test.ts: the core-layers branch adds a
 * layer_test.ts of its own for the same module.)
 */
import assert from "node:assert/strict";
import { Layer, TunnelLayer } from "../../../lib/proxy/layer.ts";
import {
  BlockingCommand,
  type Command,
  Log,
  OpenConnection,
  type RequestWakeup,
  SendData,
  StartHook,
} from "../../../lib/proxy/commands.ts";
import { DataReceived, type Event, Start } from "../../../lib/proxy/events.ts";
import { Server } from "../../../lib/flow/connection.ts";
import { data, tctx } from "./tutils.ts";

/** Records events; on "call" data it calls a hook and records the reply; on "req" it requests one. */
class Probe extends Layer {
  readonly log_: string[] = [];
  readonly sent: Command[] = [];
  protected onEvent(e: Event): void {
    const what = e instanceof DataReceived ? new TextDecoder().decode(e.data) : String(e);
    this.log_.push(`event ${what}`);
    if (what.startsWith("call")) {
      this.call(new StartHook("tcp_start", what), (r) => this.log_.push(`reply ${String(r)} to ${what}`));
    } else if (what === "req") {
      this.request(new StartHook("tcp_end", what), () => this.log_.push("request replied"));
    } else if (what === "log") this.log("hello", "warn");
  }
  wake(ms: number, fn: () => void): RequestWakeup {
    return this.wakeup(ms, fn);
  }
  send(c: Command): void {
    this.emit(c);
  }
  take<L extends Layer>(child: L): L {
    return this.adopt(child);
  }
}

function rooted(): {
  layer: Probe;
  out: Command[];
  from: Layer[];
  client: import("../../../lib/flow/connection.ts").Client;
} {
  const t = tctx();
  const layer = new Probe(t.ctx);
  const out: Command[] = [];
  const from: Layer[] = [];
  layer.attach((c, f) => {
    out.push(c);
    from.push(f);
  });
  return { layer, out, from, client: t.client };
}

Deno.test("Layer: events are handled at once while not paused", () => {
  const { layer, client } = rooted();
  layer.handle(new Start());
  layer.handle(data(client, "a"));
  assert.deepEqual(layer.log_, ["event Start", "event a"]);
  assert.equal(layer.paused, false);
});

Deno.test("Layer.call: pauses until the reply, queues events meanwhile and handles them in order after it", () => {
  const { layer, out, client } = rooted();
  layer.handle(data(client, "call 1"));
  assert.ok(layer.paused);
  assert.equal(out.length, 1);
  const hook = out[0] as StartHook;
  assert.ok(hook instanceof StartHook && hook.data === "call 1");
  layer.handle(data(client, "b"));
  layer.handle(data(client, "call 2"));
  layer.handle(data(client, "c"));
  assert.deepEqual(layer.log_, ["event call 1"], "queued while paused");
  hook.complete(undefined);
  // the reply, then the queue until the next call pauses the layer again
  assert.deepEqual(layer.log_, ["event call 1", "reply undefined to call 1", "event b", "event call 2"]);
  assert.ok(layer.paused);
  // a reply to something else, or a second reply, changes nothing
  hook.complete(undefined);
  layer.resume(new StartHook("tcp_start", "stranger") as BlockingCommand<unknown>, 1);
  assert.equal(layer.log_.length, 4);
  (out[1] as StartHook).complete(undefined);
  assert.deepEqual(layer.log_.slice(4), ["reply undefined to call 2", "event c"]);
  assert.equal(layer.paused, false);
  // a new event with an empty queue is handled at once again
  layer.handle(data(client, "d"));
  assert.equal(layer.log_.at(-1), "event d");
});

Deno.test("Layer.call: a reply given while the command is emitted runs the continuation before call returns", () => {
  const t = tctx();
  const layer = new Probe(t.ctx);
  layer.attach((c) => {
    if (c instanceof BlockingCommand) c.complete("sync");
  });
  layer.handle(data(t.client, "call x"));
  layer.handle(data(t.client, "after"));
  assert.deepEqual(layer.log_, ["event call x", "reply sync to call x", "event after"]);
  assert.equal(layer.paused, false);
});

Deno.test("Layer.request: the layer goes on; the reply runs its callback", () => {
  const { layer, out, client } = rooted();
  layer.handle(data(client, "req"));
  assert.equal(layer.paused, false);
  layer.handle(data(client, "next"));
  assert.deepEqual(layer.log_, ["event req", "event next"]);
  (out[0] as StartHook).complete(undefined);
  assert.equal(layer.log_.at(-1), "request replied");
});

Deno.test("Layer: log and wakeup emit their commands; emitting unattached is an error naming the layer", () => {
  const { layer, out, client } = rooted();
  layer.handle(data(client, "log"));
  assert.ok(out[0] instanceof Log);
  assert.equal((out[0] as Log).message, "hello");
  assert.equal((out[0] as Log).level, "warn");
  let woke = 0;
  const w = layer.wake(500, () => woke++);
  assert.equal(out[1], w);
  assert.equal(w.delayMs, 500);
  w.onWake();
  assert.equal(woke, 1);
  const t = tctx();
  const loose = new Probe(t.ctx);
  assert.throws(() => loose.send(new Log("x")), /Probe is not attached/);
  assert.equal(String(loose), "Probe");
});

Deno.test("Layer.adopt: a child's commands go to its parent's childCommand, and up from there", () => {
  const t = tctx();
  const seen: string[] = [];
  class Parent extends Probe {
    override childCommand(c: Command, from: Layer): void {
      seen.push(`${from} sent ${c}`);
      if (!(c instanceof Log)) super.childCommand(c, from);
    }
  }
  const parent = new Parent(t.ctx);
  const out: [Command, Layer][] = [];
  parent.attach((c, f) => void out.push([c, f]));
  const child = parent.take(new Probe(t.ctx.fork()));
  const server = new Server(["example.com", 80]);
  child.send(new Log("swallowed by the parent"));
  child.send(new OpenConnection(server));
  assert.deepEqual(seen, [
    'Probe sent Log(info, "swallowed by the parent")',
    "Probe sent OpenConnection(example.com:80)",
  ]);
  assert.equal(out.length, 1);
  assert.ok(out[0][0] instanceof OpenConnection);
  assert.equal(out[0][1], parent, "the root's sink sees the command coming from the root");
  // attaching the child elsewhere makes it a root again
  const direct: Command[] = [];
  child.attach((c) => void direct.push(c));
  child.send(new SendData(t.client, new Uint8Array(1)));
  assert.equal(direct.length, 1);
  assert.equal(seen.length, 2);
});

Deno.test("TunnelLayer.setChild: adopts the child, starts it, then replays the events given", () => {
  const t = tctx();
  class Tunnel extends TunnelLayer {
    protected onEvent(e: Event): void {
      if (this.child) return this.child.handle(e);
      if (e instanceof Start) return;
      const inner = new Probe(this.context.fork());
      this.setChild(inner, new Start(), [e]);
    }
    get inner(): Probe | null {
      return this.child as Probe | null;
    }
  }
  const tunnel = new Tunnel(t.ctx);
  const out: Command[] = [];
  tunnel.attach((c) => void out.push(c));
  tunnel.handle(new Start());
  assert.equal(tunnel.inner, null);
  tunnel.handle(data(t.client, "first"));
  tunnel.handle(data(t.client, "log"));
  assert.deepEqual(tunnel.inner!.log_, ["event Start", "event first", "event log"]);
  assert.ok(out[0] instanceof Log, "the child's commands come out of the tunnel");
});
