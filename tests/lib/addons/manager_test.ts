import assert from "node:assert/strict";
import {
  type Addon,
  AddonHalt,
  AddonManager,
  AddonManagerError,
  addonName,
  EVENTS,
  type Loader,
} from "../../../lib/addons/manager.ts";
import { Options, OptionsError } from "../../../lib/addons/options.ts";
import { type LogEntry, Logger } from "../../../lib/addons/log.ts";
import { CommandManager } from "../../../lib/addons/commands.ts";
import { HTTPFlow } from "../../../lib/flow/flow.ts";
import { Client, Server } from "../../../lib/flow/connection.ts";
import { Request } from "../../../lib/http/message.ts";

function setup() {
  const logs: LogEntry[] = [];
  const host = {
    options: new Options(),
    log: new Logger((e) => logs.push(e)),
    commands: new CommandManager(),
  };
  const m = new AddonManager(host);
  host.options.onChange = (updated) => m.trigger("configure", updated);
  return { m, logs, host, errors: () => logs.filter((e) => e.level === "error").map((e) => e.msg) };
}

/** An addon named `name` recording `event` calls into `out`. */
function rec(name: string, out: string[], extra: Addon = {}): Addon {
  return {
    name,
    request(x: unknown) {
      out.push(`${name}:${x}`);
    },
    ...extra,
  };
}

function tflow(): HTTPFlow {
  return new HTTPFlow(
    new Client(),
    new Server(["example.com", 80]),
    Request.make("GET", "http://example.com/"),
  );
}

const tick = () => new Promise((r) => setTimeout(r, 0));

// ---------------------------------------------------------------- naming

Deno.test("addonName: uses `name`, else the lower-cased class name, else 'addon'", () => {
  class MyFancyAddon {}
  assert.equal(addonName({ name: "explicit" }), "explicit");
  assert.equal(addonName(new MyFancyAddon()), "myfancyaddon");
  assert.equal(addonName({}), "addon");
  assert.equal(addonName({ name: "" }), "addon");
  assert.equal(addonName(Object.create(null)), "addon");
});

Deno.test("EVENTS: include the mitmproxy hook names", () => {
  for (const e of ["load", "configure", "running", "done", "request", "response", "next_layer", "update"]) {
    assert.ok((EVENTS as readonly string[]).includes(e), e);
  }
});

// ---------------------------------------------------------------- order

Deno.test("AddonManager: handlers run in chain order with the event's arguments", async () => {
  const { m } = setup();
  const out: string[] = [];
  await m.add(rec("a", out), rec("b", out));
  await m.add(rec("c", out));
  await m.trigger("request", 1);
  assert.deepEqual(out, ["a:1", "b:1", "c:1"]);
  assert.deepEqual(m.chain.map(addonName), ["a", "b", "c"]);
});

Deno.test("AddonManager: each addon runs before its children, depth first", async () => {
  const { m } = setup();
  const out: string[] = [];
  const tree = rec("a", out, {
    addons: [rec("a1", out, { addons: [rec("a11", out), rec("a12", out)] }), rec("a2", out)],
  });
  await m.add(tree, rec("b", out, { addons: [rec("b1", out)] }));
  await m.trigger("request", "x");
  assert.deepEqual(out, ["a:x", "a1:x", "a11:x", "a12:x", "a2:x", "b:x", "b1:x"]);
  assert.deepEqual([...m.walk()].map(addonName), ["a", "a1", "a11", "a12", "a2", "b", "b1"]);
  assert.equal(m.get("a12"), tree.addons[0].addons[1]);
});

Deno.test("AddonManager: handlers are called with `this` bound to their addon", async () => {
  const { m } = setup();
  class Counter {
    n = 0;
    request() {
      this.n++;
    }
  }
  const c = new Counter();
  await m.add(c);
  await m.trigger("request");
  await m.trigger("request");
  assert.equal(c.n, 2);
});

