/**
 * The web UI and flow store benchmark (issue 16), side by side with mitmweb/mitmdump 8.1:
 * `deno task bench:web [options]` (take the exclusive CPU lock: `flock -x /work/.cpu.lock ...`).
 *
 * Steps (each can be picked with --only):
 * - load:       a 43k-flow file (1 KiB bodies, generated) loaded with `-r` into the UI; seconds from the
 *               tool's start until headless Chromium on the UI holds every flow, and the RSS then.
 * - filter:     mitmdeno web on a store of 100k flows: filter expressions set over the UI's WebSocket,
 *               time until the view's total and first rows are back (what the UI waits for).
 * - screen:     the same store: Chromium opens the UI; time until the first screen of rows is drawn; then
 *               a jump to the end of the list.
 * - rss:        mitmdeno web on a store of 1M flows, with the UI open, a filter and a scroll: peak RSS.
 * - throughput: wrk through mitmdeno dump, dump -w, web (recording into the store), web with the UI open,
 *               and mitmdump, mitmdump -w, mitmweb with its UI open.
 * - kill:       keep-alive clients through `mitmdeno web` (store) and `mitmdeno -w`, kill -9 mid-load:
 *               responses the clients got whose flow is not in the store / file afterwards.
 *
 * @module
 */
import { parseArgs } from "node:util";
import net from "node:net";
import { SqliteStore } from "../lib/store/sqlite.ts";
import {
  installSignalCleanup,
  type ManagedProcess,
  spawnManaged,
  stopAll,
  waitForPort,
} from "./bench/process.ts";
import { freePort } from "./bench/process.ts";
import { RssSampler, treeRssKiB } from "./bench/rss.ts";
import { treeCpuSeconds } from "./bench/cpu.ts";
import { startOrigin } from "./bench/runner.ts";
import { resolveDeno, viaProxy } from "./bench/scenarios.ts";
import { runWrk, totalErrors, type WrkLoad } from "./bench/wrk.ts";
import { RUNTIME_FLAGS } from "./runtime_flags.ts";
import { ensureFlowFile } from "./bench/flowgen.ts";
import { readFlows } from "../lib/io/flowfile.ts";

const USAGE = `Usage: deno task bench:web [options]

  --only a,b          steps: load, filter, screen, rss, throughput, kill (default: all)
  --load-flows N      flows in the file loaded into the UI (default 43000)
  --filter-flows N    flows in the store for the filter and first-screen steps (default 100000)
  --rss-flows N       flows in the store for the RSS step (default 1000000)
  --duration S        wrk seconds per throughput scenario (default 10)
  --warmup S          wrk warm-up seconds (default 2)
  --connections N     wrk connections (default 16)
  --no-mitmproxy      skip the mitmweb/mitmdump runs
  --scenarios a,b     throughput: only these of mitmdeno's scenarios: dump, w, store, ui (default: all)
  --baseline DIR      throughput: also run the mitmdeno scenarios from another checkout (e.g. a
                      \`git archive\` of the commit to compare with), interleaved with this one's, and
                      report its ratios too (A/B in one run)
  --data DIR          where generated flow files and stores are kept between runs
                      (default /tmp/mitmdeno-bench-web)
  --json FILE         also write the results as JSON
  -h, --help          this help
`;

const HOST = "127.0.0.1";
const TOKEN = "benchtoken0123456789";
const REPO = new URL("..", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";

/** A line of the report. */
interface Line {
  step: string;
  what: string;
  value: number;
  unit: string;
  target?: string;
  ok?: boolean;
}
const lines: Line[] = [];
function report(l: Line): void {
  lines.push(l);
  const t = l.target ? `  (target ${l.target}: ${l.ok ? "OK" : "MISS"})` : "";
  console.error(`[${l.step}] ${l.what}: ${fmt(l.value)} ${l.unit}${t}`);
}
function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}
const mib = (kib: number | undefined) => (kib ?? NaN) / 1024;

// --- processes ----------------------------------------------------------------------------------------

interface Running {
  proc: ManagedProcess;
  proxyPort: number;
  webPort: number;
  /** The UI's URL (with the token for mitmdeno). */
  ui: string;
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "mitmdeno-bench-web-" });
}

