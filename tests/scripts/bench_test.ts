import {
  buildLuaScript,
  findWrk,
  parseResultLine,
  parseWrkOutput,
  parseWrkText,
  parseWrkTime,
  runWrk,
} from "../../scripts/bench/wrk.ts";
import { splitCommand } from "../../scripts/bench/process.ts";
import {
  cpuPerUnitUs,
  evaluateTargets,
  formatReport,
  median,
  mergeRounds,
  ratio,
  type ScenarioResult,
} from "../../scripts/bench/report.ts";
import { treeCpuSeconds } from "../../scripts/bench/cpu.ts";
import {
  defaultScenarios,
  defaultTargets,
  MITMDUMP_LISTEN,
  type Scenario,
  viaProxy,
  withListen,
} from "../../scripts/bench/scenarios.ts";
import { runScenario, startOrigin } from "../../scripts/bench/runner.ts";
import { runWsLoad, wsScenario } from "../../scripts/bench/ws_scenarios.ts";
import { parseH2load, parseH2loadDuration } from "../../scripts/bench/h2_scenarios.ts";
import { descendants, readRssKiB, RssSampler } from "../../scripts/bench/rss.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}
function assertEquals(a: unknown, b: unknown) {
  const [x, y] = [JSON.stringify(a), JSON.stringify(b)];
  if (x !== y) throw new Error(`expected ${y}, got ${x}`);
}

// Captured from `wrk -t2 -c16 -d3s --latency` through mitmdump (error lines added for coverage).
const SAMPLE_TEXT = `Running 3s test @ http://127.0.0.1:18080/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.36ms    3.01ms  44.43ms   95.17%
    Req/Sec   524.73     48.49   610.00     81.67%
  Latency Distribution
     50%   15.03ms
     75%   15.33ms
     90%  815.97us
     99%    1.05s
  3140 requests in 3.01s, 3.38MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   1042.74
Transfer/sec:      1.12MB
`;

const SAMPLE_JSON_LINE = 'WRK_RESULT {"requests":3140,"duration_us":3011311,"bytes":3544060,' +
  '"latency_us":{"mean":15360.12,"stdev":3010.5,"max":44430,"p50":15027,"p90":15970,"p99":30539},' +
  '"errors":{"connect":0,"read":0,"write":0,"timeout":0,"status":0}}';

Deno.test("bench: parseWrkTime handles all units", () => {
  assertEquals(parseWrkTime("512.00us"), 512);
  assertEquals(parseWrkTime("1.50ms"), 1500);
  assertEquals(parseWrkTime("2.00s"), 2_000_000);
  assertEquals(parseWrkTime("1.00m"), 60_000_000);
});

Deno.test("bench: parse wrk --latency text output", () => {
  const r = parseWrkText(SAMPLE_TEXT);
  assertEquals(r.requests, 3140);
  assertEquals(r.durationS, 3.01);
  assertEquals(r.rps, 1042.74);
  assert(Math.abs(r.latencyUs.p50 - 15030) < 1e-6);
  assert(Math.abs(r.latencyUs.p90 - 815.97) < 1e-6);
  assertEquals(r.latencyUs.p99, 1_050_000);
  assert(Math.abs(r.latencyUs.mean - 15360) < 1e-6);
  assert(Math.abs(r.latencyUs.max - 44430) < 1e-6);
  assertEquals(r.errors, { connect: 0, read: 2, write: 0, timeout: 1, status: 5 });
  assert(r.bytes > 3_000_000);
});

Deno.test("bench: the WRK_RESULT JSON line wins over the text", () => {
  const r = parseWrkOutput(SAMPLE_TEXT + SAMPLE_JSON_LINE + "\n");
  assertEquals(r.latencyUs.p99, 30539);
  assertEquals(r.errors.status, 0);
  assert(Math.abs(r.rps - 3140 / 3.011311) < 1e-6);
  assertEquals(parseResultLine(SAMPLE_TEXT), undefined);
});