Deno.test("AddonManager: async handlers are awaited before the next addon runs", async () => {
  const { m } = setup();
  const out: string[] = [];
  await m.add(
    {
      name: "slow",
      async request() {
        out.push("slow:start");
        await new Promise((r) => setTimeout(r, 20));
        out.push("slow:end");
      },
    },
    {
      name: "thenable",
      request() {
        return { then: (res: () => void) => setTimeout(() => (out.push("thenable"), res()), 5) };
      },
    },
    rec("fast", out),
  );
  await m.trigger("request", 0);
  assert.deepEqual(out, ["slow:start", "slow:end", "thenable", "fast:0"]);
});

Deno.test("AddonManager: addons without a handler and null handlers are skipped", async () => {
  const { m } = setup();
  const out: string[] = [];
  await m.add({ name: "nothing" }, { name: "nulls", request: null, response: undefined }, rec("r", out));
  await m.trigger("request", 1);
  await m.trigger("response", 1);
  assert.deepEqual(out, ["r:1"]);
  assert.ok(m.has("request"));
  assert.ok(!m.has("response"));
  assert.equal(m.handlers("request").length, 1);
});

// ---------------------------------------------------------------- errors

Deno.test("AddonManager: a throwing handler is logged with file:line and the chain goes on", async () => {
  const { m, errors } = setup();
  const out: string[] = [];
  await m.add({
    name: "thrower",
    request() {
      throw new Error("kaputt");
    },
  }, rec("after", out));
  await m.trigger("request", 1);
  assert.deepEqual(out, ["after:1"]);
  const errs = errors();
  assert.equal(errs.length, 1);
  assert.match(errs[0], /^Addon error in thrower\.request: kaputt \(at .*manager_test\.ts:\d+:\d+\)$/);
});

