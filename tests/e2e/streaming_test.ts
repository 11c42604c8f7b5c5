/**
 * stream_large_bodies: bodies over the limit stream through without buffering, so memory stays flat
 * for a 1 GiB download and a 1 GiB chunked upload.
 */
import assert from "node:assert/strict";
import { rssMiB, startProxy, startRawOrigin } from "./helpers.ts";

const GiB = 1024 ** 3;
const CHUNK = new Uint8Array(256 * 1024).fill(97);

Deno.test("streaming: a 1 GiB download streams through with flat memory", async () => {
  const origin = await startRawOrigin((s) => {
    s.once("data", () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${GiB}\r\n\r\n`);
      let sent = 0;
      const pump = () => {
        while (sent < GiB) {
          sent += CHUNK.length;
          if (!s.write(CHUNK)) return void s.once("drain", pump);
        }
      };
      pump();
    });
  });
  const proxy = await startProxy(["--flow-detail", "0", "--set", "stream_large_bodies=1m"]);
  try {
    const before = rssMiB(proxy.pid);
    let peak = before;
    const samples: number[] = [];
    const sampler = setInterval(() => {
      samples.push(rssMiB(proxy.pid));
      peak = Math.max(peak, samples[samples.length - 1]);
    }, 50);
    const r = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--max-time",
        "120",
        "-x",
        proxy.url,
        "-o",
        "/dev/null",
        "-w",
        "%{size_download} %{http_code}",
        `${origin.url}/big`,
      ],
      stdout: "piped",
    }).output();
    clearInterval(sampler);
    const [size, code] = new TextDecoder().decode(r.stdout).split(" ");
    assert.equal(code, "200");
    assert.equal(Number(size), GiB);
    // Memory must not scale with the body: it stays bounded (GC timing makes it wobble) far below 1 GiB.
    const trace = samples.map((x) => x.toFixed(0)).join(" ");
    assert.ok(peak - before < 256, `RSS grew from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB: ${trace}`);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("streaming: a 1 GiB chunked upload streams through with flat memory", async () => {
  let received = 0;
  const origin = await startRawOrigin((s) => {
    let head = true;
    s.on("data", (d: Uint8Array) => {
      if (head) {
        head = false;
        const text = new TextDecoder("latin1").decode(d);
        assert.match(text, /transfer-encoding: chunked/i);
      }
      received += d.length;
      if (new TextDecoder("latin1").decode(d.subarray(Math.max(0, d.length - 5))) === "0\r\n\r\n") {
        s.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
      }
    });
  });
  const proxy = await startProxy(["--flow-detail", "0", "--set", "stream_large_bodies=1m"]);
  try {
    const before = rssMiB(proxy.pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(proxy.pid))), 100);
    const r = await new Deno.Command("bash", {
      args: [
        "-c",
        `head -c ${GiB} /dev/zero | curl -sS --max-time 120 -x ${proxy.url} -T - ${origin.url}/up`,
      ],
      stdout: "piped",
    }).output();
    clearInterval(sampler);
    assert.equal(new TextDecoder().decode(r.stdout), "done");
    assert.ok(received > GiB, `origin received ${received} bytes`);
    assert.ok(peak - before < 200, `RSS grew from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB`);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("streaming: an upload that waits behind a slow requestheaders hook is held, not buffered", async () => {
  // Before the fix the stream queued whatever the client sent while its hook (or its server connection) took
  // time: a 512 MiB upload behind a 3 s hook grew the proxy by hundreds of MiB. Now reading the client stops
  // once 1 MiB waits.
  const SIZE = 512 * 1024 * 1024;
  let received = 0;
  const origin = await startRawOrigin((s) => {
    s.on("data", (d: Uint8Array) => {
      received += d.length;
      if (new TextDecoder("latin1").decode(d.subarray(Math.max(0, d.length - 5))) === "0\r\n\r\n") {
        s.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
      }
    });
  });
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-slowhook-" });
  await Deno.writeTextFile(
    `${dir}/slow.ts`,
    `import type { HTTPFlow } from "mitmdeno";
export async function requestheaders(flow: HTTPFlow) {
  if (flow.request.path === "/up") await new Promise((r) => setTimeout(r, 3000));
}
`,
  );
  const proxy = await startProxy([
    "--flow-detail",
    "0",
    "--set",
    "stream_large_bodies=1m",
    "-s",
    `${dir}/slow.ts`,
  ]);
  try {
    const before = rssMiB(proxy.pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(proxy.pid))), 50);
    const r = await new Deno.Command("bash", {
      args: [
        "-c",
        `head -c ${SIZE} /dev/zero | curl -sS --max-time 120 -x ${proxy.url} -T - ${origin.url}/up`,
      ],
      stdout: "piped",
    }).output();
    clearInterval(sampler);
    assert.equal(new TextDecoder().decode(r.stdout), "done");
    assert.ok(received > SIZE, `origin received ${received} bytes`);
    assert.ok(peak - before < 64, `RSS grew from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB`);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