// Captured from h2load 1.52.0 against scripts/bench/h2_origin.ts: `h2load -n 1 -c 1 https://127.0.0.1:PORT/big?n=104857600`
// (the run took under a second, so h2load prints "finished in 212.38ms")
const H2LOAD_BIG = `starting benchmark...
spawning thread #0: 1 total client(s). 1 total requests
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
progress: 100% done

finished in 212.38ms, 4.71 req/s, 471.11MB/s
requests: 1 total, 1 started, 1 done, 1 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 100.06MB (104915286) total, 28B (28) headers (space savings 59.42%), 100.00MB (104857600) data
                     min         max         mean         sd        +/- sd
time for request:   179.90ms    179.90ms    179.90ms         0us   100.00%
time for connect:    30.56ms     30.56ms     30.56ms         0us   100.00%
time to 1st byte:   129.13ms    129.13ms    129.13ms         0us   100.00%
req/s           :       4.74        4.74        4.74        0.00   100.00%
`;

// Captured likewise: `h2load -c 16 -m 10 -D 2 https://127.0.0.1:PORT/`
const H2LOAD_SMALL = `starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #0.
progress: 6% of clients started
progress: 12% of clients started
progress: 18% of clients started
progress: 25% of clients started
progress: 31% of clients started
progress: 37% of clients started
progress: 43% of clients started
progress: 50% of clients started
progress: 56% of clients started
progress: 62% of clients started
progress: 68% of clients started
progress: 75% of clients started
progress: 81% of clients started
progress: 87% of clients started
progress: 93% of clients started
progress: 100% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 218845.00 req/s, 218.10MB/s
requests: 437690 total, 437850 started, 437690 done, 437690 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 437690 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 436.20MB (457387026) total, 1.25MB (1313262) headers (space savings 94.00%), 427.43MB (448194560) data
                     min         max         mean         sd        +/- sd
time for request:       43us      5.79ms       709us       407us    88.94%
time for connect:     2.96ms      9.58ms      6.37ms      2.12ms    62.50%
time to 1st byte:    10.02ms     12.42ms     11.28ms       818us    56.25%
req/s           :   13636.10    13706.48    13674.47       23.95    56.25%
`;

Deno.test("bench: parseH2loadDuration handles all units", () => {
  assertEquals(parseH2loadDuration("43", "us"), 43);
  assertEquals(parseH2loadDuration("212.38", "ms"), 212380);
  assertEquals(parseH2loadDuration("2.00", "s"), 2e6);
  assertEquals(parseH2loadDuration("1", "m"), 60e6);
});