Deno.test("AddonManager: a rejecting async handler is logged and the chain goes on", async () => {
  const { m, errors } = setup();
  const out: string[] = [];
  await m.add({
    name: "asyncthrower",
    async request() {
      await tick();
      throw new RangeError("late failure");
    },
  }, rec("after", out));
  await m.trigger("request", 2);
  assert.deepEqual(out, ["after:2"]);
  assert.match(
    errors()[0],
    /Addon error in asyncthrower\.request: RangeError: late failure \(at .*manager_test\.ts:\d+/,
  );
});

Deno.test("AddonManager: AddonHalt stops the event for the rest of the chain, silently", async () => {
  const { m, logs } = setup();
  const out: string[] = [];
  await m.add(rec("first", out), {
    name: "halter",
    request: () => {
      throw new AddonHalt();
    },
  }, rec("never", out, { addons: [rec("never-child", out)] }));
  await m.trigger("request", 1);
  assert.deepEqual(out, ["first:1"]);
  assert.equal(logs.length, 0);
  await m.trigger("response");
  assert.equal(new AddonHalt().name, "AddonHalt");
});

Deno.test("AddonManager: an async AddonHalt also stops the chain", async () => {
  const { m } = setup();
  const out: string[] = [];
  await m.add({
    name: "h",
    async request() {
      await tick();
      throw new AddonHalt();
    },
  }, rec("never", out));
  await m.trigger("request", 1);
  assert.deepEqual(out, []);
});

Deno.test("AddonManager: OptionsError from configure propagates, from other events it is logged", async () => {
  const { m, errors } = setup();
  const out: string[] = [];
  await m.add({
    name: "picky",
    configure() {
      throw new OptionsError("bad config");
    },
    request() {
      throw new OptionsError("not configure");
    },
  }, rec("after", out, { configure: () => out.push("after:configure") }));
  await assert.rejects(() => m.trigger("configure", new Set(["x"])), (e: unknown) => {
    assert.ok(e instanceof OptionsError);
    assert.equal(e.message, "bad config");
    return true;
  });
  assert.deepEqual(out, [], "the chain stops at the OptionsError");
  await m.trigger("request", 1);
  assert.deepEqual(out, ["after:1"]);
  assert.match(errors()[0], /picky\.request: OptionsError: not configure/);
});

Deno.test("AddonManager: other errors in configure are logged and do not roll back options", async () => {
  const { m, host, errors } = setup();
  host.options.add({ name: "n", type: "int", default: 0, help: "" });
  await m.add({
    name: "buggy",
    configure() {
      throw new Error("oops");
    },
  });
  await host.options.update({ n: 5 });
  assert.equal(host.options.n, 5);
  assert.match(errors()[0], /buggy\.configure: oops/);
});

Deno.test("AddonManager: an addon's OptionsError in configure rolls back an options update", async () => {
  const { m, host } = setup();
  const seen: number[] = [];
  await m.add({
    name: "validator",
    load(l: Loader) {
      l.addOption("limit", "int", 10, "a limit");
    },
    configure(updated: Set<string>) {
      if (!updated.has("limit")) return;
      seen.push(host.options.limit);
      if (host.options.limit < 0) throw new OptionsError("limit must be positive");
    },
  });
  await host.options.update({ limit: 20 });
  await assert.rejects(() => host.options.update({ limit: -1 }), /limit must be positive/);
  assert.equal(host.options.limit, 20);
  assert.deepEqual(seen, [20, -1, 20]);
});

Deno.test("AddonManager: a non-callable handler raises AddonManagerError", async () => {
  const { m } = setup();
  await m.add({ name: "weird", request: "not a function" });
  await assert.rejects(() => m.trigger("request"), (e: unknown) => {
    assert.ok(e instanceof AddonManagerError);
    assert.match(e.message, /Addon handler request \(weird\) not callable/);
    return true;
  });
});

// ---------------------------------------------------------------- registration

Deno.test("AddonManager: duplicate names are refused", async () => {
  const { m } = setup();
  await m.add({ name: "dup" });
  await assert.rejects(() => m.add({ name: "dup" }), /An addon called 'dup' already exists\./);
  class Same {}
  await m.add(new Same());
  await assert.rejects(() => m.add(new Same()), /An addon called 'same' already exists\./);
  assert.equal(m.chain.length, 2);
});

Deno.test("AddonManager: a duplicate child name refuses the whole addon and registers none of it", async () => {
  const { m } = setup();
  const loaded: string[] = [];
  await m.add({ name: "taken" });
  const parent = {
    name: "parent",
    load: () => loaded.push("parent"),
    addons: [{ name: "taken", load: () => loaded.push("child") }],
  };
  await assert.rejects(() => m.add(parent), AddonManagerError);
  assert.deepEqual(m.chain.map(addonName), ["taken"]);
  assert.equal(m.get("parent"), undefined);
  assert.deepEqual(loaded, [], "load must not fire for a refused addon");
  // fixing the child makes the parent addable
  parent.addons[0].name = "fresh";
  await m.add(parent);
  assert.equal(m.get("parent"), parent);
});

Deno.test("AddonManager: the same name twice within one addon tree is refused", async () => {
  const { m } = setup();
  await assert.rejects(
    () => m.add({ name: "p", addons: [{ name: "c" }, { name: "c" }] }),
    /'c' already exists/,
  );
  assert.equal(m.get("p"), undefined);
  assert.equal(m.get("c"), undefined);
});

Deno.test("AddonManager: load fires on add with a loader for options and commands", async () => {
  const { m, host } = setup();
  const order: string[] = [];
  const addon = {
    name: "loader-user",
    prefix: "hi",
    load(l: Loader) {
      order.push("load");
      l.addOption("greeting", "str", "hello", "what to say");
      l.addOption("mode_x", "str", "a", "choice", ["a", "b"]);
      l.addCommand("loader.greet", function (this: { prefix: string }, who: string) {
        return `${this.prefix} ${who}`;
      }, "greet someone");
    },
    addons: [{ name: "kid", load: () => order.push("kid load") }],
  };
  await m.add(addon);
  assert.deepEqual(order, ["load", "kid load"]);
  assert.equal(host.options.greeting, "hello");
  assert.deepEqual(host.options.spec("mode_x")!.choices, ["a", "b"]);
  assert.equal(await host.commands.call("loader.greet", "bob"), "hi bob");
  assert.equal(host.commands.list()[0].help, "greet someone");
});

Deno.test("AddonManager: re-declaring an option differently warns about the override", async () => {
  const { m, logs, host } = setup();
  await m.add({ name: "one", load: (l: Loader) => l.addOption("shared", "int", 1, "") });
  await m.add({ name: "two", load: (l: Loader) => l.addOption("shared", "int", 1, "") });
  assert.equal(logs.length, 0, "an identical declaration is silent");
  await m.add({ name: "three", load: (l: Loader) => l.addOption("shared", "int", 2, "") });
  assert.match(logs[0].msg, /Over-riding existing option shared \(from three\)/);
  assert.equal(logs[0].level, "warn");
  assert.equal(host.options.shared, 2);
});

Deno.test("AddonManager: deferred --set values are applied when an addon declares the option", async () => {
  const { m, host } = setup();
  await host.options.set(["late_opt=7", "late_list=a", "late_list=b"]);
  const configured: string[][] = [];
  await m.add({
    name: "late",
    load(l: Loader) {
      l.addOption("late_opt", "int", 0, "");
      l.addOption("late_list", "strs", [], "");
    },
    configure: (u: Set<string>) => configured.push([...u].sort()),
  });
  assert.equal(host.options.late_opt, 7);
  assert.deepEqual(host.options.late_list, ["a", "b"]);
  // as in mitmproxy, deferred values are applied while registering, before the addon joins the chain;
  // it sees them in the startup configure (or reads them in load)
  assert.deepEqual(configured, []);
  assert.deepEqual(host.options.deferredNames, []);
});

Deno.test("AddonManager: errors in load are logged, OptionsError in load propagates", async () => {
  const { m, errors } = setup();
  await m.add({
    name: "badload",
    load() {
      throw new Error("load broke");
    },
  });
  assert.match(errors()[0], /Addon error in badload\.load: load broke/);
  assert.ok(m.get("badload"), "a logged load error still registers the addon");
  await assert.rejects(
    () => m.add({ name: "badopt", load: (l: Loader) => l.addOption("o", "int", "nope", "") }),
    OptionsError,
  );
});

Deno.test("AddonManager: legacy event names produce a warning", async () => {
  const { m, logs } = setup();
  await m.add({ name: "old", clientconnect() {}, add_log() {} });
  const warns = logs.filter((e) => e.level === "warn").map((e) => e.msg);
  assert.equal(warns.length, 2);
  assert.match(warns[0], /Addon old: the "clientconnect" event has been removed/);
  assert.match(warns[1], /"add_log"/);
});

// ---------------------------------------------------------------- remove / replace / cache

Deno.test("AddonManager: remove fires done on the addon and its children and forgets their names", async () => {
  const { m } = setup();
  const out: string[] = [];
  const a = rec("a", out, {
    done: () => out.push("a:done"),
    addons: [rec("a1", out, { done: () => out.push("a1:done") })],
  });
  await m.add(a, rec("b", out));
  await m.trigger("request", 1);
  await m.remove(a);
  await m.trigger("request", 2);
  assert.deepEqual(out, ["a:1", "a1:1", "b:1", "a:done", "a1:done", "b:2"]);
  assert.equal(m.get("a"), undefined);
  assert.equal(m.get("a1"), undefined);
  await m.add(rec("a", out));
  await assert.rejects(() => m.remove({ name: "ghost" }), /No such addon: ghost/);
});

Deno.test("AddonManager: replace swaps an addon in place, firing done then load", async () => {
  const { m } = setup();
  const out: string[] = [];
  const old = rec("old", out, { done: () => out.push("old:done") });
  await m.add(rec("first", out), old, rec("last", out));
  await m.replace(old, rec("new", out, { load: () => out.push("new:load") }));
  await m.trigger("request", 1);
  assert.deepEqual(out, ["old:done", "new:load", "first:1", "new:1", "last:1"]);
  assert.equal(m.get("old"), undefined);
  await assert.rejects(() => m.replace(old, { name: "x" }), /No such addon: old/);
});

Deno.test("AddonManager: handler lists are cached until invalidate()", async () => {
  const { m } = setup();
  const out: string[] = [];
  const a: Addon = { name: "a" };
  await m.add(a);
  assert.ok(!m.has("request"));
  a.request = () => out.push("late");
  assert.ok(!m.has("request"), "cached");
  m.invalidate();
  assert.ok(m.has("request"));
  await m.trigger("request");
  assert.deepEqual(out, ["late"]);
});

Deno.test("AddonManager: invokeAddon fires an event on one addon and its children only", async () => {
  const { m } = setup();
  const out: string[] = [];
  const a = rec("a", out, { addons: [rec("a1", out)] });
  await m.add(a, rec("b", out));
  await m.invokeAddon(a, "request", "only");
  assert.deepEqual(out, ["a:only", "a1:only"]);
});

// ---------------------------------------------------------------- handleLifecycle

Deno.test("handleLifecycle: runs the hook, then update([flow]) on every addon", async () => {
  const { m } = setup();
  const out: string[] = [];
  const f = tflow();
  await m.add({
    name: "a",
    request: (fl: HTTPFlow) => out.push(`a:request:${fl === f}`),
    update: (fls: HTTPFlow[]) => out.push(`a:update:${fls.length === 1 && fls[0] === f}`),
  }, { name: "b", update: () => out.push("b:update") });
  await m.handleLifecycle("request", f);
  assert.deepEqual(out, ["a:request:true", "a:update:true", "b:update"]);
});

Deno.test("handleLifecycle: update fires even when nobody handles the hook", async () => {
  const { m } = setup();
  const out: string[] = [];
  await m.add({ name: "u", update: () => out.push("update") });
  await m.handleLifecycle("response", tflow());
  assert.deepEqual(out, ["update"]);
});

Deno.test("handleLifecycle: waits while the flow is intercepted and continues on resume", async () => {
  const { m } = setup();
  const f = tflow();
  await m.add({ name: "i", request: (fl: HTTPFlow) => fl.intercept() });
  let finished = false;
  const p = m.handleLifecycle("request", f).then(() => (finished = true));
  await tick();
  await tick();
  assert.equal(finished, false);
  assert.ok(f.intercepted);
  f.resume();
  await p;
  assert.equal(finished, true);
  assert.ok(!f.intercepted);
});

Deno.test("handleLifecycle: a flow killed while intercepted is released", async () => {
  const { m } = setup();
  const f = tflow();
  await m.add({ name: "i", request: (fl: HTTPFlow) => fl.intercept() });
  const p = m.handleLifecycle("request", f);
  await tick();
  f.kill();
  await p;
  assert.ok(f.killed);
});

Deno.test("handleLifecycle: an intercept and resume within the hook does not block", async () => {
  const { m } = setup();
  const f = tflow();
  await m.add({
    name: "i",
    request(fl: HTTPFlow) {
      fl.intercept();
      fl.resume();
    },
  });
  await m.handleLifecycle("request", f);
  assert.ok(!f.intercepted);
});

Deno.test("handleLifecycle: an addon can resume the flow later from another event", async () => {
  const { m } = setup();
  const f = tflow();
  const held: HTTPFlow[] = [];
  await m.add({
    name: "holder",
    request(fl: HTTPFlow) {
      fl.intercept();
      held.push(fl);
      setTimeout(() => held.shift()!.resume(), 10);
    },
  });
  const t0 = performance.now();
  await m.handleLifecycle("request", f);
  assert.ok(performance.now() - t0 >= 5);
  assert.ok(!f.intercepted);
});

Deno.test("AddonManager: several nameless plain-object addons can be loaded side by side", async () => {
  const { Master } = await import("../../../lib/master.ts");
  const master = new Master();
  const calls: string[] = [];
  const a = { request: () => void calls.push("a") };
  const b = { request: () => void calls.push("b") };
  await master.addAddons(a, b);
  assert.equal(master.addons.get("addon"), a);
  assert.equal(master.addons.get("addon-2"), b);
  await master.addons.trigger("request", {});
  assert.deepEqual(calls, ["a", "b"]);
});
