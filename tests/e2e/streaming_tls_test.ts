/**
 * Backpressure on every path: 1 GiB downloads and uploads with `stream_large_bodies`, plain and TLS on the
 * client side times plain and TLS on the upstream side, each through a client slower than the origin
 * (curl --limit-rate), asserting the proxy's peak RSS. Before the fix the upstream TLS read path buffered
 * whatever the origin sent (a 1 GiB download through CONNECT+TLS peaked at ~2.2 GiB).
 */
import assert from "node:assert/strict";
import { rssMiB, startProxy } from "./helpers.ts";

const GiB = 1024 ** 3;
const ROOT = new URL("../../", import.meta.url).pathname;
/** The proxy's RSS may grow by this much while streaming 1 GiB (it held the whole body before). */
const MAX_GROWTH_MIB = 128;

interface StreamOrigin {
  http: number;
  https: number;
  ca: string;
  close(): Promise<void>;
}

async function startStreamOrigin(dir: string): Promise<StreamOrigin> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}scripts/bench/stream_origin.ts`, "--dir", dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (!/LISTENING .*\n/.test(text)) {
    assert.ok(Date.now() < deadline, "stream origin did not start");
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream origin exited: ${text}`);
    text += value;
  }
  const [, http, https, ca] = /LISTENING (\d+) (\d+) (\S+)/.exec(text)!;
  return {
    http: Number(http),
    https: Number(https),
    ca,
    async close() {
      await child.stdin.close();
      reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Run curl while sampling the proxy's RSS; returns curl's `-w` output and the RSS growth in MiB. */
async function transfer(
  pid: number,
  args: string[],
  body?: number,
): Promise<{ out: string; growth: number }> {
  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  try {
    const child = new Deno.Command("curl", {
      args: ["-sS", "--max-time", "120", "--limit-rate", "300M", ...args],
      stdin: body ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (body) {
      const w = child.stdin.getWriter();
      const chunk = new Uint8Array(1 << 20).fill(98);
      for (let sent = 0; sent < body; sent += chunk.length) await w.write(chunk);
      await w.close();
    }
    const r = await child.output();
    const out = new TextDecoder().decode(r.stdout).trim();
    assert.equal(r.code, 0, `curl failed: ${new TextDecoder().decode(r.stderr)}`);
    return { out, growth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

Deno.test("streaming: 1 GiB down and up through every plain/TLS combination with bounded memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-stream-tls-" });
  const origin = await startStreamOrigin(dir);
  const common = [
    "--flow-detail",
    "0",
    "--set",
    "stream_large_bodies=1m",
    "--set",
    `ssl_verify_upstream_trusted_ca=${origin.ca}`,
  ];
  const regular = await startProxy(common);
  const toTls = await startProxy([...common, "--mode", `reverse:https://localhost:${origin.https}`]);
  const toPlain = await startProxy([...common, "--mode", `reverse:http://127.0.0.1:${origin.http}`]);
  const results: string[] = [];
  try {
    const cases: [string, number, string[]][] = [
      ["plain -> plain", regular.pid, ["-x", regular.url, `http://127.0.0.1:${origin.http}`]],
      ["TLS -> TLS (CONNECT)", regular.pid, ["-k", "-x", regular.url, `https://localhost:${origin.https}`]],
      ["plain -> TLS (reverse)", toTls.pid, [`http://127.0.0.1:${toTls.port}`]],
      ["TLS -> plain (reverse)", toPlain.pid, ["-k", `https://localhost:${toPlain.port}`]],
    ];
    for (const [name, pid, [...pre]] of cases) {
      const base = pre.pop()!;
      const down = await transfer(pid, [
        ...pre,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        `${base}/bytes/${GiB}`,
      ]);
      assert.equal(down.out, `200 ${GiB}`, `${name} download`);
      const up = await transfer(pid, [...pre, "-T", "-", "-w", " %{http_code}", `${base}/upload`], GiB);
      assert.equal(up.out, `${GiB} 200`, `${name} upload (origin's byte count, status)`);
      results.push(`${name}: +${down.growth.toFixed(0)} MiB down, +${up.growth.toFixed(0)} MiB up`);
    }
    if (Deno.env.get("DEBUG_STREAMING")) console.log(results.join("\n"));
    for (const [i, [name]] of cases.entries()) {
      const [down, up] = results[i].match(/\+(\d+) MiB/g)!.map((s) => Number(s.slice(1, -4)));
      assert.ok(
        down < MAX_GROWTH_MIB && up < MAX_GROWTH_MIB,
        `${name}: RSS grew too much: ${results.join("; ")}`,
      );
    }
  } finally {
    await regular.stop();
    await toTls.stop();
    await toPlain.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
