/**
 * Framing and RFC 9112 rules at the proxy's edge, with raw sockets: Host rules (§3.2), bad chunked request
 * bodies, transfer codings other than chunked, status codes set by scripts, and the header and response
 * timeouts. Each malformed request gets a clear answer and the proxy keeps serving others.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { curl, onRequestHead, rawExchange, startProxy, startRawOrigin } from "./helpers.ts";

/** An origin that answers every request with the Host header it received, as its body. */
function hostEcho() {
  return startRawOrigin((s) =>
    onRequestHead(s, (head) => {
      const host = /^host: *(.*)$/im.exec(head)?.[1]?.trim() ?? "(none)";
      const hosts = head.match(/^host:/gim)?.length ?? 0;
      const body = `${host} x${hosts}`;
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    })
  );
}

const statusOf = (raw: string) => /^HTTP\/1\.1 (\d+)/.exec(raw)?.[1];

Deno.test("rfc9112: Host rules: two Host fields and a missing Host are 400; the URL's authority wins", async () => {
  const origin = await hostEcho();
  const regular = await startProxy(["--flow-detail", "0"]);
  const reverse = await startProxy([
    "--flow-detail",
    "0",
    "--mode",
    `reverse:${origin.url}`,
    "--set",
    "keep_host_header",
  ]);
  try {
    const two = await rawExchange(
      regular.port,
      `GET ${origin.url}/ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n`,
    );
    assert.equal(statusOf(two), "400", two);
    assert.match(two, /more than one Host header field/);

    const missing = await rawExchange(reverse.port, `GET /x HTTP/1.1\r\nUser-Agent: t\r\n\r\n`);
    assert.equal(statusOf(missing), "400", missing);
    assert.match(missing, /missing Host header \(required in HTTP\/1\.1\)/);
    const bad = await rawExchange(reverse.port, `GET /x HTTP/1.1\r\nHost: a b\r\n\r\n`);
    assert.equal(statusOf(bad), "400", bad);
    assert.match(bad, /invalid Host header/);
    // HTTP/1.0 may omit Host
    const old = await rawExchange(reverse.port, `GET /x HTTP/1.0\r\n\r\n`);
    assert.equal(statusOf(old), "200", old);

    // absolute form: the target's authority replaces a disagreeing Host
    const abs = await rawExchange(
      regular.port,
      `GET ${origin.url}/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(abs), "200", abs);
    assert.ok(abs.endsWith(`127.0.0.1:${origin.port} x1`), abs);
    // and the proxy still serves
    assert.equal((await curl(["-x", regular.url, `${origin.url}/after`])).status, 200);
  } finally {
    await regular.stop();
    await reverse.stop();
    await origin.close();
  }
});

Deno.test("rfc9112: a malformed chunked request body is a 400 with a reason; other codings are 501", async () => {
  const origin = await hostEcho();
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const bad = await rawExchange(
      proxy.port,
      `POST ${origin.url}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
    );
    assert.equal(statusOf(bad), "400", bad);
    assert.match(bad, /Invalid chunked request body/);
    const gz = await rawExchange(
      proxy.port,
      `POST ${origin.url}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    );
    assert.equal(statusOf(gz), "501", gz);
    assert.match(gz, /unsupported Transfer-Encoding: gzip, chunked/);
    assert.equal((await curl(["-x", proxy.url, `${origin.url}/after`])).status, 200, "the proxy serves on");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("rfc9112: a response with a transfer coding besides chunked is a 502, not a corrupted body", async () => {
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, () => s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"))
  );
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/`]);
    assert.equal(r.status, 502);
    assert.match(r.body, /unsupported Transfer-Encoding/);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("rfc9112: a status code outside 100-999 set by a script is refused", async () => {
  const origin = await hostEcho();
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-status-" });
  await Deno.writeTextFile(
    `${dir}/status.ts`,
    `import type { HTTPFlow } from "mitmdeno";
export function response(flow: HTTPFlow) {
  if (flow.request.path === "/big") flow.response!.statusCode = 99999;
  if (flow.request.path === "/small") flow.response!.statusCode = 42;
  flow.response!.headers.set("x-seen", "1");
}`,
  );
  const proxy = await startProxy(["--flow-detail", "0", "-s", `${dir}/status.ts`]);
  try {
    for (const path of ["/big", "/small"]) {
      const r = await curl(["-x", proxy.url, `${origin.url}${path}`]);
      assert.equal(r.status, 200, "the flow goes on unchanged");
      assert.doesNotMatch(r.headers, /x-seen/);
    }
    await proxy.waitFor(
      /invalid status code 99999: expected an integer from 100 to 999 \(at .*status\.ts:3:/,
    );
    await proxy.waitFor(/invalid status code 42/);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Open a connection, send `parts` with `gapMs` between them, and resolve with what came back and when. */
function slowClient(port: number, parts: string[], gapMs: number): Promise<{ data: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect(port, "127.0.0.1");
    let data = "";
    let i = 0;
    const timer = setInterval(() => {
      if (i < parts.length && !s.destroyed) s.write(parts[i++]);
    }, gapMs);
    const hard = setTimeout(() => s.destroy(), 15_000);
    s.on("data", (d: Uint8Array) => (data += new TextDecoder().decode(d)));
    s.on("error", () => {});
    s.on("close", () => {
      clearInterval(timer);
      clearTimeout(hard);
      resolve({ data, ms: performance.now() - t0 });
    });
  });
}

Deno.test("rfc9112: a slow request head gets a 408 after http_header_timeout; a silent client is closed", async () => {
  const origin = await hostEcho();
  const proxy = await startProxy(["--flow-detail", "0", "--set", "http_header_timeout=1"]);
  try {
    // slowloris: a header line every 300 ms, never the blank line
    const parts = [
      `GET ${origin.url}/ HTTP/1.1\r\n`,
      ...Array.from({ length: 40 }, (_, i) => `X-${i}: y\r\n`),
    ];
    const slow = await slowClient(proxy.port, parts, 300);
    assert.match(slow.data, /^HTTP\/1\.1 408 /, slow.data);
    assert.match(slow.data, /request head not complete after 1s \(http_header_timeout\)/);
    assert.ok(slow.ms < 4000, `closed after ${slow.ms.toFixed(0)} ms`);
    const silent = await slowClient(proxy.port, [], 1000);
    assert.equal(silent.data, "");
    assert.ok(silent.ms < 4000, `silent connection closed after ${silent.ms.toFixed(0)} ms`);
    assert.equal((await curl(["-x", proxy.url, `${origin.url}/after`])).status, 200);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("rfc9112: an origin that never answers gets a 504 after http_response_timeout", async () => {
  const origin = await startRawOrigin(() => {/* reads the request, never answers */});
  const proxy = await startProxy(["--flow-detail", "0", "--set", "http_response_timeout=1"]);
  try {
    const t0 = performance.now();
    const r = await curl(["-x", proxy.url, `${origin.url}/hang`]);
    const ms = performance.now() - t0;
    assert.equal(r.status, 504);
    assert.match(r.body, /Server did not respond within 1s \(http_response_timeout\)/);
    assert.ok(ms >= 900 && ms < 4000, `${ms.toFixed(0)} ms`);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("rfc9112: validate_inbound_headers: folded lines and bad names are 400 by default, relayed when off", async () => {
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, (head) => {
      const body = /^x-long: *(.*)$/im.exec(head)?.[1]?.trim() ?? "(none)";
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    })
  );
  const strict = await startProxy(["--flow-detail", "0"]);
  const lenient = await startProxy(["--flow-detail", "0", "--set", "validate_inbound_headers=false"]);
  const req = `GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\nX-Long: one\r\n two\r\nConnection: close\r\n\r\n`;
  try {
    const refused = await rawExchange(strict.port, req);
    assert.equal(statusOf(refused), "400", refused);
    assert.match(refused, /obsolete line folding/);
    const relayed = await rawExchange(lenient.port, req);
    assert.equal(statusOf(relayed), "200", relayed);
    assert.ok(relayed.endsWith("one two"), relayed);
    // framing errors stay refused when validation is off
    const smuggle = await rawExchange(
      lenient.port,
      `POST ${origin.url}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
    );
    assert.equal(statusOf(smuggle), "400", smuggle);
    assert.match(smuggle, /conflicting Content-Length/);
  } finally {
    await strict.stop();
    await lenient.stop();
    await origin.close();
  }
});
