/**
 * Helpers for the web UI tests: start `mitmdeno web` from source (proxy and UI on ephemeral ports),
 * an origin that records what it received, and headless Chromium on the UI.
 */
import { startProxy } from "./helpers.ts";
import type { ProxyProcess } from "./helpers.ts";

export const CHROMIUM = "/usr/bin/chromium";

/** Headless Chromium flags for this machine (no sandbox as root; no background connections: the network is closed). */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
export const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

/** A running `mitmdeno web`. */
export interface WebProcess extends ProxyProcess {
  /** The URL printed at start, with the token. */
  webUrl: string;
  /** "http://127.0.0.1:PORT" of the UI. */
  webBase: string;
  token: string;
}

/** Start `mitmdeno web` with `args` (confdir and a store file are up to the caller). */
export async function startWeb(args: string[] = []): Promise<WebProcess> {
  const p = await startProxy(["web", "--set", "web_port=0", "--set", "web_open_browser=false", ...args]);
  const line = await p.waitFor(/Web server listening at (http:\/\/\S+)/);
  const webUrl = line.replace("Web server listening at ", "");
  const u = new URL(webUrl);
  return { ...p, webUrl, webBase: u.origin, token: u.searchParams.get("token") ?? "" };
}

/** Launch headless Chromium (not through the proxy: it only looks at the UI). */
export async function launchChromium(profileDir: string) {
  const { chromium } = await import("npm:playwright-core@1.65.1");
  return await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    args: [
      ...CHROMIUM_ARGS,
    ],
  });
}
