/** Server and client replay through the real CLI. */
import assert from "node:assert/strict";
import { curl, runCli, startOrigin, startProxy } from "./helpers.ts";
import { readFlowsToArray } from "../../lib/io/flowfile.ts";

/** Record two exchanges with an origin that answers with a counter, then stop the origin. */
async function recordAndStop(path: string): Promise<string> {
  let n = 0;
  const o = startOrigin((req) => {
    n++;
    return new Response(`recorded ${new URL(req.url).pathname} #${n}`, {
      headers: { "x-recorded": "yes", date: new Date(Date.UTC(2020, 0, 1)).toUTCString() },
    });
  });
  const proxy = await startProxy(["-w", path, "--flow-detail", "0"]);
  try {
    await curl(["-x", proxy.url, `${o.url}/one?a=1`]);
    await curl(["-x", proxy.url, `${o.url}/two`]);
  } finally {
    await proxy.stop();
    await o.close();
  }
  return o.url;
}

Deno.test("replay e2e: --server-replay answers from the file with the origin stopped, then exits by itself", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/rec.mitm`;
    const url = await recordAndStop(path);
    // the origin is gone: any upstream connection would fail with 502
    const proxy = await startProxy(["-S", path]);
    let code: number;
    try {
      const two = await curl(["-x", proxy.url, `${url}/two`]);
      assert.equal(two.status, 200);
      assert.equal(two.body, "recorded /two #2");
      assert.match(two.headers, /x-recorded: yes/i);
      const one = await curl(["-x", proxy.url, `${url}/one?a=1`]);
      assert.equal(one.body, "recorded /one #1");
      await proxy.waitFor(/\[replay\]\s+<< 200 OK/);
      // every recorded response served, no open connections: mitmdump's keepserving logic exits
      await proxy.waitFor(/\[replay\]\s+<< 200 OK[^\n]*\n[^]*\[replay\]\s+<< 200 OK/);
    } finally {
      code = await proxy.stop();
    }
    assert.equal(code, 0);

    const extra = await startProxy([
      "-S",
      path,
      "--server-replay-extra",
      "404",
      "--server-replay-reuse",
      "--no-server-replay-refresh",
      "--set",
      "server_replay_ignore_params=a",
    ]);
    try {
      const miss = await curl(["-x", extra.url, `${url}/unknown`]);
      assert.equal(miss.status, 404);
      for (let i = 0; i < 2; i++) {
        const hit = await curl(["-x", extra.url, `${url}/one?a=${i + 5}`]);
        assert.equal(hit.body, "recorded /one #1", "reuse + ignored param");
      }
    } finally {
      await extra.stop();
    }

    const kill = await startProxy(["-S", path, "--server-replay-extra", "kill", "--set", "keepserving=true"]);
    try {
      const r = await curl(["-x", kill.url, `${url}/unknown`]);
      assert.notEqual(r.code, 0, "connection closed without a response");
      assert.equal(r.status, 0);
    } finally {
      await kill.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay e2e: --client-replay -n sends the requests again and records the new responses", async () => {
  const dir = await Deno.makeTempDir();
  const hits: string[] = [];
  const o = startOrigin(async (req) => {
    const body = await req.text();
    hits.push(`${req.method} ${new URL(req.url).pathname} ${body}`);
    return new Response(`fresh ${hits.length}`, { headers: { "x-live": "1" } });
  });
  try {
    const path = `${dir}/rec.mitm`;
    const proxy = await startProxy(["-w", path, "--flow-detail", "0"]);
    try {
      await curl(["-x", proxy.url, `${o.url}/get`]);
      await curl(["-x", proxy.url, "-d", "p=1", `${o.url}/post`]);
    } finally {
      await proxy.stop();
    }
    assert.equal(hits.length, 2);
    const out = `${dir}/replayed.mitm`;
    const t0 = Date.now();
    const r = await runCli(["-n", "-C", path, "-w", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 15000, "exits by itself once the queue is empty");
    assert.deepEqual(hits.slice(2), ["GET /get ", "POST /post p=1"]);
    assert.match(r.stdout, /\[replay\]: GET http:\/\/127\.0\.0\.1:\d+\/get\n\s+<< 200 OK 7b/);
    assert.match(r.stdout, /\[replay\]: POST http:\/\/127\.0\.0\.1:\d+\/post\n\s+<< 200 OK 7b/);
    const flows = await readFlowsToArray(out);
    assert.deepEqual(flows.map((f) => [f.isReplay, f.response!.text, f.response!.headers.get("x-live")]), [
      ["request", "fresh 3", "1"],
      ["request", "fresh 4", "1"],
    ]);
  } finally {
    await o.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay e2e: HTTPS flows recorded through interception are client-replayed over TLS", async () => {
  const { startHttpsOrigin } = await import("./tls_helpers.ts");
  const dir = await Deno.makeTempDir();
  const origin = await startHttpsOrigin(dir);
  try {
    const path = `${dir}/tls.mitm`;
    const conf = `${dir}/conf`;
    const rec = await startProxy(["-w", path, "--flow-detail", "0", "-k", "--set", `confdir=${conf}`]);
    try {
      const r = await curl([
        "--cacert",
        `${conf}/mitmdeno-ca-cert.pem`,
        "-x",
        rec.url,
        `https://localhost:${origin.port}/tls-one`,
      ]);
      assert.equal(r.status, 200);
    } finally {
      await rec.stop();
    }
    const before = origin.requests;
    const out = `${dir}/replayed.mitm`;
    const r = await runCli(["-n", "-C", path, "-k", "-w", out, "--set", `confdir=${conf}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(origin.requests, before + 1, "the request reached the HTTPS origin again");
    const flows = await readFlowsToArray(out);
    assert.equal(flows.length, 1);
    assert.equal(flows[0].isReplay, "request");
    assert.equal(flows[0].request.scheme, "https");
    assert.match(flows[0].response!.text!, /hello \/tls-one/);
  } finally {
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
