/** Server playback: matching options, consumption/reuse, extra handling, refresh, commands, no connection. */
import assert from "node:assert/strict";
import { httpDate, refreshResponse, ServerPlayback } from "../../addons/serverplayback.ts";
import { FlowWriter } from "../../lib/io/flowfile.ts";
import { Request, Response } from "../../lib/http/message.ts";
import { Client, Server } from "../../lib/flow/connection.ts";
import { HTTPFlow } from "../../lib/flow/flow.ts";
import { tflow } from "../lib/io/_tflow.ts";
import { Recorder, testMaster, withTempDir } from "../lib/io/_master.ts";
import { startInProcess, startOrigin } from "../e2e/helpers.ts";

function flow(
  url: string,
  opts: { method?: string; body?: string; headers?: Record<string, string>; status?: number; text?: string } =
    {},
): HTTPFlow {
  const f = new HTTPFlow(
    new Client({ peername: ["127.0.0.1", 1234] }),
    new Server(null),
    Request.make(opts.method ?? "GET", url, opts.body ?? "", opts.headers ?? {}),
    true,
  );
  if (opts.status) f.response = Response.make(opts.status, opts.text ?? "");
  return f;
}

async function sp(sets: string[] = [], flows: HTTPFlow[] = []) {
  const s = new ServerPlayback();
  const { master, logs } = await testMaster([s], sets);
  if (flows.length) await master.commands.call("replay.server", flows);
  return { s, master, logs };
}

Deno.test("serverplayback: responses are served once each, in order; reuse/nopop keep them", async () => {
  const saved = [
    flow("http://a.test/x", { status: 200, text: "one" }),
    flow("http://a.test/x", { status: 201, text: "two" }),
  ];
  const { s, master } = await sp([], saved);
  assert.equal(await master.commands.call("replay.server.count"), 2);
  const a = flow("http://a.test/x");
  s.request(a);
  assert.equal(a.response!.text, "one");
  assert.equal(a.isReplay, "response");
  const b = flow("http://a.test/x");
  s.request(b);
  assert.equal(b.response!.statusCode, 201);
  assert.equal(s.count(), 0);
  const c = flow("http://a.test/x");
  s.request(c);
  assert.equal(c.response, null, "all served: forwarded");

  for (const opt of ["server_replay_reuse=true", "server_replay_nopop=true"]) {
    const r = await sp([opt], saved.slice(0, 1));
    for (let i = 0; i < 3; i++) {
      const f = flow("http://a.test/x");
      r.s.request(f);
      assert.equal(f.response!.text, "one");
    }
    assert.equal(r.s.count(), 1);
    if (opt.includes("nopop")) assert.ok(r.logs.some((l) => l.includes("renamed to server_replay_reuse")));
  }
});

Deno.test("serverplayback: matching options", async () => {
  const check = async (sets: string[], saved: HTTPFlow, req: HTTPFlow, match: boolean) => {
    const { s } = await sp(sets, [saved]);
    s.request(req);
    assert.equal(!!req.response, match, `${sets.join(" ")}: ${saved.request.url} vs ${req.request.url}`);
  };
  const ok = (url: string, o = {}) => flow(url, { status: 200, ...o });
  await check([], ok("http://a.test/x?p=1"), flow("http://a.test/x?p=1"), true);
  await check([], ok("http://a.test/x?p=1"), flow("http://a.test/x?p=2"), false);
  await check([], ok("http://a.test/x"), flow("https://a.test/x"), false);
  await check([], ok("http://a.test/x"), flow("http://a.test/x", { method: "POST" }), false);
  await check(
    ["server_replay_ignore_params=p"],
    ok("http://a.test/x?p=1&q=2"),
    flow("http://a.test/x?p=9&q=2"),
    true,
  );
  await check(
    ["server_replay_ignore_params=p"],
    ok("http://a.test/x?p=1&q=2"),
    flow("http://a.test/x?p=1&q=3"),
    false,
  );
  await check(
    [],
    ok("http://a.test/x", { method: "POST", body: "a" }),
    flow("http://a.test/x", { method: "POST", body: "b" }),
    false,
  );
  await check(
    ["server_replay_ignore_content"],
    ok("http://a.test/x", { method: "POST", body: "a" }),
    flow("http://a.test/x", { method: "POST", body: "b" }),
    true,
  );
  const form = { "content-type": "application/x-www-form-urlencoded" };
  await check(
    ["server_replay_ignore_payload_params=t"],
    ok("http://a.test/x", { method: "POST", body: "a=1&t=100", headers: form }),
    flow("http://a.test/x", { method: "POST", body: "a=1&t=200", headers: form }),
    true,
  );
  await check(
    ["server_replay_ignore_payload_params=t"],
    ok("http://a.test/x", { method: "POST", body: "a=1&t=100", headers: form }),
    flow("http://a.test/x", { method: "POST", body: "a=2&t=100", headers: form }),
    false,
  );
  const mp = { "content-type": "multipart/form-data; boundary=XX" };
  const mpBody = (t: string) =>
    `--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name="t"\r\n\r\n${t}\r\n--XX--\r\n`;
  await check(
    ["server_replay_ignore_payload_params=t"],
    ok("http://a.test/x", { method: "POST", body: mpBody("1"), headers: mp }),
    flow("http://a.test/x", { method: "POST", body: mpBody("2"), headers: mp }),
    true,
  );
  await check([], ok("http://a.test/x"), flow("http://b.test/x"), false);
  await check(["server_replay_ignore_host"], ok("http://a.test/x"), flow("http://b.test/x"), true);
  await check([], ok("http://a.test:81/x"), flow("http://a.test:82/x"), false);
  await check(["server_replay_ignore_port"], ok("http://a.test:81/x"), flow("http://a.test:82/x"), true);
  const h = (v: string) => ({ headers: { "x-k": v } });
  await check([], ok("http://a.test/x", h("1")), flow("http://a.test/x", h("2")), true);
  await check(
    ["server_replay_use_headers=x-k"],
    ok("http://a.test/x", h("1")),
    flow("http://a.test/x", h("2")),
    false,
  );
  await check(
    ["server_replay_use_headers=x-k"],
    ok("http://a.test/x", h("1")),
    flow("http://a.test/x", h("1")),
    true,
  );
  // saved flows without a response are skipped
  await check([], flow("http://a.test/x"), flow("http://a.test/x"), false);
});

