/// <reference lib="dom" />
/**
 * `mitmdeno web` end to end, the parts web_test.ts does not cover: the Error tab, the JavaScript and XML
 * views, downloading a body, the httpie and raw exports, the event log's level toggles, and the
 * virtualized list with 100k stored flows (headless Chromium against the real CLI).
 */
import assert from "node:assert/strict";
import { curl } from "./helpers.ts";
import { haveChromium, launchChromium, startWeb } from "./web_helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
import { SqliteStore } from "../../lib/store/sqlite.ts";
import { tflow, tresp } from "../../testing.ts";
import { Request } from "../../lib/http/message.ts";

const ARTIFACTS = new URL("./artifacts/web/", import.meta.url).pathname;
const browserTest = { sanitizeOps: false, sanitizeResources: false, ignore: !haveChromium };

const JS = 'function greet(name){if(name){return "hi "+name}return "nobody"}';
const XML = '<?xml version="1.0"?><feed><item id="1">one</item><item id="2">two</item></feed>';

function startOrigin() {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/app.js") {
      return new Response(JS, { headers: { "content-type": "application/javascript" } });
    }
    if (path === "/feed.xml") return new Response(XML, { headers: { "content-type": "application/xml" } });
    return new Response("plain", { headers: { "content-type": "text/plain" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** A port nothing listens on (bound once, then closed). */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name:
    "web (Chromium): Error tab, JavaScript and XML views, body download, httpie/raw export, event log levels",
  ...browserTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const origin = startOrigin();
    const w = await startWeb(["--set", `confdir=${dir}`]);
    const browser = await launchChromium(`${dir}/profile`);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(w.webUrl);
      await page.waitForSelector("#flow-count");
      for (const p of ["/app.js", "/feed.xml"]) {
        assert.equal((await curl(["-x", w.url, `${origin.url}${p}`])).code, 0);
      }
      const gone = `http://127.0.0.1:${closedPort()}/gone`;
      const failed = await curl(["-x", w.url, gone]);
      assert.equal(failed.status, 502);
      await page.waitForFunction(() => document.querySelectorAll(".row").length === 3);

      // JavaScript, pretty-printed
      await page.click(`.row:has-text("/app.js")`);
      await page.click("[data-tab=response]");
      await page.waitForSelector(".content[data-view=javascript]");
      const js = (await page.textContent(".content"))!;
      assert.match(js, /function greet\(name\)/);
      assert.match(js, /\n\s+return "hi "\+name\n/);
      // the body as a download, byte for byte
      const [dl] = await Promise.all([
        page.waitForEvent("download"),
        page.click(`a[href$="/response/content.data"] button`),
      ]);
      const saved = `${dir}/body`;
      await dl.saveAs(saved);
      assert.equal(await Deno.readTextFile(saved), JS);
      // httpie and raw exports
      await page.selectOption("#export", "httpie");
      await page.waitForFunction(() =>
        /^http GET /.test(document.querySelector("#exported")?.textContent ?? "")
      );
      assert.match((await page.textContent("#exported"))!, new RegExp(`^http GET ${origin.url}/app\\.js`));
      await page.selectOption("#export", "raw");
      await page.waitForFunction(() =>
        /^GET \/app\.js HTTP\/1\.1/.test(document.querySelector("#exported")?.textContent ?? "")
      );
      const raw = (await page.textContent("#exported"))!;
      assert.match(raw, /HTTP\/1\.1 200 OK/);
      assert.ok(raw.includes(JS));

      // XML, indented
      await page.click(`.row:has-text("/feed.xml")`);
      await page.click("[data-tab=response]");
      await page.waitForSelector(".content[data-view=xml]");
      assert.match((await page.textContent(".content"))!, /<feed>\n\s+<item id="1">\n\s+one\n\s+<\/item>/);

      // the failed flow: its Error tab says why
      await page.click(`.row:has-text("/gone")`);
      await page.waitForSelector("[data-tab=error]");
      await page.click("[data-tab=error]");
      await page.waitForSelector(".pane .errtxt");
      assert.match((await page.textContent(".pane .errtxt"))!, /refused|connect/i);
      await page.screenshot({ path: `${ARTIFACTS}error.png` });

      // the event log: debug hidden by default, each level can be switched off
      await page.click("#events");
      await page.waitForSelector("#eventlog .ev-levels");
      assert.equal(await page.isChecked("[data-level=debug]"), false);
      assert.equal(await page.isChecked("[data-level=info]"), true);
      await page.waitForSelector("#eventlog .ev.ev-info");
      assert.match((await page.textContent("#eventlog"))!, /\[info\] Web server listening at/);
      await page.click("[data-level=info]");
      await page.waitForFunction(() => !document.querySelector("#eventlog .ev.ev-info"));
      await page.click("[data-level=info]");
      await page.waitForSelector("#eventlog .ev.ev-info");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await w.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A store of `n` flows, written by the store (~2 s for 100k). */
function makeStore(path: string, n: number): void {
  const store = SqliteStore.open(path, { autoCommit: false });
  for (let i = 0; i < n; i++) {
    const f = tflow({
      req: new Request({ method: "GET", scheme: "http", host: "example.com", port: 80, path: `/item/${i}` }),
      resp: tresp(),
      live: false,
    });
    f.id = `flow-${String(i).padStart(7, "0")}`;
    store.put(f);
    if (i % 10000 === 9999) store.commit();
  }
  store.close();
  const check = SqliteStore.open(path);
  assert.equal(check.count(), n);
  assert.equal(check.get(`flow-${String(n - 1).padStart(7, "0")}`)?.request.path, `/item/${n - 1}`);
  check.close();
}

Deno.test({
  name: "web (Chromium): the virtualized list with 100k flows: first screen, End/Home, a filter, a flow",
  ...browserTest,
  async fn() {
    const N = 100_000;
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const store = `${dir}/big.sqlite`;
    makeStore(store, N);
    const w = await startWeb(["--set", `confdir=${dir}`, "--set", `web_store=${store}`]);
    const browser = await launchChromium(`${dir}/profile`);
    try {
      const page = await browser.newPage();
      const t0 = performance.now();
      await page.goto(w.webUrl);
      await page.waitForFunction(
        (n) =>
          document.querySelector("#flow-count")?.textContent === `${n} flows` &&
          document.querySelectorAll(".list .row").length > 10,
        N,
      );
      console.log(`first screen of ${N} flows: ${(performance.now() - t0).toFixed(0)} ms`);
      // only the rows around the viewport are in the DOM
      const inDom = await page.$$eval(".list .row", (r) => r.length);
      assert.ok(inDom < 200, `${inDom} rows in the DOM`);
      const spacer = await page.$eval(".list > div", (e) => (e as HTMLElement).offsetHeight);
      assert.equal(spacer, N * 24);
      // End: the last flow is selected and drawn; Enter opens it
      await page.click(".list .row >> nth=0");
      await page.keyboard.press("End");
      await page.waitForSelector(`.row.sel:has-text("/item/${N - 1}")`);
      await page.screenshot({ path: `${ARTIFACTS}list-100k.png` });
      await page.keyboard.press("Enter");
      await page.waitForSelector("#detail");
      await page.click("[data-tab=request]");
      assert.match((await page.textContent("#detail"))!, new RegExp(`/item/${N - 1}`));
      await page.keyboard.press("Escape");
      await page.keyboard.press("Home");
      await page.waitForSelector(`.row.sel:has-text("/item/0")`);
      // a filter over the whole store
      await page.fill("#search", "~u /item/4242$");
      await page.press("#search", "Enter");
      await page.waitForFunction(() => document.querySelector("#flow-count")?.textContent === "1 flows");
      assert.match((await page.textContent(".list .row"))!, /\/item\/4242/);
    } finally {
      await browser.close();
      await w.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "web (Chromium): the Connection tab of an HTTPS flow shows TLS and the server's certificate",
  ...browserTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-" });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const origin = await startHttpsOrigin(dir);
    const confdir = `${dir}/conf`;
    const w = await startWeb([
      "--set",
      `confdir=${confdir}`,
      "--set",
      `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
    ]);
    const browser = await launchChromium(`${dir}/profile`);
    try {
      const r = await curl([
        "--cacert",
        `${confdir}/mitmdeno-ca-cert.pem`,
        "-x",
        w.url,
        `https://localhost:${origin.port}/secure`,
      ]);
      assert.equal(r.status, 200, r.stderr);
      const page = await browser.newPage();
      await page.goto(w.webUrl);
      await page.click(`.row:has-text("/secure")`);
      await page.click("[data-tab=connection]");
      await page.waitForSelector("#server-cert");
      const text = (await page.textContent(".pane"))!;
      assert.match(text, /TLS versionTLSv1\.[23]/);
      assert.match(text, /SNIlocalhost/);
      const cert = (await page.textContent("#server-cert"))!;
      assert.match(cert, /SubjectCN=localhost/);
      assert.match(cert, /O=Origin Org/);
      assert.match(cert, /Alternative nameslocalhost, 127\.0\.0\.1/);
      assert.match(cert, /SHA-256[0-9a-f]{64}/);
      // the API has mitmweb's cert JSON
      const flows =
        await (await fetch(`${w.webBase}/flows`, { headers: { authorization: `Bearer ${w.token}` } }))
          .json();
      const c = flows[0].server_conn.cert;
      assert.deepEqual(c.altnames, ["localhost", "127.0.0.1"]);
      assert.equal(c.keyinfo.length, 2);
      assert.ok(c.notafter > c.notbefore);
      await page.$eval("#server-cert", (e) => e.scrollIntoView());
      await page.screenshot({ path: `${ARTIFACTS}connection.png` });
    } finally {
      await browser.close();
      await w.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
