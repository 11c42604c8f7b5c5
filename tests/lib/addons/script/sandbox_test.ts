/**
 * Attacks on the script sandbox, each as a real script in a real worker: option and command hijacks,
 * escalation to more permissions, secrets, imports outside the script's folder, log injection, busy loops
 * outside hooks, workers started from a script. Each test fails without the defence it names.
 */
import assert from "node:assert/strict";
import { context, type TestContext, tflow } from "../../../../testing.ts";
import { ScriptLoader } from "../../../../lib/addons/script/loader.ts";

interface Env {
  tctx: TestContext;
  loader: ScriptLoader;
  dir: string;
  /** A directory outside the script's folder, with a secret file in it. */
  outside: string;
}

async function withScript(
  source: string,
  fn: (env: Env) => void | Promise<void>,
  opts: { sets?: string[]; before?: (env: Env) => void | Promise<void>; files?: Record<string, string> } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-sandbox-" });
  const outside = await Deno.makeTempDir({ prefix: "mitmdeno-outside-" });
  await Deno.writeTextFile(`${outside}/secret.txt`, "TOP-SECRET-42");
  await Deno.writeTextFile(`${outside}/evil.ts`, `export const stolen = "imported from outside";\n`);
  for (const [name, text] of Object.entries(opts.files ?? {})) {
    await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("$OUTSIDE", outside));
  }
  const path = `${dir}/s.ts`;
  await Deno.writeTextFile(path, source.replaceAll("$OUTSIDE", outside).replaceAll("$DIR", dir));
  const tctx = await context();
  const loader = new ScriptLoader(tctx.master, { watch: false });
  const env = { tctx, loader, dir, outside };
  try {
    await tctx.master.addons.add(loader);
    await opts.before?.(env);
    if (opts.sets?.length) await tctx.options.set(opts.sets);
    await tctx.options.update({ scripts: [path] });
    await fn(env);
  } finally {
    await tctx.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU ticks (1/100 s) used by this process's threads over `ms`, per thread name. */
async function busyThreads(ms: number): Promise<string[]> {
  const read = () => {
    const m = new Map<string, number>();
    for (const t of Deno.readDirSync("/proc/self/task")) {
      try {
        const s = Deno.readTextFileSync(`/proc/self/task/${t.name}/stat`);
        const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
        m.set(t.name, Number(f[11]) + Number(f[12]));
      } catch { /* the thread ended */ }
    }
    return m;
  };
  const a = read();
  await sleep(ms);
  const b = read();
  const busy: string[] = [];
  for (const [tid, ticks] of b) {
    // more than half a core over the interval
    if (ticks - (a.get(tid) ?? 0) > ms / 20) busy.push(tid);
  }
  return busy;
}

Deno.test("sandbox: a script cannot take over a built-in option (script_allow escalation)", async () => {
  const src = `
import { ctx, type Loader } from "mitmdeno";
export function load(loader: Loader) {
  try { loader.addOption("script_allow", "strs", [], "mine now"); }
  catch (e) { ctx.log.info("declare refused: " + (e as Error).message); }
}
export async function running() {
  try { await ctx.options.update({ script_allow: ["all"] }); ctx.log.info("ESCALATED"); }
  catch (e) { ctx.log.info("update refused: " + (e as Error).message); }
  try { ctx.log.info("READ " + Deno.readTextFileSync("$OUTSIDE/secret.txt")); } catch { /* denied */ }
  try { new Deno.Command("touch", { args: ["$OUTSIDE/ran"] }).outputSync(); ctx.log.info("RAN"); } catch { /* denied */ }
}`;
  await withScript(src, async ({ tctx, outside }) => {
    await tctx.master.addons.trigger("running");
    await tctx.waitForLog('declare refused: option "script_allow" belongs to the proxy or another addon');
    await tctx.waitForLog("update refused: a sandboxed script can change only the options it declared");
    assert.deepEqual(tctx.options.get("script_allow"), [], "script_allow is unchanged");
    await sleep(300);
    assert.ok(!tctx.hasLog("ESCALATED"));
    assert.ok(!tctx.hasLog("TOP-SECRET-42"), "the secret file was not read");
    assert.ok(!tctx.hasLog("RAN"));
    await assert.rejects(Deno.stat(`${outside}/ran`), Deno.errors.NotFound, "no command ran");
  });
});

Deno.test("sandbox: the proxy refuses option declarations and changes a script's runtime did not check", async () => {
  // the script subverts its runtime's own checks (it shares the worker's isolate): with Set.prototype.has
  // patched, the runtime believes the script declared script_allow and listen_host before, so it forwards
  // their declaration and a change of script_allow to the proxy, which must refuse both
  const src = `
import { ctx, type Loader } from "mitmdeno";
const has = Set.prototype.has;
Set.prototype.has = function (this: Set<unknown>, v: unknown) {
  return v === "script_allow" || v === "listen_host" || v === "scripts" || has.call(this, v);
};
export function load(loader: Loader) {
  loader.addOption("mine", "str", "x", "an option of my own");
  loader.addOption("script_allow", "strs", ["all"], "forged");
  loader.addOption("listen_host", "int", 1, "forged");
}
export async function running() {
  for (const v of [{ scripts: [] }, { script_timeout: 999 }, { script_allow: ["all"] }]) {
    try { await ctx.options.update(v); ctx.log.info("CHANGED " + JSON.stringify(v)); }
    catch (e) { ctx.log.info("refused: " + (e as Error).message); }
  }
  ctx.log.info("posted");
}`;
  await withScript(src, async ({ tctx }) => {
    await tctx.waitForLog(
      "option script_allow belongs to scriptloader; a sandboxed script may declare only new options",
    );
    await tctx.waitForLog("option listen_host belongs to");
    await tctx.master.addons.trigger("running");
    await tctx.waitForLog("posted");
    await tctx.waitForLog(
      "refused: a sandboxed script can change only the options it declared (not scripts)",
    );
    await tctx.waitForLog(
      "refused: a sandboxed script can change only the options it declared (not script_allow)",
    );
    assert.ok(!tctx.hasLog("CHANGED"));
    assert.equal(tctx.options.get<string[]>("scripts").length, 1, "scripts unchanged");
    assert.equal(tctx.options.get("script_timeout"), 5);
    assert.deepEqual(tctx.options.get("script_allow"), []);
    assert.equal(tctx.options.spec("script_allow")?.help.includes("forged"), false);
    assert.equal(tctx.options.spec("listen_host")?.type, "str");
    assert.equal(tctx.options.get("mine"), "x", "its own option was declared");
  });
});

Deno.test("sandbox: redeclaring core options (scripts, listen_host, script_timeout) is refused with the option's name", async () => {
  const src = `
import { ctx, type Loader } from "mitmdeno";
export function load(loader: Loader) {
  for (const [n, t, d] of [["scripts", "strs", []], ["listen_host", "int", 1], ["script_timeout", "optional str", "9"]] as const) {
    try { loader.addOption(n, t, d as never, "hijack"); } catch (e) { ctx.log.info((e as Error).message); }
  }
}`;
  await withScript(src, async ({ tctx }) => {
    for (const n of ["scripts", "listen_host", "script_timeout"]) {
      await tctx.waitForLog(`option "${n}" belongs to the proxy or another addon`);
    }
    assert.equal(tctx.options.spec("listen_host")?.type, "str", "listen_host keeps its type");
    assert.equal(tctx.options.get<string[]>("scripts").length, 1, "the script is still loaded");
  });
});

Deno.test("sandbox: a script cannot replace another addon's command", async () => {
  const src = `
import type { Loader } from "mitmdeno";
export function load(loader: Loader) {
  loader.addCommand("victim.run", () => "hijacked");
  loader.addCommand("s.own", () => "own");
}`;
  await withScript(src, async ({ tctx }) => {
    await tctx.waitForLog(
      "command victim.run exists already; a sandboxed script may declare only new commands",
    );
    assert.equal(await tctx.command("victim.run"), "original");
    assert.equal(await tctx.command("s.own"), "own");
  }, {
    before: ({ tctx }) => tctx.master.commands.add("victim.run", () => "original"),
  });
});

Deno.test("sandbox: secrets (proxyauth, upstream_auth) are never sent to a script", async () => {
  const src = `
import { ctx } from "mitmdeno";
export function running() {
  const o = ctx.options as unknown as Record<string, unknown>;
  ctx.log.info("seen: " + JSON.stringify([o.proxyauth, o.upstream_auth, ctx.options.has("proxyauth"), o.script_timeout]));
}`;
  await withScript(src, async ({ tctx }) => {
    await tctx.master.addons.trigger("running");
    const e = await tctx.waitForLog("seen: ");
    assert.equal(e.msg, "seen: [null,null,false,5]");
    await tctx.options.update({ proxyauth: "bob:hunter2" });
    await tctx.master.addons.trigger("running");
    await sleep(200);
    assert.ok(!tctx.hasLog("hunter2"));
  }, {
    before: async ({ tctx }) => {
      const { ProxyAuth } = await import("../../../../addons/proxyauth.ts");
      const { UpstreamAuth } = await import("../../../../addons/upstream_auth.ts");
      await tctx.master.addons.add(new ProxyAuth(), new UpstreamAuth());
      await tctx.options.update({ proxyauth: "alice:s3cr3t", upstream_auth: "u:p" });
    },
  });
});

Deno.test("sandbox: imports outside the script's folder fail to load, naming the import", async () => {
  await withScript(
    `import { stolen } from "$OUTSIDE/evil.ts";\nexport const x = stolen;\n`,
    async ({ tctx, outside }) => {
      const e = await tctx.waitForLog("is outside the script's folder", { level: "error" });
      assert.match(e.msg, new RegExp(`import of ${outside}/evil\\.ts from .*/s\\.ts is outside`));
    },
  );
  // through a symlink inside the folder
  await withScript(
    `import secret from "./link.txt" with { type: "text" };\nexport const x = secret;\n`,
    async ({ tctx, dir, outside }) => {
      await Deno.symlink(`${outside}/secret.txt`, `${dir}/link.txt`);
      await tctx.options.update({ scripts: [] });
      await tctx.options.update({ scripts: [`${dir}/s.ts`] });
      const e = await tctx.waitForLog(`(a link to ${outside}/secret.txt)`, { level: "error" });
      assert.match(e.msg, /is outside the script's folder/);
    },
  );
  // an import the scanner cannot see is still refused, by Deno's own permission check
  await withScript(
    `import { ctx } from "mitmdeno";
const spec = ["$OUTSIDE", "evil.ts"].join("/");
export async function running() {
  try { await import(spec); ctx.log.info("LOADED"); } catch (e) { ctx.log.info("refused: " + (e as Error).message); }
}`,
    async ({ tctx }) => {
      await tctx.master.addons.trigger("running");
      const e = await tctx.waitForLog("refused: ");
      assert.match(e.msg, /Requires read access to ".*evil\.ts"/);
      assert.ok(!tctx.hasLog("LOADED"));
    },
  );
  // with a read grant it loads
  await withScript(
    `import { ctx } from "mitmdeno";\nimport { stolen } from "$OUTSIDE/evil.ts";\nexport function running() { ctx.log.info(stolen); }\n`,
    async ({ tctx }) => {
      await tctx.master.addons.trigger("running");
      await tctx.waitForLog("imported from outside");
    },
    { before: ({ tctx, outside }) => tctx.options.update({ script_allow: [`read=${outside}`] }) },
  );
});

Deno.test("sandbox: log lines cannot carry terminal escapes or forge lines; console goes to the log", async () => {
  const src = `
import { ctx } from "mitmdeno";
export function running() {
  ctx.log.info("one\\n[12:00:00] FORGED \\u001b[31mred\\r\\u202eevil");
  console.log("from console", { a: 1 });
  Deno.stdout.writeSync(new TextEncoder().encode("raw \\u001b[2J stdout\\n"));
}`;
  await withScript(src, async ({ tctx }) => {
    await tctx.master.addons.trigger("running");
    const e = await tctx.waitForLog("FORGED");
    assert.equal(e.msg, "one\\n[12:00:00] FORGED \\x1b[31mred\\r\\u202eevil");
    await tctx.waitForLog("from console { a: 1 }");
    const raw = await tctx.waitForLog("stdout");
    assert.equal(raw.msg, "raw \\x1b[2J stdout");
    // deno-lint-ignore no-control-regex
    assert.ok(tctx.logs.every((l) => !/[\u0000-\u0008\u000a-\u001f]/.test(l.msg)));
  });
});

Deno.test("sandbox: an endless loop in load() times out, is logged, and really stops", async () => {
  const src =
    `import { ctx } from "mitmdeno";\nexport function load() { ctx.log.info("looping"); for (;;) { /* spin */ } }\n`;
  await withScript(src, async ({ tctx }) => {
    const e = await tctx.waitForLog("the load hook took longer than 1s", { level: "error", timeoutMs: 5000 });
    assert.match(e.msg, /s\.ts/);
    await sleep(200);
    assert.deepEqual(await busyThreads(1000), [], "no thread keeps spinning");
  }, { sets: ["script_timeout=1"] });
});

Deno.test("sandbox: a busy loop in a timer (outside any hook) is stopped and the script restarted", async () => {
  const src = `
import { ctx } from "mitmdeno";
let n = 0;
export function running() { ctx.log.info("running"); setTimeout(() => { for (;;) { /* spin */ } }, 50); }
export function request(f: any) { f.request.headers.set("n", String(++n)); }`;
  await withScript(src, async ({ tctx, loader }) => {
    const first = loader.addons[0].host;
    await tctx.master.addons.trigger("running");
    const e = await tctx.waitForLog("busy for more than 1s", { level: "error", timeoutMs: 15_000 });
    assert.match(e.msg, /restarting the script/);
    // the restarted instance serves flows (bounds generous for loaded machines)
    const deadline = Date.now() + 20_000;
    while (loader.addons[0].host === first || !loader.addons[0].host) {
      assert.ok(Date.now() < deadline, "restarted");
      await sleep(50);
    }
    const f = tflow();
    await tctx.master.addons.handleLifecycle("request", f);
    assert.equal(f.request.headers.get("n"), "1");
  }, { sets: ["script_timeout=1"] });
});

Deno.test("sandbox: a script cannot start workers (they would have no heap limit)", async () => {
  const src = `
import { ctx } from "mitmdeno";
import { Worker as NodeWorker } from "node:worker_threads";
export function running() {
  for (const [name, make] of [
    ["web", () => new Worker("data:text/javascript,1", { type: "module" })],
    ["node", () => new NodeWorker(new URL("data:text/javascript,1"))],
  ] as const) {
    try { make(); ctx.log.info(name + " STARTED"); } catch (e) { ctx.log.info(name + " refused: " + (e as Error).message); }
  }
  try { Object.setPrototypeOf(NodeWorker, Object); ctx.log.info("UNDONE"); } catch { ctx.log.info("frozen"); }
}`;
  await withScript(src, async ({ tctx }) => {
    await tctx.master.addons.trigger("running");
    await tctx.waitForLog("web refused: starting a worker is not available to sandboxed scripts");
    await tctx.waitForLog("node refused: starting a worker is not available to sandboxed scripts");
    await tctx.waitForLog("frozen");
    assert.ok(!tctx.hasLog("STARTED") && !tctx.hasLog("UNDONE"));
  });
});

Deno.test("sandbox: a script handling DNS or UDP events is told they never fire (no such mode yet)", async () => {
  const src = `
export function dns_request(_f: unknown) {}
export function udp_message(_f: unknown) {}
export function request(f: any) { f.request.headers.set("seen", "1"); }`;
  await withScript(src, async ({ tctx }) => {
    const w = await tctx.waitForLog("these hooks never fire", { level: "warn", timeoutMs: 15_000 });
    assert.match(w.msg, /no DNS or UDP mode yet: these hooks never fire: dns_request, udp_message$/);
    const f = tflow();
    await tctx.master.addons.handleLifecycle("request", f);
    assert.equal(f.request.headers.get("seen"), "1");
  });
});
