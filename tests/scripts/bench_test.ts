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
import { cpuPerUnitUs, evaluateTargets, type ScenarioResult } from "../../scripts/bench/report.ts";
import { treeCpuSeconds } from "../../scripts/bench/cpu.ts";
import { MITMDUMP_LISTEN, viaProxy, withListen } from "../../scripts/bench/scenarios.ts";
import { runScenario, startOrigin } from "../../scripts/bench/runner.ts";
import { runWsLoad, wsScenario } from "../../scripts/bench/ws_scenarios.ts";
import { readRssKiB } from "../../scripts/bench/rss.ts";

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

Deno.test("bench: targets PASS/MISS/N/A", () => {
  const mk = (name: string, rps: number): ScenarioResult => ({
    name,
    description: "",
    status: "ok",
    result: {
      requests: 1,
      durationS: 1,
      rps,
      bytes: 0,
      latencyUs: { mean: 0, stdev: 0, max: 0, p50: 0, p90: 0, p99: 0 },
      errors: { connect: 0, read: 0, write: 0, timeout: 0, status: 0 },
    },
  });
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
