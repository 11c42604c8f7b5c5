/**
 * A bounded fuzz run against the HTTP/1 edge: mutated requests (seeded, so a failure reproduces) on fresh
 * connections to a proxy in reverse mode, whose every upstream is pinned to a loopback origin: a mutated
 * Host or URL can never make it connect elsewhere. Each case must get an answer or a close within its time
 * limit, the proxy must stay up, and a well-formed request must work afterwards.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { curl, onRequestHead, startProxy, startRawOrigin } from "./helpers.ts";

/** xorshift32: small, seeded, good enough to pick mutations. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const TEMPLATES = [
  "GET /a?b=c HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
  "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
  "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
  "GET http://h:1/x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n",
  "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
  "GET / HTTP/1.0\r\n\r\n",
];
const TOKENS = [
  "\r\n",
  "\n",
  "\r",
  ":",
  " ",
  "\t",
  "\x00",
  "\xff",
  "Content-Length: 99999999999999999999\r\n",
  "Content-Length: -1\r\n",
  "Transfer-Encoding: chunked\r\n",
  "Transfer-Encoding: gzip, chunked\r\n",
  "Host: \r\n",
  "Host: 127.0.0.1:1\r\n",
  "ffffffffffffffff\r\n",
  "0\r\n\r\n",
  "HTTP/9.9",
  "CONNECT 127.0.0.1:1 HTTP/1.1\r\n",
  "Expect: 100-continue\r\n",
  "Upgrade: websocket\r\nConnection: Upgrade\r\n",
  "X".repeat(70_000),
];

function mutate(pick: (n: number) => number): Uint8Array {
  let s = TEMPLATES[pick(TEMPLATES.length)];
  const edits = 1 + pick(4);
  for (let e = 0; e < edits; e++) {
    const at = pick(s.length + 1);
    switch (pick(4)) {
      case 0: // insert a token
        s = s.slice(0, at) + TOKENS[pick(TOKENS.length)] + s.slice(at);
        break;
      case 1: // delete a run
        s = s.slice(0, at) + s.slice(at + 1 + pick(8));
        break;
      case 2: // flip a byte
        s = s.slice(0, at) + String.fromCharCode(pick(256)) + s.slice(at + 1);
        break;
      case 3: // duplicate a run
        s = s.slice(0, at) + s.slice(at, at + pick(40)) + s.slice(at);
        break;
    }
  }
  return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
}

/** Send `data`, half-close, and resolve with what came back: "answer", "closed", or "timeout". */
function exchange(port: number, data: Uint8Array, limitMs: number): Promise<"answer" | "closed" | "timeout"> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    let done = false;
    const finish = (r: "answer" | "closed" | "timeout") => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => finish(got ? "answer" : "timeout"), limitMs);
    s.on("connect", () => s.end(data));
    s.on("data", (d: Uint8Array) => {
      got += new TextDecoder("latin1").decode(d);
      if (/^HTTP\/1\.[01] \d{3} /.test(got)) finish("answer");
    });
    s.on("error", () => {});
    s.on("close", () => finish(got ? "answer" : "closed"));
  });
}

Deno.test("fuzz: 400 mutated requests through a reverse proxy pinned to a loopback origin", async () => {
  let originRequests = 0;
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, () => {
      originRequests++;
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    })
  );
  const proxy = await startProxy([
    "--flow-detail",
    "0",
    "--mode",
    `reverse:${origin.url}`,
    "--set",
    "http_header_timeout=2",
    "--set",
    "http_response_timeout=2",
  ]);
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? 20261202);
  const pick = rng(seed);
  const cases = Array.from({ length: 400 }, () => mutate(pick));
  const outcomes = { answer: 0, closed: 0, timeout: 0 };
  const timeouts: string[] = [];
  try {
    const deadline = Date.now() + 120_000;
    for (let i = 0; i < cases.length; i += 8) {
      assert.ok(Date.now() < deadline, "the fuzz run stays within its time bound");
      const batch = cases.slice(i, i + 8);
      const rs = await Promise.all(batch.map((c) => exchange(proxy.port, c, 6000)));
      rs.forEach((r, j) => {
        outcomes[r]++;
        if (r === "timeout") {
          timeouts.push(JSON.stringify(new TextDecoder("latin1").decode(batch[j]).slice(0, 200)));
        }
      });
    }
    if (Deno.env.get("DEBUG_FUZZ")) console.log(seed, outcomes, originRequests);
    assert.deepEqual(timeouts, [], `cases that got neither an answer nor a close (seed ${seed})`);
    assert.ok(outcomes.answer > 100, `answers: ${JSON.stringify(outcomes)}`);
    assert.ok(originRequests > 0, "some mutated requests were still valid and reached the origin");
    const ok = await curl([`http://127.0.0.1:${proxy.port}/after`]);
    assert.equal(ok.status, 200, "the proxy serves on");
    assert.equal(ok.body, "ok");
  } finally {
    assert.notEqual(await proxy.stop(), null);
    await origin.close();
  }
  assert.doesNotMatch(proxy.output(), /Uncaught|panicked|Traceback|Internal error/);
});
