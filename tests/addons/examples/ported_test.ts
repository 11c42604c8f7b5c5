/**
 * The ports of mitmproxy's examples/addons (one test each): run sandboxed as `-s` runs them where they need
 * nothing else, in-process (the test kit's `tctx.script`) where a command takes flows or a file is written.
 */
import assert from "node:assert/strict";
import { context, sandboxed, type TestContext, tflow, tresp } from "../../../testing.ts";
import { readFlowsToArray } from "../../../mod.ts";
import { example } from "./_sandbox.ts";

/** The example running sandboxed (as `-s "script args"` runs it), loaded without errors. */
async function loaded(
  script: string,
  opts: { set?: string[]; allow?: string[]; args?: string } = {},
): Promise<TestContext> {
  const tctx = await sandboxed(`${example(script)}${opts.args ? ` ${opts.args}` : ""}`, opts);
  assert.ok(tctx.hasLog("Loading script"));
  assert.ok(!tctx.hasLog("error in script"), tctx.logs.map((e) => e.msg).join("\n"));
  return tctx;
}

Deno.test("anatomy2.ts: module-level request() adds a header", async () => {
  await using tctx = await loaded("anatomy2.ts");
  const f = tflow();
  await tctx.hook("request", f);
  assert.equal(f.request.headers.get("myheader"), "value");
});

Deno.test("commands_simple.ts: myaddon.inc counts and logs", async () => {
  await using tctx = await loaded("commands_simple.ts");
  await tctx.master.commands.call("myaddon.inc");
  await tctx.master.commands.call("myaddon.inc");
  const e = await tctx.waitForLog("num = 2");
  assert.equal(e.source, "commands_simple.ts");
});

Deno.test("commands_flows.ts: myaddon.addheader changes the given flows", async () => {
  await using tctx = await context();
  await tctx.script(example("commands_flows.ts"));
  const flows = [tflow(), tflow()];
  await tctx.command("myaddon.addheader", flows);
  for (const f of flows) assert.equal(f.request.headers.get("myheader"), "value");
  assert.ok(tctx.hasLog("done", "alert"));
});

Deno.test("commands_paths.ts: myaddon.histogram writes flows per host", async () => {
  await using tctx = await context();
  await tctx.script(example("commands_paths.ts"));
  const f = (host: string) => {
    const x = tflow();
    x.request.host = host;
    return x;
  };
  const out = await Deno.makeTempFile();
  try {
    await tctx.command("myaddon.histogram", [f("b.com"), f("a.com"), f("b.com")], out);
    assert.equal(await Deno.readTextFile(out), "1: a.com\n2: b.com\n");
  } finally {
    await Deno.remove(out);
  }
});

