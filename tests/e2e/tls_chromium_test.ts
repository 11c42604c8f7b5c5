/**
 * Real headless Chromium (Debian `chromium`, driven by playwright-core) loads an HTTPS page through
 * the proxy, trusting our CA by its SPKI hash; a response hook's change is visible in the page.
 */
import assert from "node:assert/strict";
import { CHROMIUM_ARGS } from "./web_helpers.ts";
import { startInProcess } from "./helpers.ts";
import { startHttpsOrigin } from "./tls_helpers.ts";
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
  name: "tls: headless Chromium through the proxy sees a hook's change on an HTTPS page",
  ignore: !haveChromium,
  // playwright keeps a few handles of its own past close()
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { chromium } = await import("npm:playwright-core@1.65.1");
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-chromium-" });
    const origin = await startHttpsOrigin(dir);
    const seen: string[] = [];
    const addon = {
      name: "rewrite",
      response(f: HTTPFlow) {
        seen.push(f.request.prettyUrl);
        if (f.response?.headers.get("content-type")?.startsWith("text/html")) {
          f.response.text = (f.response.text ?? "").replace("hello from the origin", "changed by mitmdeno");
        }
      },
    };
    const tlsconfig = new TlsConfig();
    const proxy = await startInProcess([tlsconfig, addon], [
      `confdir=${dir}/conf`,
      `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
    ]);
    // a fresh profile: playwright wants it as launchPersistentContext's userDataDir, not a flag
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
      const resp = await page.goto(`https://localhost:${origin.port}/page`, { timeout: 15000 });
      assert.equal(resp?.status(), 200);
      assert.equal(await page.textContent("#msg"), "changed by mitmdeno");
      assert.ok(seen.includes(`https://localhost:${origin.port}/page`), seen.join(", "));
      const sec = await resp!.securityDetails();
      assert.equal(sec?.issuer, "mitmdeno");
    } finally {
      await browser.close();
      await proxy.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
