import assert from "node:assert/strict";
import { context, Request, type TestContext, tflow } from "../../../../testing.ts";
import { ScriptLoader } from "../../../../lib/addons/script/loader.ts";
import type { Script } from "../../../../lib/addons/script/script.ts";

async function withScript(
  source: string,
  fn: (tctx: TestContext, loader: ScriptLoader, path: string) => void | Promise<void>,
  sets: string[] = [],
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-loader-" });
  const path = `${dir}/s.ts`;
  await Deno.writeTextFile(path, source);
  const tctx = await context();
  const loader = new ScriptLoader(tctx.master, { watch: false });
  try {
    await tctx.master.addons.add(loader);
    if (sets.length) await tctx.options.set(sets);
    await tctx.options.update({ scripts: [path] });
    await fn(tctx, loader, path);
  } finally {
    await tctx.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loader: script options, deferred --set, configure with changed names, commands", async () => {
  const src = `
import { ctx } from "mitmdeno";
import type { Loader } from "mitmdeno";
export function load(loader: Loader) {
  loader.addOption("greeting", "str", "hi", "a greeting");
  loader.addCommand("s.greet", (who: string) => ctx.options.greeting + " " + who);
}
export function configure(updated: Set<string>) {
  if (updated.has("greeting")) ctx.log.info("greeting is " + ctx.options.greeting);
}`;
  await withScript(src, async (tctx) => {
    assert.equal(tctx.options.get("greeting"), "hello", "the deferred --set was applied on load");
    await tctx.waitForLog("greeting is hello");
    tctx.clearLogs();
    await tctx.options.update({ greeting: "salut" });
    await tctx.waitForLog("greeting is salut");
    assert.equal(await tctx.command("s.greet", "bob"), "salut bob");
    // an argument that cannot cross fails that call only: later messages are not held up
    await assert.rejects(tctx.command("s.greet", () => "x"), /clone/i);
    assert.equal(await tctx.command("s.greet", "eve"), "salut eve");
  }, ["greeting=hello"]);
});

Deno.test("loader: only the hooks the script defines are exposed", async () => {
  await withScript(
    `export function response(f: any) { f.response.headers.set("a", "b"); }`,
    (tctx, loader) => {
      const s = loader.addons[0] as Script & Record<string, unknown>;
      assert.equal(typeof s.response, "function");
      assert.equal(s.request, undefined);
      assert.equal(s.requestheaders, undefined);
      assert.ok(!tctx.master.addons.has("request"));
    },
  );
});

Deno.test("loader: requestheaders sees no body; request does", async () => {
  const src = `
import { ctx } from "mitmdeno";
export function requestheaders(f: any) { ctx.log.info("rh " + f.request.rawContent); }
export function request(f: any) { ctx.log.info("rq " + f.request.text); }`;
  await withScript(src, async (tctx) => {
    const f = tflow({ req: Request.make("POST", "http://x/", "body!") });
    await tctx.master.addons.handleLifecycle("requestheaders", f);
    await tctx.master.addons.handleLifecycle("request", f);
    await tctx.waitForLog("rh null");
    await tctx.waitForLog("rq body!");
  });
});

Deno.test("loader: a hook that throws is logged with file:line and the flow is unchanged", async () => {
  await withScript(
    `export function request(f: any) {\n  f.request.path = "/x";\n  throw new Error("kaput");\n}`,
    async (tctx) => {
      const f = tflow();
      const before = f.request.path;
      await tctx.master.addons.handleLifecycle("request", f);
      const e = await tctx.waitForLog("kaput", { level: "error" });
      assert.match(e.msg, /s\.ts:3:\d+/);
      assert.equal(f.request.path, before, "a hook that throws leaves the flow unchanged");
    },
  );
});

Deno.test("loader: hook timeout terminates and restarts the worker", async () => {
  const src = `
let n = 0;
export function request(f: any) {
  n++;
  if (f.request.path === "/spin") { const t = Date.now(); while (Date.now() - t < 20000) {} }
  f.request.headers.set("n", String(n));
}`;
  await withScript(src, async (tctx, loader) => {
    const s = loader.addons[0];
    const first = s.host;
    const spin = tflow({ req: Request.make("GET", "http://x/spin") });
    const t0 = performance.now();
    await tctx.master.addons.handleLifecycle("request", spin);
    assert.ok(performance.now() - t0 < 3000);
    await tctx.waitForLog("took longer than 1s", { level: "error" });
    const f = tflow();
    await tctx.master.addons.handleLifecycle("request", f);
    assert.equal(f.request.headers.get("n"), "1", `a fresh instance; logs: ${JSON.stringify(tctx.logs)}`);
    assert.notEqual(s.host, first);
  }, ["script_timeout=1"]);
});

Deno.test("loader: duplicate and missing scripts are OptionsErrors", async () => {
  await withScript(`export const x = 1;`, async (tctx, _loader, path) => {
    await assert.rejects(tctx.options.update({ scripts: [path, path] }), /Duplicate script/);
    await assert.rejects(tctx.options.update({ scripts: ["/nope/x.ts"] }), /No such script: \/nope\/x\.ts/);
    assert.deepEqual(tctx.options.get("scripts"), [path], "rolled back");
  });
});