Deno.test("bench: parse h2load's one 100 MB download (sub-second, MB/s from the exact data bytes)", () => {
  const r = parseH2load(H2LOAD_BIG, true);
  assertEquals(r.requests, 1);
  assert(Math.abs(r.durationS - 0.21238) < 1e-9, String(r.durationS));
  assertEquals(r.bytes, 104857600);
  assert(Math.abs(r.rps - 104857600 / 0.21238 / 1e6) < 1e-6, String(r.rps));
  assert(Math.abs(r.latencyUs.mean - 179900) < 1e-6 && r.latencyUs.p50 === r.latencyUs.mean);
  assertEquals(r.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
});

Deno.test("bench: parse h2load's timed -c16 -m10 run (req/s)", () => {
  const r = parseH2load(H2LOAD_SMALL, false);
  assertEquals(r.requests, 437690);
  assertEquals(r.durationS, 2);
  assertEquals(r.rps, 218845);
  assertEquals(r.bytes, 457387026);
  assert(Math.abs(r.latencyUs.mean - 709) < 1e-6 && Math.abs(r.latencyUs.max - 5790) < 1e-6);
  assertEquals(r.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
  let threw = false;
  try {
    parseH2load("00.00MB (104857600) data\n", true);
  } catch {
    threw = true;
  }
  assert(threw, "a truncated summary must throw");
});

Deno.test("bench: Lua script uses absolute-form target and Host header for proxies", () => {
  const t = viaProxy({ host: "127.0.0.1", port: 8080 }, { host: "127.0.0.1", port: 9000 });
  assertEquals(t.url, "http://127.0.0.1:8080/");
  const lua = buildLuaScript(t);
  assert(lua.includes('wrk.path = "http://127.0.0.1:9000/"'), lua);
  assert(lua.includes('wrk.headers["Host"] = "127.0.0.1:9000"'), lua);
  assert(lua.includes("done = function(summary, latency, requests)"), lua);
});

Deno.test("bench: command templates", () => {
  assertEquals(splitCommand(`sh -c 'echo "a b"' x\\ y`), ["sh", "-c", 'echo "a b"', "x y"]);
  const listen = { host: "127.0.0.1", port: 1234 };
  assertEquals(withListen(["mitmdump"], listen, MITMDUMP_LISTEN, ["-s", "a.py"]), [
    "mitmdump",
    "--listen-host",
    "127.0.0.1",
    "-p",
    "1234",
    "-q",
    "-s",
    "a.py",
  ]);
  assertEquals(withListen(["x", "--port={port}"], listen, MITMDUMP_LISTEN), ["x", "--port=1234"]);
});

/** A successful scenario result at `rps` (p99 = rps, to tell rounds apart). */
const mk = (name: string, rps: number): ScenarioResult => ({
  name,
  description: "",
  status: "ok",
  result: {
    requests: 1,
    durationS: 1,
    rps,
    bytes: 0,
    latencyUs: { mean: 0, stdev: 0, max: 0, p50: 0, p90: 0, p99: rps },
    errors: { connect: 0, read: 0, write: 0, timeout: 0, status: 0 },
  },
});

Deno.test("bench: --rounds: a scenario's row is its median round, ratios are medians of paired rounds", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 3, 2]), 2.5);
  const failed: ScenarioResult = { name: "ours", description: "", status: "error", message: "boom" };
  const ours = mergeRounds([mk("ours", 300), failed, mk("ours", 100), mk("ours", 200)]);
  assertEquals(ours.rounds, [300, null, 100, 200]);
  assertEquals(ours.result?.rps, 200);
  // the median round's own numbers, not a mix of rounds
  assertEquals(ours.result?.latencyUs.p99, 200);
  // per-round ratios 3, (failed), 2, 2 -> 2; the ratio of the medians would say 200 / 60 = 3.3
  const theirs = mergeRounds([mk("theirs", 100), mk("theirs", 60), mk("theirs", 50), mk("theirs", 100)]);
  assertEquals(ratio([ours, theirs], "ours", "theirs"), 2);
  // one round, as before: the plain ratio, no rounds field
  const single = mergeRounds([mk("ours", 300)]);
  assertEquals(single.rounds, undefined);
  assertEquals(ratio([single, mk("theirs", 100)], "ours", "theirs"), 3);
  // a scenario that failed in every round stays failed; its ratios are undefined
  const never = mergeRounds([failed, failed]);
  assertEquals(never.status, "error");
  assertEquals(ratio([never, theirs], "ours", "theirs"), undefined);
  const text = formatReport({ meta: {}, scenarios: [ours, theirs], ratios: [], targets: [] });
  assert(text.includes("ours: median of 4 rounds: 300, failed, 100, 200"), text);
});

Deno.test("bench: RSS peak of the measured run apart from a start-up peak (a script's type-check child)", () => {
  const sampler = new RssSampler(Deno.pid);
  sampler.samples.push(
    { label: "idle", tMs: 0, kib: 180 * 1024 },
    { label: "tick", tMs: 1000, kib: 280 * 1024 }, // start-up: `deno check` of the script
    { label: "start", tMs: 2200, kib: 130 * 1024 },
    { label: "tick", tMs: 3000, kib: 185 * 1024 },
    { label: "end", tMs: 10200, kib: 182 * 1024 },
    { label: "tick", tMs: 10300, kib: 190 * 1024 }, // after the run: not in it
  );
  const rss = sampler.summary();
  assertEquals([rss.peakKiB, rss.runPeakKiB, rss.growthKiB], [280 * 1024, 185 * 1024, 52 * 1024]);
  const text = formatReport({ meta: {}, scenarios: [{ ...mk("ws", 1), rss }], ratios: [], targets: [] });
  assert(text.includes("130.0->?->182.0 (+52.0, peak 280.0, in the run 185.0)"), text);
  // the same peak in and out of the run: said once
  const quiet = new RssSampler(Deno.pid);
  quiet.samples.push(...sampler.samples.slice(2, 5));
  const once = formatReport({
    meta: {},
    scenarios: [{ ...mk("ws", 1), rss: quiet.summary() }],
    ratios: [],
    targets: [],
  });
  assert(once.includes("130.0->?->182.0 (+52.0, peak 185.0)") && !once.includes("in the run"), once);
});

