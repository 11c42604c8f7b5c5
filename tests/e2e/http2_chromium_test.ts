/**
 * Real headless Chromium loads a page with 30 subresources over HTTP/2 through the proxy (HTTPS, an
 * h2-only origin): the page and every resource arrive over h2 (`nextHopProtocol`), every one a flow.
 */
import assert from "node:assert/strict";
import { CHROMIUM_ARGS } from "./web_helpers.ts";
import { startInProcess } from "./helpers.ts";
import { startH2Origin } from "./h2_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import type { HTTPFlow } from "../../lib/flow/flow.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "http2: headless Chromium loads a page with 30 subresources over h2 through the proxy",
  ignore: !haveChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // deno-lint-ignore no-import-prefix
    const { chromium } = await import("npm:playwright-core@1.65.1");
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-chromium-h2-" });
    const origin = await startH2Origin(dir);
    const flows: HTTPFlow[] = [];
    const tlsconfig = new TlsConfig();
    const tunnelsTo: string[] = [];
    const proxy = await startInProcess([tlsconfig, {
      response: (f: HTTPFlow) => void flows.push(f),
      http_connect: (f: HTTPFlow) => void tunnelsTo.push(`${f.request.host}:${f.request.port}`),
    }], [
      `confdir=${dir}/conf`,
      `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
    ]);
    const browser = await chromium.launchPersistentContext(`${dir}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        ...CHROMIUM_ARGS,
        `--proxy-server=http://127.0.0.1:${proxy.port}`,
        "--proxy-bypass-list=<-loopback>",
        `--ignore-certificate-errors-spki-list=${tlsconfig.ca!.spkiSha256Base64}`,
      ],
    });
    try {
      const page = await browser.newPage();
      const resp = await page.goto(`https://localhost:${origin.port}/page30`, {
        timeout: 20000,
        waitUntil: "load",
      });
      assert.equal(resp?.status(), 200);
      // evaluated in the page (a string: the test is type-checked without the DOM library)
      // (Chromium sometimes also fetches /favicon.ico; it is not one of the page's resources)
      const entries = (await page.evaluate(`[
        ...performance.getEntriesByType("navigation"),
        ...performance.getEntriesByType("resource"),
      ].map((e) => [e.name, e.nextHopProtocol])`) as [string, string][])
        .filter(([name]) => !name.endsWith("/favicon.ico"));
      const complete = await page.evaluate(
        `[...document.images].filter((i) => i.complete && i.naturalWidth === 8).length`,
      ) as number;
      assert.equal(entries.length, 31, JSON.stringify(entries));
      for (const [name, proto] of entries) assert.equal(proto, "h2", `${name} over ${proto}`);
      assert.equal(complete, 30);
      const h2flows = flows.filter((f) =>
        f.request.httpVersion === "HTTP/2.0" && f.response?.statusCode === 200
      );
      assert.ok(h2flows.length >= 31, `${h2flows.length} flows`);
      // multiplexed: one upstream h2 connection per tunnel (streams that ask while it is in its TLS handshake
      // wait for it instead of opening more); Chromium itself sometimes opens a second, speculative tunnel
      // (it also tunnels its own background requests through the proxy: only the origin's count)
      const tunnels = tunnelsTo.filter((t) => t === `localhost:${origin.port}`).length;
      assert.ok(tunnels >= 1 && tunnels <= 2, `${tunnels} CONNECT tunnels to the origin: ${tunnelsTo}`);
      assert.ok(origin.sessions <= tunnels, `${origin.sessions} upstream connections for ${tunnels} tunnels`);
    } finally {
      await browser.close();
      await proxy.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
