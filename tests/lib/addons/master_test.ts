import assert from "node:assert/strict";
import { Master } from "../../../lib/master.ts";
import { ctx } from "../../../lib/addons/ctx.ts";
import { OptionsError } from "../../../lib/addons/options.ts";
import type { LogEntry } from "../../../lib/addons/log.ts";
import type { Loader } from "../../../lib/addons/manager.ts";

Deno.test("Master: declares the core options and installs itself in ctx", () => {
  const m = new Master();
  assert.deepEqual(m.options.mode, ["regular"]);
  assert.ok(m.options.has("listen_port"));
  assert.ok(m.options.has("ignore_hosts"));
  assert.equal(ctx.master, m);
  assert.equal(ctx.options, m.options);
  assert.equal(ctx.log, m.log);
  assert.equal(m.isRunning, false);
  assert.equal(m.exitCode, 0);
});

Deno.test("Master: an option update runs configure on the addons with the changed names", async () => {
  const m = new Master();
  const seen: string[][] = [];
  await m.addAddons({ name: "watcher", configure: (u: Set<string>) => seen.push([...u]) });
  await m.options.update({ showhost: true });
  assert.deepEqual(seen, [["showhost"]]);
  assert.equal(m.options.showhost, true);
});

Deno.test("Master: an addon refusing a value rolls the option back", async () => {
  const m = new Master();
  await m.addAddons({
    name: "guard",
    configure(u: Set<string>) {
      if (u.has("listen_host") && m.options.listen_host === "bad") throw new OptionsError("no bad hosts");
    },
  });
  await assert.rejects(() => m.options.update({ listen_host: "bad" }), /no bad hosts/);
  assert.equal(m.options.listen_host, "");
});

Deno.test("Master: run() fires configure(all options), running, and done after shutdown", async () => {
  const m = new Master();
  const out: string[] = [];
  let allNames: Set<string> | null = null;
  await m.addAddons({
    name: "life",
    load: (l: Loader) => {
      out.push("load");
      l.addOption("life_opt", "bool", false, "");
    },
    configure: (u: Set<string>) => {
      allNames = u;
      out.push("configure");
    },
    running: () => {
      out.push(`running:${m.isRunning}`);
      setTimeout(() => m.shutdown(), 0);
    },
    done: () => out.push("done"),
  });
  await m.run();
  assert.deepEqual(out, ["load", "configure", "running:false", "done"]);
  assert.ok(allNames!.has("life_opt") && allNames!.has("mode") && allNames!.has("listen_port"));
  assert.equal(allNames!.size, m.options.specs().length);
  assert.equal(m.isRunning, true);
  assert.equal(m.exitCode, 0);
});

Deno.test("Master: log entries before any listener are replayed to the first one", () => {
  const m = new Master();
  m.log.info("early one");
  m.log.warn("early two");
  const first: LogEntry[] = [];
  const second: LogEntry[] = [];
  m.onLog((e) => first.push(e));
  m.log.info("late");
  m.onLog((e) => second.push(e));
  m.log.error("later");
  assert.deepEqual(first.map((e) => e.msg), ["early one", "early two", "late", "later"]);
  assert.deepEqual(second.map((e) => e.msg), ["later"]);
});

Deno.test("Master: an error logged during startup makes run() exit with code 1", async () => {
  const m = new Master();
  const msgs: string[] = [];
  m.onLog((e) => msgs.push(`${e.level}:${e.msg}`));
  await m.addAddons({
    name: "broken",
    configure() {
      throw new Error("startup failure");
    },
  });
  let done = false;
  await m.addAddons({ name: "d", done: () => (done = true) });
  await m.run(); // returns by itself
  assert.equal(m.errorsAtStartup, 1);
  assert.equal(m.exitCode, 1);
  assert.ok(done);
  assert.ok(
    msgs.some((x) => /^error:Addon error in broken\.configure: startup failure/.test(x)),
    msgs.join("\n"),
  );
  assert.ok(msgs.includes("error:Error logged during startup, exiting..."));
});

Deno.test("Master: with exitOnStartupError off, startup errors do not stop the proxy", async () => {
  const m = new Master();
  m.onLog(() => {});
  m.exitOnStartupError = false;
  await m.addAddons({
    name: "broken",
    running() {
      throw new Error("meh");
    },
  }, {
    name: "stopper",
    running: () => setTimeout(() => m.shutdown(), 10),
  });
  await m.run();
  assert.equal(m.errorsAtStartup, 1);
  assert.equal(m.exitCode, 0);
});

Deno.test("Master: errors after running are not startup errors", async () => {
  const m = new Master();
  m.onLog(() => {});
  await m.addAddons({
    name: "x",
    running: () => {
      setTimeout(() => {
        m.log.error("runtime problem");
        m.shutdown();
      }, 0);
    },
  });
  await m.run();
  assert.equal(m.errorsAtStartup, 0);
  assert.equal(m.exitCode, 0);
});