Deno.test("bench: every target's scenarios run in a plain `deno task bench` (no target is N/A by default)", () => {
  const byDefault = new Set(defaultScenarios().filter((s) => s.default !== false).map((s) => s.name));
  const missing = defaultTargets.flatMap((t) =>
    [t.numerator, t.denominator].filter((n) => !byDefault.has(n)).map((n) => `${t.label}: ${n}`)
  );
  assertEquals(missing, []);
});

Deno.test("bench: targets PASS/MISS/N/A", () => {
  const res = evaluateTargets([mk("direct", 100), mk("mitmdeno", 40), mk("mitmdump", 2)], [
    { label: "a", numerator: "mitmdeno", denominator: "mitmdump", min: 15 },
    { label: "b", numerator: "mitmdeno", denominator: "direct", min: 0.5 },
    { label: "c", numerator: "mitmdeno", denominator: "missing", min: 1 },
  ]);
  assertEquals(res.map((t) => t.verdict), ["PASS", "MISS", "N/A"]);
});

Deno.test({
  name: "bench: CPU seconds from /proc grow with work; per-unit CPU from the measured run",
  ignore: Deno.build.os !== "linux",
  fn() {
    const before = treeCpuSeconds(Deno.pid)!;
    const t0 = Date.now();
    let x = 0;
    for (let i = 0; i < 1e9 && Date.now() - t0 < 400; i++) x += Math.sqrt(i);
    assert(x > 0);
    const spent = treeCpuSeconds(Deno.pid)! - before;
    assert(spent >= 0.2 && spent < 5, `spent ${spent}s of CPU in a 400 ms busy loop`);
    assertEquals(treeCpuSeconds(2 ** 22 + 12345), undefined);
    const r = {
      name: "x",
      description: "",
      status: "ok" as const,
      cpuSeconds: 2,
      result: {
        requests: 40000,
        durationS: 10,
        rps: 4000,
        bytes: 0,
        latencyUs: { mean: 0, stdev: 0, max: 0, p50: 0, p90: 0, p99: 0 },
        errors: { connect: 0, read: 0, write: 0, timeout: 0, status: 0 },
      },
    };
    assertEquals(cpuPerUnitUs(r), 50);
    assertEquals(cpuPerUnitUs({ ...r, cpuSeconds: undefined }), undefined);
  },
});