/** `mitmdeno web` from this checkout (or `repo`). */
async function mitmdenoWeb(name: string, args: string[], confdir: string, repo = REPO): Promise<Running> {
  const proxyPort = freePort(HOST);
  const webPort = freePort(HOST);
  const cmd = resolveDeno([
    "deno",
    "run",
    ...RUNTIME_FLAGS,
    "--allow-all",
    "main.ts",
    "web",
    "--listen-host",
    HOST,
    "--listen-port",
    String(proxyPort),
    "--set",
    `web_host=${HOST}`,
    "--set",
    `web_port=${webPort}`,
    "--set",
    "web_open_browser=false",
    "--set",
    `web_password=${TOKEN}`,
    "--set",
    `confdir=${confdir}`,
    ...args,
  ]);
  const proc = spawnManaged(cmd, { name, cwd: repo });
  await waitForPort(HOST, webPort, 120_000, proc);
  await waitForPort(HOST, proxyPort, 120_000, proc);
  return { proc, proxyPort, webPort, ui: `http://${HOST}:${webPort}/?token=${TOKEN}` };
}

/** mitmweb 8.1 (no token before 11.1). */
async function mitmweb(name: string, args: string[], confdir: string): Promise<Running> {
  const proxyPort = freePort(HOST);
  const webPort = freePort(HOST);
  const cmd = [
    "mitmweb",
    "--listen-host",
    HOST,
    "-p",
    String(proxyPort),
    "--web-host",
    HOST,
    "--web-port",
    String(webPort),
    "--no-web-open-browser",
    "--set",
    `confdir=${confdir}`,
    ...args,
  ];
  const proc = spawnManaged(cmd, { name, cwd: REPO });
  await waitForPort(HOST, webPort, 120_000, proc);
  await waitForPort(HOST, proxyPort, 120_000, proc);
  return { proc, proxyPort, webPort, ui: `http://${HOST}:${webPort}/` };
}

/** `mitmdeno [dump]` (from this checkout or `repo`) or mitmdump with `args`. */
async function dumpTool(
  name: string,
  python: boolean,
  args: string[],
  confdir: string,
  repo = REPO,
): Promise<Running> {
  const proxyPort = freePort(HOST);
  const cmd = python
    ? [
      "mitmdump",
      "--listen-host",
      HOST,
      "-p",
      String(proxyPort),
      "-q",
      "--set",
      `confdir=${confdir}`,
      ...args,
    ]
    : resolveDeno([
      "deno",
      "run",
      ...RUNTIME_FLAGS,
      "--allow-all",
      "main.ts",
      "--listen-host",
      HOST,
      "--listen-port",
      String(proxyPort),
      "-q",
      "--set",
      `confdir=${confdir}`,
      ...args,
    ]);
  const proc = spawnManaged(cmd, { name, cwd: repo });
  await waitForPort(HOST, proxyPort, 120_000, proc);
  return { proc, proxyPort, webPort: 0, ui: "" };
}

// --- Chromium -----------------------------------------------------------------------------------------

type Browser = Awaited<ReturnType<typeof launchChromium>>;
type Page = Awaited<ReturnType<Browser["newPage"]>>;

async function launchChromium(profileDir: string) {
  const { chromium } = await import("npm:playwright-core@1.65.1");
  return await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Wait until the page of `tool` holds `n` flows (mitmdeno: the list's count; mitmweb: its redux store). */
async function waitForCount(page: Page, tool: "mitmdeno" | "mitmweb", n: number, timeoutMs: number) {
  const opts = { timeout: timeoutMs, polling: 50 };
  if (tool === "mitmdeno") {
    await page.waitForFunction(
      (n: number) =>
        Number(
          ((globalThis as any).document.querySelector("#flow-count")?.textContent ?? "").split(" ")[0],
        ) >= n,
      n,
      opts,
    );
  } else {
    await page.waitForFunction(
      (n: number) => ((globalThis as any).backend?.store?.getState()?.flows?.list?.length ?? 0) >= n,
      n,
      opts,
    );
  }
}

// --- the UI's WebSocket, from here ----------------------------------------------------------------------

class UiSocket {
  #ws: WebSocket;
  #req = 0;
  #waiting = new Map<number, (m: any) => void>();
  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data));
      const w = this.#waiting.get(m.req);
      if (w) {
        this.#waiting.delete(m.req);
        w(m);
      }
    };
  }
  static open(webPort: number): Promise<UiSocket> {
    const ws = new WebSocket(`ws://${HOST}:${webPort}/updates?token=${TOKEN}`);
    return new Promise((resolve, reject) => {
      ws.onopen = () => resolve(new UiSocket(ws));
      ws.onerror = () => reject(new Error("WebSocket to the UI failed"));
    });
  }
  ask(msg: Record<string, unknown>, timeoutMs = 60_000): Promise<any> {
    const req = ++this.#req;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer to ${msg.type}`)), timeoutMs);
      this.#waiting.set(req, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.#ws.send(JSON.stringify({ ...msg, req }));
    });
  }
  close(): void {
    this.#ws.close();
  }
}

