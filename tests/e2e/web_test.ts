/// <reference lib="dom" />
/**
 * `mitmdeno web` end to end: the real CLI, real traffic from curl to a loopback origin, and headless
 * Chromium driving the UI. Screenshots of the main views go to tests/e2e/artifacts/web/.
 */
import assert from "node:assert/strict";
import { curl } from "./helpers.ts";
import { haveChromium, launchChromium, startWeb, type WebProcess } from "./web_helpers.ts";

const ARTIFACTS = new URL("./artifacts/web/", import.meta.url).pathname;
const PNG = Deno.readFileSync("/usr/share/pixmaps/debian-logo.png");

interface Seen {
  method: string;
  path: string;
  body: string;
  headers: Headers;
}

function startRecordingOrigin() {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const u = new URL(req.url);
    seen.push({
      method: req.method,
      path: u.pathname + u.search,
      body: await req.text(),
      headers: req.headers,
    });
    if (u.pathname.endsWith(".json")) {
      return Response.json({ greeting: "hello", items: [1, 2, { nested: true }], path: u.pathname });
    }
    if (u.pathname.endsWith(".png")) return new Response(PNG, { headers: { "content-type": "image/png" } });
    if (u.pathname.endsWith(".css")) {
      return new Response("body{color:red}h1{margin:0}", { headers: { "content-type": "text/css" } });
    }
    if (u.pathname.startsWith("/missing")) return new Response("not here", { status: 404 });
    return new Response(`<html><body><h1>hello</h1><p>${u.pathname}</p></body></html>`, {
      headers: { "content-type": "text/html" },
    });
  });
  return {
    seen,
    port: server.addr.port,
    url: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

async function traffic(w: WebProcess, origin: { url: string }, paths: string[]): Promise<void> {
  for (const p of paths) {
    const r = await curl(["-x", w.url, `${origin.url}${p}`]);
    assert.equal(r.code, 0, r.stderr);
  }
}

async function waitUntil(what: string, fn: () => Promise<boolean> | boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function bearer(w: WebProcess): Record<string, string> {
  return { authorization: `Bearer ${w.token}` };
}

async function apiFlows(w: WebProcess): Promise<any[]> {
  return await (await fetch(`${w.webBase}/flows`, { headers: bearer(w) })).json();
}

const browserTest = { sanitizeOps: false, sanitizeResources: false, ignore: !haveChromium };

Deno.test("web: every route needs the token or its cookie; wrong Host, cross-site and CSRF are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
  const w = await startWeb(["--set", `confdir=${dir}`]);
  try {
    assert.match(w.webUrl, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}$/);
    for (const path of ["/", "/flows", "/events", "/options", "/static/dist/app.js", "/updates"]) {
      const r = await fetch(`${w.webBase}${path}`);
      await r.body?.cancel();
      assert.equal(r.status, 403, path);
    }
    const wrong = await curl(["-H", "Host: attacker.example:80", `${w.webBase}/flows?token=${w.token}`]);
    assert.equal(wrong.status, 403);
    const bad = await fetch(`${w.webBase}/flows?token=nope`);
    await bad.body?.cancel();
    assert.equal(bad.status, 403);
    // the token gives a cookie; the cookie alone then works for reads
    const ok = await fetch(`${w.webBase}/?token=${w.token}`);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /<div id="app">/);
    const cookies = ok.headers.getSetCookie();
    const auth = cookies.find((c) => c.startsWith("mitmdeno-auth-"))!;
    assert.match(auth, /HttpOnly; SameSite=Strict/);
    const xsrf = cookies.find((c) => c.startsWith("_xsrf="))!.split(";")[0].slice(6);
    const cookie = `${auth.split(";")[0]}; _xsrf=${xsrf}`;
    const read = await fetch(`${w.webBase}/flows`, { headers: { cookie } });
    assert.equal(read.status, 200);
    assert.deepEqual(await read.json(), []);
    // a state-changing request with the cookie needs the X-XSRFToken header
    const csrf = await fetch(`${w.webBase}/clear`, { method: "POST", headers: { cookie } });
    await csrf.body?.cancel();
    assert.equal(csrf.status, 403);
    const withXsrf = await fetch(`${w.webBase}/clear`, {
      method: "POST",
      headers: { cookie, "x-xsrftoken": xsrf },
    });
    await withXsrf.body?.cancel();
    assert.equal(withXsrf.status, 200);
    const crossSite = await fetch(`${w.webBase}/clear`, {
      method: "POST",
      headers: { cookie, "x-xsrftoken": xsrf, "sec-fetch-site": "cross-site" },
    });
    await crossSite.body?.cancel();
    assert.equal(crossSite.status, 403);
    const foreignOrigin = await fetch(`${w.webBase}/flows`, {
      headers: { cookie, origin: "http://evil.example" },
    });
    await foreignOrigin.body?.cancel();
    assert.equal(foreignOrigin.status, 403);
    // tools use the bearer token (no cookie, so no CSRF token needed)
    const tool = await fetch(`${w.webBase}/clear`, { method: "POST", headers: bearer(w) });
    await tool.body?.cancel();
    assert.equal(tool.status, 200);
  } finally {
    await w.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("web: web_password sets the token (plain or bcrypt); a bad hash is refused at start-up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
  const w = await startWeb(["--set", `confdir=${dir}`, "--set", "web_password=s3cret"]);
  try {
    assert.match(w.webUrl, /\/$/); // no token printed
    const r = await fetch(`${w.webBase}/flows`, { headers: { authorization: "Bearer s3cret" } });
    assert.equal(r.status, 200);
    await r.body?.cancel();
  } finally {
    await w.stop();
  }
  // a bcrypt hash (bcryptjs is loaded by the web addon's configure only in this case)
  const { default: bcrypt } = await import("bcryptjs");
  const hashed = await startWeb([
    "--set",
    `confdir=${dir}`,
    "--set",
    `web_password=${bcrypt.hashSync("s3cret", 4)}`,
  ]);
  try {
    assert.match(hashed.webUrl, /\/$/);
    for (const [token, status] of [["s3cret", 200], ["wrong", 403]] as const) {
      const r = await fetch(`${hashed.webBase}/flows`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, status, token);
      await r.body?.cancel();
    }
  } finally {
    await hashed.stop();
  }
  const { runCli } = await import("./helpers.ts");
  const bad = await runCli(["web", "--set", `confdir=${dir}`, "--set", "web_password=$argon2id$v=19$m=1"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /web_password.*bcrypt/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "web (Chromium): flows appear live; search, highlight, sorting, every tab and content view",
  ...browserTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const origin = startRecordingOrigin();
    const w = await startWeb(["--set", `confdir=${dir}`]);
    const browser = await launchChromium(`${dir}/profile`);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(w.webUrl);
      await page.waitForSelector("#flow-count");
      await traffic(w, origin, [
        "/index.html",
        "/data.json?x=1&y=two",
        "/logo.png",
        "/style.css",
        "/missing",
      ]);
      // live: the rows arrive without a reload
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 5, null, {
        timeout: 10000,
      });
      assert.equal(await page.textContent("#flow-count"), "5 flows");
      await page.screenshot({ path: `${ARTIFACTS}list.png` });

      // search filter and its inline error
      await page.fill("#search", "~c 404");
      await page.press("#search", "Enter");
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 1);
      assert.match((await page.textContent(".row"))!, /\/missing/);
      await page.fill("#search", "~c");
      await page.press("#search", "Enter");
      await page.waitForSelector("[data-error=search]");
      assert.match((await page.textContent("[data-error=search]"))!, /Invalid filter expression/);
      await page.fill("#search", "");
      await page.press("#search", "Enter");
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 5);

      // highlight
      await page.fill("#highlight", "~t json");
      await page.press("#highlight", "Enter");
      await page.waitForFunction(() => document.querySelectorAll(".row.hl").length === 1);
      assert.match((await page.textContent(".row.hl"))!, /data\.json/);
      await page.screenshot({ path: `${ARTIFACTS}highlight.png` });

      // sorting by status, descending
      await page.click("[data-sort=status]");
      await page.click("[data-sort=status]");
      await page.waitForFunction(() => /404/.test(document.querySelector(".row")?.textContent ?? ""));
      await page.click("[data-sort=time]");
      await page.waitForFunction(() => /index\.html/.test(document.querySelector(".row")?.textContent ?? ""));

      // keyboard: j/k move the selection, Enter opens
      await page.click("body");
      await page.keyboard.press("j");
      await page.waitForSelector("#detail");
      await page.keyboard.press("j");
      await page.waitForFunction(() =>
        /data\.json/.test(document.querySelector(".row.sel")?.textContent ?? "")
      );
      await page.keyboard.press("?");
      await page.waitForSelector("#help-table");
      await page.screenshot({ path: `${ARTIFACTS}help.png` });
      await page.keyboard.press("Escape");

      // the JSON response: auto picks json, a collapsible tree
      await page.click("[data-tab=response]");
      await page.waitForSelector(".content[data-view=json] .jt");
      assert.match((await page.textContent(".content"))!, /"greeting":"hello"/);
      await page.click(".jt .tog >> nth=1");
      assert.match((await page.textContent(".content"))!, /3 items/);
      await page.screenshot({ path: `${ARTIFACTS}json.png` });
      for (const [view, expect] of [["raw", /\{"greeting"/], ["hex", /7b 22 67 72/]] as const) {
        await page.selectOption("#view-response", view);
        await page.waitForSelector(`.content[data-view=${view}]`);
        assert.match((await page.textContent(".content"))!, expect);
      }
      // the request's query view
      await page.click("[data-tab=request]");
      await page.selectOption("#view-request", "query");
      await page.waitForSelector(".content[data-view=query]");
      assert.match((await page.textContent(".content"))!, /x1ytwo/);
      // connection, timing, comment
      await page.click("[data-tab=connection]");
      assert.match((await page.textContent(".pane"))!, new RegExp(`127\\.0\\.0\\.1:${origin.port}`));
      await page.click("[data-tab=timing]");
      await page.waitForSelector("#timing .waterfall");
      assert.match((await page.textContent("#timing"))!, /Request started.*Response complete/s);
      await page.screenshot({ path: `${ARTIFACTS}timing.png` });
      await page.click("[data-tab=comment]");
      await page.fill("#comment", "checked by the test");
      await page.click("#save-comment");
      await waitUntil(
        "the comment",
        async () => (await apiFlows(w)).some((f) => f.comment === "checked by the test"),
      );

      // the other content views, each on its flow
      const views: [string, string, RegExp][] = [
        ["/index.html", "html", /<h1>/],
        ["/logo.png", "image", /^$/],
        ["/style.css", "css", /body \{\n {2}color:red\n\}/],
      ];
      for (const [path, view, expect] of views) {
        await page.click(`.row:has-text("${path}")`);
        await page.click("[data-tab=response]");
        await page.waitForSelector(`.content[data-view=${view}]`);
        assert.match((await page.textContent(".content"))!, expect);
        if (view === "image") {
          await page.waitForFunction(() =>
            (document.querySelector("img.preview") as HTMLImageElement)?.naturalWidth > 0
          );
          await page.screenshot({ path: `${ARTIFACTS}image.png` });
        }
      }
      // forms: a POST with urlencoded and multipart bodies
      await curl(["-x", w.url, "-d", "user=ann&role=admin", `${origin.url}/form`]);
      await curl(["-x", w.url, "-F", "field=value", "-F", "upload=@/etc/hostname", `${origin.url}/multi`]);
      for (
        const [path, view, expect] of [["/form", "urlencoded", /userannroleadmin/], [
          "/multi",
          "multipart",
          /fieldvalue/,
        ]] as const
      ) {
        await page.waitForSelector(`.row:has-text("${path}")`);
        await page.click(`.row:has-text("${path}")`);
        await page.click("[data-tab=request]");
        await page.waitForSelector(`.content[data-view=${view}]`);
        assert.match((await page.textContent(".content"))!, expect);
      }
      // dark theme
      await page.selectOption("#theme", "dark");
      await page.click(`.row:has-text("/data.json")`);
      await page.click("[data-tab=response]");
      await page.waitForSelector(".content[data-view=json]");
      await page.screenshot({ path: `${ARTIFACTS}dark.png` });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await w.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "web (Chromium): intercept -> edit -> resume; replay an edited request; duplicate, mark, delete, clear",
  ...browserTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const origin = startRecordingOrigin();
    const w = await startWeb(["--set", `confdir=${dir}`]);
    const browser = await launchChromium(`${dir}/profile`);
    try {
      const page = await browser.newPage();
      await page.goto(w.webUrl);
      await page.waitForSelector("#flow-count");
      // intercept requests to /held
      await page.fill("#intercept", "~q & ~u /held");
      await page.press("#intercept", "Enter");
      await waitUntil("intercept option", async () => {
        const o = await (await fetch(`${w.webBase}/options`, { headers: bearer(w) })).json();
        return o.intercept.value === "~q & ~u /held" && o.intercept_active.value === true;
      });
      const pending = curl(["-x", w.url, "-d", "original", `${origin.url}/held`]);
      await page.waitForSelector(`.row:has-text("paused")`);
      assert.equal(origin.seen.length, 0);
      await page.click(`.row:has-text("/held")`);
      await page.screenshot({ path: `${ARTIFACTS}intercepted.png` });
      await page.click("#edit-request");
      await page.fill("#editor-request [name=second]", `${origin.url}/held-edited`);
      await page.fill("#editor-request [name=content]", "changed in the UI");
      await page.screenshot({ path: `${ARTIFACTS}edit.png` });
      await page.click("#save-edit");
      await page.waitForSelector("#resume");
      await page.click("#resume");
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(origin.seen.at(-1)!.path, "/held-edited");
      assert.equal(origin.seen.at(-1)!.body, "changed in the UI");
      // the intercept filter's error is shown inline
      await page.fill("#intercept", "~bogus");
      await page.press("#intercept", "Enter");
      await page.waitForSelector("[data-error=intercept]");
      await page.fill("#intercept", "");
      await page.press("#intercept", "Enter");

      // replay an edited request: the origin gets the edit
      await traffic(w, origin, ["/replay-me"]);
      await page.click(`.row:has-text("/replay-me")`);
      await page.click("#edit-request");
      await page.fill("#editor-request [name=first]", "PUT");
      await page.fill("#editor-request [name=content]", "replayed body");
      await page.click("#save-edit");
      await page.waitForSelector(`.row.sel:has-text("edited")`);
      const before = origin.seen.length;
      await page.click("#replay");
      await waitUntil("the replay", () => origin.seen.length > before);
      assert.equal(origin.seen.at(-1)!.method, "PUT");
      assert.equal(origin.seen.at(-1)!.body, "replayed body");
      await page.waitForSelector(`.row.sel:has-text("replay")`);
      // revert brings the GET back
      await page.click("#revert");
      await waitUntil(
        "revert",
        async () =>
          (await apiFlows(w)).some((f) => f.request.path === "/replay-me" && f.request.method === "GET"),
      );

      // duplicate, mark, delete, clear (buttons and keys)
      const n = (await apiFlows(w)).length;
      await page.click("#duplicate");
      await waitUntil("duplicate", async () => (await apiFlows(w)).length === n + 1);
      await page.click("body");
      await page.keyboard.press("m");
      await waitUntil("mark", async () => (await apiFlows(w)).some((f) => f.marked === "🔴"));
      await page.waitForSelector(".row.sel .mark");
      await page.keyboard.press("d");
      await waitUntil("delete", async () => (await apiFlows(w)).length === n);
      await page.click("#clear");
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 0);
      assert.equal((await apiFlows(w)).length, 0);
    } finally {
      await browser.close();
      await w.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "web (Chromium): export curl (and run it) and HAR; save and open flow files; the options editor",
  ...browserTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const origin = startRecordingOrigin();
    // format 17: what mitmdump 8.x (installed here) reads
    const w = await startWeb(["--set", `confdir=${dir}`, "--set", "flow_format_version=17"]);
    const browser = await launchChromium(`${dir}/profile`);
    try {
      const page = await browser.newPage();
      await page.goto(w.webUrl);
      await traffic(w, origin, ["/one", "/two.json"]);
      await curl(["-x", w.url, "-H", "X-Test: yes", "-d", "a=1", `${origin.url}/post`]);
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 3);
      await page.click(`.row:has-text("/post")`);
      await page.selectOption("#export", "curl");
      await page.waitForSelector("#exported");
      const cmd = (await page.textContent("#exported"))!;
      assert.match(cmd, /^curl /);
      await page.screenshot({ path: `${ARTIFACTS}export.png` });
      const before = origin.seen.length;
      const run = await new Deno.Command("sh", { args: ["-c", cmd + " -s -o /dev/null"] }).output();
      assert.equal(run.code, 0);
      const got = origin.seen[before];
      assert.equal(got.method, "POST");
      assert.equal(got.body, "a=1");
      assert.equal(got.headers.get("x-test"), "yes");
      await page.selectOption("#export", "har");
      await page.waitForFunction(() =>
        /"request"/.test(document.querySelector("#exported")?.textContent ?? "")
      );
      assert.equal(JSON.parse((await page.textContent("#exported"))!).request.method, "POST");

      // save (download) the flows, then the whole HAR
      const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#save")]);
      const saved = `${dir}/saved.mitm`;
      await dl.saveAs(saved);
      const { readFlowsToArray } = await import("../../lib/io/flowfile.ts");
      const flows = await readFlowsToArray(saved);
      assert.deepEqual(flows.map((f) => f.request.path), ["/one", "/two.json", "/post"]);
      const [dh] = await Promise.all([page.waitForEvent("download"), page.click("#save-har")]);
      const harPath = `${dir}/saved.har`;
      await dh.saveAs(harPath);
      const har = JSON.parse(await Deno.readTextFile(harPath));
      assert.equal(har.log.entries.length, 3);
      // mitmdump reads what we saved
      const md = await new Deno.Command("mitmdump", {
        args: ["-n", "-r", saved, "--set", "flow_detail=1"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.match(new TextDecoder().decode(md.stdout), /\/two\.json/);

      // open a flow file: clear, then upload what we saved
      await page.click("#clear");
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 0);
      await page.setInputFiles("#file", saved);
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 3);
      // and a HAR
      await page.setInputFiles("#file", harPath);
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 3);

      // the options editor: a typed, validated change
      await page.click("#options");
      await page.waitForSelector("#options-editor");
      await page.fill("#options-editor input[placeholder='search options']", "anticache");
      await page.click("[data-option=anticache] input[type=checkbox]");
      await waitUntil(
        "anticache",
        async () =>
          (await (await fetch(`${w.webBase}/options`, { headers: bearer(w) })).json()).anticache.value ===
            true,
      );
      await page.fill("#options-editor input[placeholder='search options']", "body_size_limit");
      await page.fill("[data-option=body_size_limit] input", "lots");
      await page.press("[data-option=body_size_limit] input", "Enter");
      await page.waitForSelector("[data-option=body_size_limit] .oerr");
      assert.match((await page.textContent("[data-option=body_size_limit] .oerr"))!, /body_size_limit/);
      await page.fill("#options-editor input[placeholder='search options']", "web_");
      await page.screenshot({ path: `${ARTIFACTS}options.png` });
      await page.keyboard.press("Escape");
      // the event log shows what happened (clearing the flows cleared it too, as in mitmweb)
      await page.click("#events");
      await page.waitForSelector("#eventlog");
      assert.match((await page.textContent("#eventlog"))!, /\[info\] Loaded 3 flows\./);
    } finally {
      await browser.close();
      await w.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "web: a saved session (web_store) reopens after a restart, in the API and the UI",
  ...browserTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
    const store = `${dir}/session.sqlite`;
    const origin = startRecordingOrigin();
    try {
      const w1 = await startWeb(["--set", `confdir=${dir}`, "--set", `web_store=${store}`]);
      try {
        await traffic(w1, origin, ["/kept-1", "/kept-2"]);
        await waitUntil("two flows", async () => (await apiFlows(w1)).length === 2);
        const id = (await apiFlows(w1))[0].id;
        const r = await fetch(`${w1.webBase}/flows/${id}`, {
          method: "PUT",
          headers: { ...bearer(w1), "content-type": "application/json" },
          body: JSON.stringify({ comment: "survives a restart", marked: true }),
        });
        assert.equal(r.status, 200);
        await r.body?.cancel();
      } finally {
        assert.equal(await w1.stop(), 0);
      }
      const w2 = await startWeb(["--set", `confdir=${dir}`, "--set", `web_store=${store}`]);
      const browser = await launchChromium(`${dir}/profile`);
      try {
        await w2.waitFor(/Flow store: .*session\.sqlite \(2 flows\)/);
        const flows = await apiFlows(w2);
        assert.deepEqual(flows.map((f) => f.request.path), ["/kept-1", "/kept-2"]);
        assert.equal(flows[0].comment, "survives a restart");
        const body = await (await fetch(`${w2.webBase}/flows/${flows[1].id}/response/content.data`, {
          headers: bearer(w2),
        })).text();
        assert.match(body, /kept-2/);
        const page = await browser.newPage();
        await page.goto(w2.webUrl);
        await page.waitForFunction(() => document.querySelectorAll(".row").length === 2);
      } finally {
        await browser.close();
        await w2.stop();
      }
    } finally {
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