Deno.test({
  name: "bench: 1-second direct wrk run against the origin process",
  ignore: !findWrk(),
  async fn() {
    const origin = await startOrigin({ bodySize: 1024 });
    try {
      const rss = readRssKiB(origin.proc.pid);
      assert(rss === undefined || rss > 0);
      const r = await runWrk({ url: `http://${origin.host}:${origin.port}/` }, {
        connections: 4,
        threads: 1,
        durationS: 1,
      });
      assert(r.requests > 0, `requests ${r.requests}`);
      assert(r.rps > 0, `rps ${r.rps}`);
      assert(r.latencyUs.p50 > 0 && r.latencyUs.p99 >= r.latencyUs.p50, JSON.stringify(r.latencyUs));
      assert(r.bytes >= r.requests * 1024);
      assertEquals(r.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
    } finally {
      await origin.proc.stop();
    }
  },
});

Deno.test("bench: 1-second direct WebSocket echo run against the origin process", async () => {
  const origin = await startOrigin({ bodySize: 1024 });
  try {
    const r = await runWsLoad({
      repoRoot: ROOT,
      origin: { host: origin.host, port: origin.port },
      load: { connections: 1, threads: 1, durationS: 1 },
    }, { durationS: 1, connections: 4, size: 64, expect: "same" });
    assert(r.requests > 0 && r.rps > 0, JSON.stringify(r));
    assert(r.latencyUs.p50 > 0 && r.latencyUs.p99 >= r.latencyUs.p50, JSON.stringify(r.latencyUs));
    assertEquals(r.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
  } finally {
    await origin.proc.stop();
  }
});

Deno.test("bench: the WebSocket scenario with a rewriting script, 1 s through mitmdeno", async () => {
  const origin = await startOrigin({ bodySize: 1024 });
  try {
    const ctx = {
      repoRoot: ROOT,
      origin: { host: origin.host, port: origin.port },
      load: { connections: 1, threads: 1, durationS: 1 },
    };
    const s = await runScenario(wsScenario("mitmdeno-ws-script", "mitmdeno", { script: true }), ctx, {
      warmupS: 1,
      readyTimeoutS: 30,
      log: () => {},
    });
    assertEquals([s.status, s.message], ["ok", undefined]);
    // every echo came back rewritten by the sandboxed script (ws_load.ts counts others as status errors)
    assert(s.result!.requests > 0, JSON.stringify(s.result));
    assertEquals(s.result!.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
    assertEquals(s.warmupErrors, 0);
    assert(s.rss?.startKiB !== undefined && s.rss.peakKiB! >= s.rss.startKiB, JSON.stringify(s.rss));
  } finally {
    await origin.proc.stop();
  }
});

Deno.test({
  name:
    "bench: settleChildren waits for a proxy's start-up children (a script's type check) before measuring",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const sleepers = () =>
      // once exited the sleep stays a zombie (the origin that inherits it never reaps it): not running
      descendants(Deno.pid, { running: true }).filter((p) => {
        try {
          return Deno.readTextFileSync(`/proc/${p}/comm`).trim() === "sleep";
        } catch {
          return false;
        }
      }).length;
    const seen: number[] = [];
    const logs: string[] = [];
    const scenario = (settleChildren: boolean): Scenario => ({
      name: "settle",
      description: "",
      // the "proxy": an origin whose process has a child for its first 1.5 s, as mitmdeno has its `deno check`
      proxy: {
        command: (listen) => [
          "bash",
          "-c",
          `sleep 1.5 & exec ${Deno.execPath()} run --allow-net ${ROOT}/scripts/bench/origin.ts --host ${listen.host} --port ${listen.port}`,
        ],
        settleChildren,
      },
      target: (run) => ({ url: `http://${run.proxy!.host}:${run.proxy!.port}/` }),
      measure: (_run, _target, durationS) => {
        seen.push(sleepers());
        return Promise.resolve({ ...mk("settle", 1).result!, durationS });
      },
    });
    const ctx = {
      repoRoot: ROOT,
      origin: { host: "127.0.0.1", port: 9 },
      load: { connections: 1, threads: 1, durationS: 1 },
    };
    const opts = { warmupS: 0, readyTimeoutS: 30, log: (m: string) => logs.push(m) };
    const waited = await runScenario(scenario(true), ctx, opts);
    const unsettled = await runScenario(scenario(false), ctx, opts);
    assertEquals([waited.status, unsettled.status], ["ok", "ok"]);
    // without settling the child is still there when the measured run starts: the test can tell
    assertEquals(seen, [0, 1]);
    assert(
      logs.some((l) => /\[settle\] waited \d+ ms for the proxy's child processes$/.test(l)),
      logs.join("\n"),
    );
  },
});

Deno.test("core microbench: runs the layer stack, and side by side against a checkout (here: itself)", async () => {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        `${ROOT}/deno.json`,
        "--lock=tests/deno.lock",
        `${ROOT}/scripts/core_microbench.ts`,
        ...args,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, `exit ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
    return text;
  };
  const plain = await run("--n", "2000");
  // every request reached the server and every response the client (the warm-up's 20000 included)
  const m =
    /2000 requests: [\d.]+ µs\/request wall, [\d.]+ µs CPU \(client writes 22000, server writes 22000\)/
      .exec(plain);
  assert(m, plain);
  const ab = await run("--against", ROOT, "--rounds", "2");
  const r = /this checkout ([\d.]+) µs CPU\/request, .* ([\d.]+): ratio ([\d.]+)/.exec(ab);
  assert(r, ab);
  assert(Number(r[1]) > 0 && Number(r[2]) > 0 && Number(r[3]) > 0.2 && Number(r[3]) < 5, ab);
});