Deno.test("filter_flows.ts: logs flows that match the flowfilter option", async () => {
  await using tctx = await loaded("filter_flows.ts", { set: ["flowfilter=~s & ~c 404"] });
  const hit = tflow({ resp: tresp({ statusCode: 404 }) });
  await tctx.hook("response", tflow({ resp: true }));
  await tctx.hook("response", hit);
  await tctx.waitForLog("Flow matches filter:");
  const lines = tctx.logs.filter((e) => e.msg.startsWith("<HTTPFlow"));
  assert.equal(lines.length, 1, "only the 404 matches");
  assert.match(lines[0].msg, /Response\(404/);
  await assert.rejects(() => tctx.options.update({ flowfilter: "~bogus" }), /flowfilter: /);
  assert.equal(tctx.options.get("flowfilter"), "~s & ~c 404");
});

Deno.test("http_modify_form.ts: adds to an existing form (live view), or sets one", async () => {
  await using tctx = await loaded("http_modify_form.ts");
  const withForm = tflow();
  withForm.request.method = "POST";
  withForm.request.urlencodedForm = [["a", "1"]];
  await tctx.hook("request", withForm);
  assert.equal(withForm.request.text, "a=1&mitmproxy=rocks");
  const without = tflow();
  without.request.content = new Uint8Array();
  await tctx.hook("request", without);
  assert.equal(without.request.text, "foo=bar");
  assert.equal(without.request.headers.get("content-type"), "application/x-www-form-urlencoded");
});

Deno.test("http_modify_query_string.ts: adds a query parameter", async () => {
  await using tctx = await loaded("http_modify_query_string.ts");
  const f = tflow();
  f.request.path = "/p?x=1";
  await tctx.hook("request", f);
  assert.equal(f.request.path, "/p?x=1&mitmproxy=rocks");
});

Deno.test("http_redirect_requests.ts: example.org goes to mitmproxy.org", async () => {
  await using tctx = await loaded("http_redirect_requests.ts");
  const f = tflow();
  f.request.host = "example.org";
  f.request.headers.delete("host");
  await tctx.hook("request", f);
  assert.equal(f.request.host, "mitmproxy.org");
  const other = tflow();
  await tctx.hook("request", other);
  assert.equal(other.request.host, "address");
});

Deno.test("http_reply_from_proxy.ts: answers http://example.com/path itself", async () => {
  await using tctx = await loaded("http_reply_from_proxy.ts");
  const f = tflow();
  f.request.url = "http://example.com/path";
  await tctx.hook("request", f);
  assert.equal(f.response?.statusCode, 200);
  assert.equal(f.response?.text, "Hello World");
  assert.equal(f.response?.headers.get("content-type"), "text/html");
});

Deno.test("http_stream_simple.ts: responses are streamed", async () => {
  await using tctx = await loaded("http_stream_simple.ts");
  const f = tflow({ resp: true });
  await tctx.hook("responseheaders", f);
  assert.equal(f.response!.stream, true);
});

Deno.test("log_events.ts: one line per level, tagged with the script", async () => {
  await using tctx = await loaded("log_events.ts");
  for (
    const [level, text] of [["info", "informative"], ["warn", "a warning"], ["error", "an error"]] as const
  ) {
    const e = await tctx.waitForLog(text, { level });
    assert.equal(e.source, "log_events.ts");
  }
  await tctx.waitForLog("This is an alert", { level: "alert" });
});

Deno.test("options_simple.ts: the count header only with --set addheader=true", async () => {
  await using tctx = await loaded("options_simple.ts");
  const off = tflow({ resp: true });
  await tctx.hook("response", off);
  assert.equal(off.response!.headers.has("count"), false);
  await tctx.options.update({ addheader: true });
  for (const n of ["1", "2"]) {
    const f = tflow({ resp: true });
    await tctx.hook("response", f);
    assert.equal(f.response!.headers.get("count"), n);
  }
});

Deno.test("options_configure.ts: values over 100 are refused by configure", async () => {
  await using tctx = await loaded("options_configure.ts", { set: ["addheader=42"] });
  const f = tflow({ resp: true });
  await tctx.hook("response", f);
  assert.equal(f.response!.headers.get("addheader"), "42");
  await assert.rejects(() => tctx.options.update({ addheader: 101 }), /addheader must be <= 100/);
  assert.equal(tctx.options.get("addheader"), 42, "rolled back");
});

Deno.test("internet_in_mirror.ts: a style before </head>", async () => {
  await using tctx = await loaded("internet_in_mirror.ts");
  const f = tflow({ resp: tresp({ content: "<html><head></head><body>x</body></html>" }) });
  await tctx.hook("response", f);
  assert.equal(
    f.response!.text,
    "<html><head><style>body {transform: scaleX(-1);}</style></head><body>x</body></html>",
  );
});

Deno.test("io_write_flow_file.ts: writes a flow file mitmdeno reads back (only with a write grant)", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/out.mitm`;
  try {
    {
      await using tctx = await loaded("io_write_flow_file.ts", {
        args: out,
        allow: [`io_write_flow_file.ts:write=${out}`],
      });
      for (let i = 0; i < 40; i++) await tctx.hook("response", tflow({ resp: true }));
    }
    const flows = await readFlowsToArray(out);
    assert.ok(flows.length > 0 && flows.length < 40, `about half of 40 written, got ${flows.length}`);
    assert.equal(flows[0].response?.statusCode, 200);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