Deno.test("serverplayback: server_replay_extra and the deprecated kill_extra", async () => {
  const saved = [flow("http://a.test/x", { status: 200 })];
  for (const code of ["204", "400", "404", "500"]) {
    const { s } = await sp([`server_replay_extra=${code}`], saved);
    const f = flow("http://a.test/other");
    s.request(f);
    assert.equal(f.response!.statusCode, Number(code));
    assert.equal(f.isReplay, "response");
  }
  for (const opt of ["server_replay_extra=kill", "server_replay_kill_extra=true"]) {
    const { s, logs } = await sp([opt], saved);
    const f = flow("http://a.test/other");
    s.request(f);
    assert.ok(f.killed, opt);
    if (opt.includes("kill_extra")) assert.ok(logs.some((l) => l.includes("deprecated")));
  }
  const { s } = await sp([], saved);
  const f = flow("http://a.test/other");
  s.request(f);
  assert.equal(f.response, null);
  assert.equal(f.killed, false);
  const { master } = await sp();
  await assert.rejects(master.options.set(["server_replay_extra=302"]), /server_replay_extra/);
});

Deno.test("serverplayback: refresh shifts dates and cookie expiry", () => {
  const r = Response.make(200, "", {
    date: httpDate(1_000_000_000),
    expires: httpDate(1_000_003_600),
    "last-modified": "not a date",
    "set-cookie": `a=b; Expires=${httpDate(1_000_007_200)}; Path=/`,
  });
  r.timestampStart = 1_000_000_000;
  refreshResponse(r, 1_700_000_000);
  assert.equal(r.headers.get("date"), httpDate(1_700_000_000));
  assert.equal(r.headers.get("expires"), httpDate(1_700_003_600));
  assert.equal(r.headers.get("last-modified"), "not a date");
  assert.equal(r.headers.get("set-cookie"), `a=b; Expires=${httpDate(1_700_007_200)}; Path=/`);
  assert.equal(httpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
});

Deno.test("serverplayback: --server-replay FILE, commands, bad file names the option", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/s.mitm`;
    const w = await FlowWriter.open(path);
    await w.add(tflow({ resp: true }));
    await w.add(tflow({ resp: true }));
    await w.close();
    const { s, master } = await sp([`server_replay=${path}`]);
    assert.equal(s.count(), 2);
    await master.commands.call("replay.server.stop");
    assert.equal(await master.commands.call("replay.server.count"), 0);
    await master.commands.call("replay.server.file", path);
    await master.commands.call("replay.server.add", [tflow({ resp: true })]);
    assert.equal(s.count(), 3);
    await assert.rejects(master.commands.call("replay.server.file", `${dir}/nope`), /cannot open/);
    const r = await sp();
    await assert.rejects(r.master.options.set([`server_replay=${dir}/nope`]), /Option "server_replay"/);
  });
});

Deno.test("serverplayback: through the proxy, answered with no upstream connection (origin stopped)", async () => {
  const origin = startOrigin(() => new globalThis.Response("live"));
  const url = `${origin.url}/replayed?q=1`;
  await origin.close();
  const saved = flow(url, { status: 200, text: "from the file" });
  saved.response!.headers.set("x-saved", "yes");
  const s = new ServerPlayback();
  const rec = new Recorder();
  const proxy = await startInProcess([s, rec]);
  try {
    s.loadFlows([saved]);
    const r = await fetch(url, { client: Deno.createHttpClient({ proxy: { url: proxy.url } }) });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-saved"), "yes");
    assert.equal(await r.text(), "from the file");
    assert.ok(!rec.names.includes("server_connect"), rec.names.join());
    assert.deepEqual(rec.names, ["requestheaders", "request", "responseheaders", "response"]);
    assert.equal(rec.events[3][1].isReplay, "response");
  } finally {
    await proxy.stop();
  }
});