/** A filter as the UI sets it: the view, then its first screen of rows. Milliseconds and matches. */
async function timeFilter(ui: UiSocket, expr: string): Promise<{ ms: number; total: number }> {
  const t = performance.now();
  const st = await ui.ask({ type: "view/set", filter: expr });
  if (st.filterError) throw new Error(`filter ${expr}: ${st.filterError}`);
  await ui.ask({ type: "rows", offset: 0, limit: 73 });
  return { ms: performance.now() - t, total: st.total };
}

// --- steps ----------------------------------------------------------------------------------------------

interface Ctx {
  data: string;
  loadFlows: number;
  filterFlows: number;
  rssFlows: number;
  mitmproxy: boolean;
  /** mitmdeno's throughput scenarios to run (dump, w, store, ui). */
  scenarios: Set<string>;
  /** Another checkout whose mitmdeno scenarios run interleaved with this one's (throughput). */
  baseline: string | null;
  load: WrkLoad;
  warmupS: number;
  browser: Browser;
}

async function stepLoad(c: Ctx): Promise<void> {
  const file = await ensureFlowFile(`${c.data}/flows-${c.loadFlows}.mitm`, c.loadFlows);
  const tools: ["mitmdeno" | "mitmweb", () => Promise<Running>][] = [
    ["mitmdeno", async () => mitmdenoWeb("mitmdeno web -r", ["-r", file], await tempDir())],
  ];
  if (c.mitmproxy) tools.push(["mitmweb", async () => mitmweb("mitmweb -r", ["-r", file], await tempDir())]);
  const secs: Record<string, number> = {};
  for (const [tool, start] of tools) {
    const t0 = performance.now();
    const r = await start();
    const sampler = new RssSampler(r.proc.pid, { intervalMs: 250 });
    const page = await c.browser.newPage();
    try {
      await page.goto(r.ui, { timeout: 600_000 });
      try {
        await waitForCount(page, tool, c.loadFlows, 900_000);
      } catch (e) {
        console.error(`[load] ${tool}: not all flows in the UI after 900 s: ${(e as Error).message}`);
        continue;
      }
      const s = (performance.now() - t0) / 1000;
      secs[tool] = s;
      sampler.sample("end");
      report({
        step: "load",
        what: `${tool}: ${c.loadFlows} flows from -r into the UI`,
        value: s,
        unit: "s",
        ...(tool === "mitmdeno" ? { target: "< 3 s", ok: s < 3 } : {}),
      });
      await new Promise((res) => setTimeout(res, 1000));
      const sum = sampler.summary();
      report({
        step: "load",
        what: `${tool}: RSS after the load`,
        value: mib(treeRssKiB(r.proc.pid)),
        unit: "MiB",
      });
      report({
        step: "load",
        what: `${tool}: peak RSS during the load`,
        value: mib(sum.peakKiB),
        unit: "MiB",
      });
    } finally {
      sampler.stop();
      await page.close();
      await r.proc.stop();
    }
  }
  if (secs.mitmweb && secs.mitmdeno) {
    report({
      step: "load",
      what: "mitmweb / mitmdeno load time",
      value: secs.mitmweb / secs.mitmdeno,
      unit: "x",
    });
  }
}

async function fillStore(path: string, n: number): Promise<void> {
  const proc = spawnManaged(
    [Deno.execPath(), "run", "--allow-all", `${REPO}scripts/bench/fill_store.ts`, String(n), path],
    { name: "fill_store", cwd: REPO },
  );
  const st = await proc.status;
  if (!st.success) throw new Error(`fill_store failed: ${proc.stderrTail()}`);
}

/**
 * The generated store of `n` flows (made once, kept in the data dir). The steps only read it: opening a
 * store writes nothing unless it holds live flows, and no traffic goes through these runs.
 */
async function storeCopy(c: Ctx, n: number): Promise<{ path: string; dir: string }> {
  const path = `${c.data}/store-${n}.sqlite`;
  await fillStore(path, n);
  return { path, dir: await tempDir() };
}

const FILTERS = [
  "~d host42.example",
  "~c 404",
  "~m POST & ~u /api/item/4",
  "~t json & !~c 200",
  "~u item/9999",
  "~bs needle-99999",
  "~q ~h user-agent",
];

async function stepFilterAndScreen(c: Ctx, doFilter: boolean, doScreen: boolean): Promise<void> {
  const { path, dir } = await storeCopy(c, c.filterFlows);
  const r = await mitmdenoWeb("mitmdeno web (store)", ["--set", `web_store=${path}`], dir);
  try {
    if (doScreen) {
      // a fresh page each time: first screen after navigation
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const page = await c.browser.newPage();
        const t0 = performance.now();
        await page.goto(r.ui, { timeout: 600_000 });
        await page.waitForFunction(
          (n: number) =>
            (globalThis as any).document.querySelectorAll(".list .row").length >= 20 &&
            (globalThis as any).document.querySelector("#flow-count")?.textContent === `${n} flows`,
          c.filterFlows,
          { timeout: 60_000, polling: "raf" },
        );
        times.push(performance.now() - t0);
        if (i === 2) {
          // jump to the end of the list: the last flow is drawn
          const t1 = performance.now();
          await page.evaluate(() => {
            const l = (globalThis as any).document.querySelector(".list");
            l.scrollTop = l.scrollHeight;
          });
          await page.waitForFunction(
            (last: number) =>
              [...(globalThis as any).document.querySelectorAll(".list .row")].some((r: any) =>
                r.textContent.includes(`/api/item/${last}?`)
              ),
            c.filterFlows - 1,
            { timeout: 30_000, polling: "raf" },
          );
          report({
            step: "screen",
            what: `jump to the end of ${c.filterFlows} rows, last row drawn`,
            value: performance.now() - t1,
            unit: "ms",
          });
        }
        await page.close();
      }
      const first = times[0];
      report({
        step: "screen",
        what: `first screen of the list in Chromium, ${c.filterFlows} flows (first load)`,
        value: first,
        unit: "ms",
        target: "< 1000 ms",
        ok: first < 1000,
      });
      report({
        step: "screen",
        what: `  same, median of 3 page loads`,
        value: times.sort((a, b) => a - b)[1],
        unit: "ms",
      });
    }
    if (doFilter) {
      const ui = await UiSocket.open(r.webPort);
      try {
        await timeFilter(ui, "~a"); // warm the page cache
        for (const f of FILTERS) {
          const runs = [];
          for (let i = 0; i < 3; i++) runs.push(await timeFilter(ui, f));
          const worst = Math.max(...runs.map((x) => x.ms));
          report({
            step: "filter",
            what: `"${f}" over ${c.filterFlows} flows (${runs[0].total} match; worst of 3)`,
            value: worst,
            unit: "ms",
            target: "< 300 ms",
            ok: worst < 300,
          });
        }
      } finally {
        ui.close();
      }
    }
    report({
      step: "screen",
      what: `RSS with ${c.filterFlows} flows, after the above`,
      value: mib(treeRssKiB(r.proc.pid)),
      unit: "MiB",
    });
  } finally {
    await r.proc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function stepRss(c: Ctx): Promise<void> {
  console.error(`[rss] making a store of ${c.rssFlows} flows (cached in ${c.data})`);
  const { path, dir } = await storeCopy(c, c.rssFlows);
  const r = await mitmdenoWeb("mitmdeno web (1M store)", ["--set", `web_store=${path}`], dir);
  const sampler = new RssSampler(r.proc.pid, { intervalMs: 200 });
  const page = await c.browser.newPage();
  try {
    sampler.sample("start");
    const t0 = performance.now();
    await page.goto(r.ui, { timeout: 600_000 });
    await waitForCount(page, "mitmdeno", c.rssFlows, 120_000);
    await page.waitForSelector(".list .row");
    report({
      step: "rss",
      what: `first screen with ${c.rssFlows} flows`,
      value: performance.now() - t0,
      unit: "ms",
    });
    await page.evaluate(() => {
      const l = (globalThis as any).document.querySelector(".list");
      l.scrollTop = l.scrollHeight / 2;
    });
    await page.waitForTimeout(500);
    const ui = await UiSocket.open(r.webPort);
    try {
      for (const f of ["~d host42.example", "~c 404"]) {
        const { ms, total } = await timeFilter(ui, f);
        report({
          step: "rss",
          what: `"${f}" over ${c.rssFlows} flows (${total} match)`,
          value: ms,
          unit: "ms",
        });
      }
    } finally {
      ui.close();
    }
    await page.waitForTimeout(1000);
    sampler.sample("end");
    const s = sampler.summary();
    report({
      step: "rss",
      what: `peak RSS, ${c.rssFlows} flows in the store, UI open, filters, scroll`,
      value: mib(s.peakKiB),
      unit: "MiB",
      target: "< 300 MiB",
      ok: mib(s.peakKiB) < 300,
    });
    report({ step: "rss", what: "RSS at the end", value: mib(s.endKiB), unit: "MiB" });
  } finally {
    sampler.stop();
    await page.close();
    await r.proc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function stepThroughput(c: Ctx): Promise<void> {
  const origin = await startOrigin({ bodySize: 1024 });
  const rps: Record<string, number> = {};
  const cpuUs: Record<string, number> = {};
  type Scenario = [string, (dir: string) => Promise<Running>, boolean];
  const ours = (p: string, repo: string): Scenario[] => {
    const all: [string, Scenario][] = [
      ["dump", [`${p}mitmdeno dump`, (d) => dumpTool("mitmdeno", false, [], d, repo), false]],
      ["w", [
        `${p}mitmdeno dump -w`,
        (d) => dumpTool("mitmdeno -w", false, ["-w", `${d}/out.mitm`], d, repo),
        false,
      ]],
      ["store", [`${p}mitmdeno web (store)`, (d) => mitmdenoWeb("mitmdeno web", [], d, repo), false]],
      ["ui", [`${p}mitmdeno web, UI open`, (d) => mitmdenoWeb("mitmdeno web+ui", [], d, repo), true]],
    ];
    return all.filter(([k]) => c.scenarios.has(k)).map(([, sc]) => sc);
  };
  const scenarios = ours("", REPO);
  if (c.baseline) {
    // interleaved: this checkout's scenario, then the baseline's, so both see the same machine load
    const base = ours("baseline: ", c.baseline);
    scenarios.splice(0, scenarios.length, ...scenarios.flatMap((s, i) => [s, base[i]]));
  }
  if (c.mitmproxy) {
    scenarios.push(
      ["mitmdump", (d) => dumpTool("mitmdump", true, [], d), false],
      ["mitmdump -w", (d) => dumpTool("mitmdump -w", true, ["-w", `${d}/out.mitm`], d), false],
      ["mitmweb, UI open", (d) => mitmweb("mitmweb+ui", [], d), true],
    );
  }
  try {
    for (const [name, start, withUi] of scenarios) {
      const dir = await tempDir();
      const r = await start(dir);
      const sampler = new RssSampler(r.proc.pid, { intervalMs: 500 });
      let page: Page | null = null;
      try {
        if (withUi) {
          page = await c.browser.newPage();
          await page.goto(r.ui, { timeout: 600_000 });
          await page.waitForTimeout(1000);
        }
        const target = viaProxy({ host: HOST, port: r.proxyPort }, origin);
        if (c.warmupS > 0) await runWrk(target, { ...c.load, durationS: c.warmupS });
        sampler.sample("start");
        const cpu0 = treeCpuSeconds(r.proc.pid) ?? NaN;
        const res = await runWrk(target, c.load);
        const cpu1 = treeCpuSeconds(r.proc.pid) ?? NaN;
        sampler.sample("end");
        const errs = totalErrors(res.errors);
        rps[name] = res.rps;
        // the proxy's CPU per request: steadier than req/s when other jobs share the cores
        cpuUs[name] = (cpu1 - cpu0) * 1e6 / res.requests;
        report({
          step: "throughput",
          what: `${name}: req/s (${errs} errors, peak RSS ${fmt(mib(sampler.summary().peakKiB))} MiB, ` +
            `proxy CPU ${fmt(cpuUs[name])} µs/req)`,
          value: res.rps,
          unit: "req/s",
        });
      } catch (e) {
        console.error(`[throughput] ${name}: ${(e as Error).message}`);
      } finally {
        sampler.stop();
        await page?.close();
        await r.proc.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
  } finally {
    await origin.proc.stop();
  }
  const ratio = (a: string, b: string, min: number | null, label: string) => {
    if (!rps[a] || !rps[b]) return;
    const v = rps[a] / rps[b];
    report({
      step: "throughput",
      what: label,
      value: v * 100,
      unit: "%",
      ...(min === null ? {} : { target: `>= ${min * 100}%`, ok: v >= min }),
    });
  };
  const cpuRatio = (a: string, b: string, label: string) => {
    if (!cpuUs[a] || !cpuUs[b]) return;
    report({ step: "throughput", what: label, value: cpuUs[b] / cpuUs[a] * 100, unit: "%" });
  };
  for (const p of c.baseline ? ["", "baseline: "] : [""]) {
    for (const s of ["mitmdeno dump -w", "mitmdeno web (store)", "mitmdeno web, UI open"]) {
      cpuRatio(`${p}${s}`, `${p}mitmdeno dump`, `${p}CPU/req of mitmdeno dump / CPU/req of ${s}`);
    }
  }
  for (const p of c.baseline ? ["", "baseline: "] : [""]) {
    const t = p ? null : 1; // targets apply to this checkout
    ratio(
      `${p}mitmdeno web, UI open`,
      `${p}mitmdeno dump`,
      t && 0.6,
      `${p}mitmdeno web with the UI open / mitmdeno dump`,
    );
    ratio(`${p}mitmdeno dump -w`, `${p}mitmdeno dump`, t && 0.8, `${p}mitmdeno -w / mitmdeno dump`);
    ratio(
      `${p}mitmdeno web (store)`,
      `${p}mitmdeno dump`,
      t && 0.8,
      `${p}mitmdeno web (recording into the store) / mitmdeno dump`,
    );
  }
  if (c.baseline) {
    for (const s of ["mitmdeno dump", "mitmdeno dump -w", "mitmdeno web (store)", "mitmdeno web, UI open"]) {
      ratio(s, `baseline: ${s}`, null, `${s}: this checkout / baseline`);
    }
  }
  ratio("mitmdump -w", "mitmdump", null, "mitmdump -w / mitmdump");
  ratio("mitmweb, UI open", "mitmdump", null, "mitmweb with the UI open / mitmdump");
  ratio("mitmdeno web, UI open", "mitmweb, UI open", null, "mitmdeno web / mitmweb, both with the UI open");
}

/** Keep-alive GETs through the proxy, one at a time per connection; paths of completed responses. */
function client(proxyPort: number, origin: { host: string; port: number }, conn: number, got: Set<string>) {
  const sock = net.connect(proxyPort, HOST);
  let buf = Buffer.alloc(0);
  let n = 0;
  let current = "";
  let stopped = false;
  const send = () => {
    if (stopped) return;
    current = `/k9/${conn}/${n++}`;
    sock.write(
      `GET http://${origin.host}:${origin.port}${current} HTTP/1.1\r\nHost: ${origin.host}:${origin.port}\r\n\r\n`,
    );
  };
  sock.on("connect", send);
  sock.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1");
      const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      buf = buf.subarray(end + 4 + len);
      got.add(current);
      send();
    }
  });
  sock.on("error", () => {});
  return { stop: () => (stopped = true, sock.destroy()) };
}

async function stepKill(_c: Ctx): Promise<void> {
  const origin = await startOrigin({ bodySize: 1024 });
  try {
    for (const kind of ["web store", "dump -w"] as const) {
      for (const conns of [1, 8]) {
        const dir = await tempDir();
        const store = `${dir}/s.sqlite`;
        const file = `${dir}/out.mitm`;
        const r = kind === "web store"
          ? await mitmdenoWeb("web", ["--set", `web_store=${store}`], dir)
          : await dumpTool("dump -w", false, ["-w", file], dir);
        const got = new Set<string>();
        const clients = Array.from({ length: conns }, (_, i) => client(r.proxyPort, origin, i, got));
        await new Promise((res) => setTimeout(res, 1500 + Math.random() * 1000));
        Deno.kill(r.proc.pid, "SIGKILL");
        await r.proc.status;
        for (const cl of clients) cl.stop();
        const stored = new Set<string>();
        if (kind === "web store") {
          // as the UI sees it when the store is opened again (records past the last commit indexed then)
          const db = SqliteStore.open(store, { autoCommit: false });
          for (const row of db.summaries(db.select(null))) if (row.status !== null) stored.add(row.path);
          db.close();
        } else {
          try {
            for await (const f of readFlows(file)) if (f.response) stored.add(f.request.path);
          } catch { /* a torn last flow */ }
        }
        const lost = [...got].filter((p) => !stored.has(p)).length;
        report({
          step: "kill",
          what: `kill -9 of mitmdeno ${kind}, ${conns} connection(s): ${got.size} responses received, lost`,
          value: lost,
          unit: "flows",
          target: `<= ${conns} (the last one per connection)`,
          ok: lost <= conns,
        });
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
  } finally {
    await origin.proc.stop();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      only: { type: "string" },
      "load-flows": { type: "string" },
      "filter-flows": { type: "string" },
      "rss-flows": { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      connections: { type: "string" },
      "no-mitmproxy": { type: "boolean" },
      baseline: { type: "string" },
      scenarios: { type: "string" },
      data: { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const num = (v: string | undefined, d: number) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`expected a number, got ${v}`);
    return n;
  };
  const steps = new Set(
    values.only?.split(",").map((s) => s.trim()) ?? ["load", "filter", "screen", "rss", "throughput", "kill"],
  );
  for (const s of steps) {
    if (!["load", "filter", "screen", "rss", "throughput", "kill"].includes(s)) {
      throw new Error(`unknown step ${s}`);
    }
  }
  const data = values.data ?? "/tmp/mitmdeno-bench-web";
  await Deno.mkdir(data, { recursive: true });
  const uninstall = installSignalCleanup();
  const profile = await tempDir();
  const browser = await launchChromium(profile);
  const c: Ctx = {
    data,
    loadFlows: num(values["load-flows"], 43000),
    filterFlows: num(values["filter-flows"], 100000),
    rssFlows: num(values["rss-flows"], 1000000),
    mitmproxy: !values["no-mitmproxy"],
    baseline: values.baseline ? Deno.realPathSync(values.baseline) : null,
    scenarios: new Set(values.scenarios?.split(",").map((s) => s.trim()) ?? ["dump", "w", "store", "ui"]),
    load: { connections: num(values.connections, 16), threads: 2, durationS: num(values.duration, 10) },
    warmupS: num(values.warmup, 2),
    browser,
  };
  const rev = new TextDecoder().decode(
    (await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], cwd: REPO }).output()).stdout,
  ).trim();
  console.error(`mitmdeno ${rev}, ${new Date().toISOString()}`);
  try {
    if (steps.has("load")) await stepLoad(c);
    if (steps.has("filter") || steps.has("screen")) {
      await stepFilterAndScreen(c, steps.has("filter"), steps.has("screen"));
    }
    if (steps.has("rss")) await stepRss(c);
    if (steps.has("throughput")) await stepThroughput(c);
    if (steps.has("kill")) await stepKill(c);
  } finally {
    await browser.close();
    await stopAll();
    uninstall();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
  console.log(`\nmitmdeno ${rev} web benchmark`);
  for (const l of lines) {
    const t = l.target ? `   target ${l.target}: ${l.ok ? "OK" : "MISS"}` : "";
    console.log(`${l.step.padEnd(10)} ${l.what.padEnd(88)} ${fmt(l.value).padStart(8)} ${l.unit}${t}`);
  }
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify({ rev, lines }, null, 2));
  return lines.some((l) => l.ok === false) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
