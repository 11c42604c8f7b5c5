/**
 * The real CLI as a regular HTTP/1 proxy, driven by curl and raw sockets against loopback origins.
 */
import assert from "node:assert/strict";
import { curl, onRequestHead, rawExchange, startOrigin, startProxy, startRawOrigin } from "./helpers.ts";

Deno.test("proxy: GET and POST through the CLI with curl -x, dumper prints each flow", async () => {
  const origin = startOrigin(async (req) => {
    const body = await req.text();
    return new Response(`${req.method} ${new URL(req.url).pathname} ${body}`, {
      headers: { "x-origin": "yes", "content-type": "text/plain" },
    });
  });
  const proxy = await startProxy();
  try {
    const get = await curl(["-x", proxy.url, `${origin.url}/hello?x=1`]);
    assert.equal(get.status, 200);
    assert.equal(get.body, "GET /hello ");
    assert.match(get.headers, /x-origin: yes/i);
    const post = await curl(["-x", proxy.url, "-d", "some=data", `${origin.url}/form`]);
    assert.equal(post.body, "POST /form some=data");
    const chunked = await curl([
      "-x",
      proxy.url,
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      "chunked upload",
      `${origin.url}/up`,
    ]);
    assert.equal(chunked.body, "POST /up chunked upload");
    await proxy.waitFor(/POST http:\/\/127\.0\.0\.1:\d+\/up\n\s+<< 200 OK 23b/);
    assert.match(proxy.output(), /GET http:\/\/127\.0\.0\.1:\d+\/hello\?x=1\n\s+<< 200 OK 11b$/m);
  } finally {
    assert.equal(await proxy.stop(), 0);
    await origin.close();
  }
});

Deno.test("proxy: keep-alive on both sides, the upstream connection is reused", async () => {
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, (head) => {
      const path = head.split(" ")[1];
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
    })
  );
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/a`, `${origin.url}/bb`, `${origin.url}/ccc`]);
    assert.equal(r.status, 200);
    assert.equal(r.body.replaceAll(/\n__STATUS__\d+/g, ""), "/a/bb/ccc");
    assert.equal((r.headers.match(/HTTP\/1.1 200/g) ?? []).length, 3);
    assert.equal(origin.connections, 1, "three requests over one upstream connection");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: HTTP/1.0 client, HEAD, 204 and 304 carry no body", async () => {
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, (head) => {
      const [method, path] = head.split(" ");
      if (path === "/204") s.write("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
      else if (path === "/304") s.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n');
      else if (method === "HEAD") s.write("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
      else s.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    })
  );
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const h10 = await curl(["-0", "-x", proxy.url, `${origin.url}/x`]);
    assert.equal(h10.body, "hello");
    const head = await curl(["-I", "-x", proxy.url, `${origin.url}/x`]);
    assert.equal(head.status, 200);
    assert.match(head.headers, /content-length: 1234/i, "HEAD keeps the entity's Content-Length");
    // Raw: a 204 and a 304 followed by a normal response on the same connection stay in sync.
    const raw = await rawExchange(
      proxy.port,
      `GET ${origin.url}/204 HTTP/1.1\r\nHost: x\r\n\r\nGET ${origin.url}/304 HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET ${origin.url}/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    const statuses = [...raw.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => m[1]);
    assert.deepEqual(statuses, ["204", "304", "200"]);
    assert.ok(raw.endsWith("hello"), raw);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: 1xx informational, chunked and close-delimited responses", async () => {
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, (head) => {
      const path = head.split(" ")[1];
      if (path === "/chunked") {
        s.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"); // informational first
        s.write(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        );
      } else {
        s.end("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
      }
    })
  );
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const c = await curl(["-x", proxy.url, `${origin.url}/chunked`]);
    assert.equal(c.body, "hello world");
    const e = await curl(["-x", proxy.url, `${origin.url}/eof`]);
    assert.equal(e.body, "until the end");
    assert.match(e.headers, /content-length: 13/i, "a buffered close-delimited body gets a length");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: Expect: 100-continue is answered by the proxy and stripped", async () => {
  let sawExpect: boolean | null = null;
  const origin = startOrigin(async (req) => {
    sawExpect = req.headers.has("expect");
    return new Response(String((await req.arrayBuffer()).byteLength));
  });
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const r = await curl([
      "-x",
      proxy.url,
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      "x".repeat(5000),
      `${origin.url}/up`,
    ]);
    assert.equal(r.body, "5000");
    assert.match(r.headers, /HTTP\/1.1 100 Continue/);
    assert.equal(sawExpect, false);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: hop-by-hop and Proxy-* headers are not forwarded", async () => {
  let head = "";
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, (h) => {
      head = h;
      s.write(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\nok",
      );
    })
  );
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const r = await curl([
      "-x",
      proxy.url,
      "-H",
      "Proxy-Connection: keep-alive",
      "-H",
      "Proxy-Authorization: Basic dTpw",
      "-H",
      "Connection: X-Custom",
      "-H",
      "X-Custom: secret",
      "-H",
      "X-Keep: me",
      `${origin.url}/h`,
    ]);
    assert.equal(r.body, "ok");
    assert.doesNotMatch(head, /proxy-connection|proxy-authorization|x-custom/i);
    assert.match(head, /X-Keep: me/);
    assert.match(head, /^Host: 127\.0\.0\.1:\d+/m);
    assert.doesNotMatch(r.headers, /x-hop|keep-alive: timeout/i);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: Content-Length keeps its name and place both ways, with the length actually sent", async () => {
  let head = "";
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, (h) => {
      head = h;
      s.write("HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 2\r\nx-b: 2\r\n\r\nok");
    })
  );
  // a body rewritten by an addon: the same field carries the new length
  const proxy = await startProxy(["--flow-detail", "0", "--set", "modify_body=/~s/ok/okay"]);
  try {
    const out = await rawExchange(
      proxy.port,
      `POST ${origin.url}/p HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nX-First: 1\r\ncontent-length: 3\r\n` +
        "X-Last: 1\r\nConnection: close\r\n\r\nabc",
    );
    assert.match(head, /\r\nX-First: 1\r\ncontent-length: 3\r\nX-Last: 1\r\n/);
    assert.match(out, /\r\nx-a: 1\r\ncontent-length: 4\r\nx-b: 2\r\n/);
    assert.match(out, /\r\n\r\nokay$/);
    assert.doesNotMatch(out, /Content-Length/, "no second, canonical-case field");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: pipelined requests are answered in order", async () => {
  const origin = startOrigin(async (req) => {
    const p = new URL(req.url).pathname;
    if (p === "/slow") await new Promise((r) => setTimeout(r, 200));
    return new Response(`<${p}>`);
  });
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const raw = await rawExchange(
      proxy.port,
      `GET ${origin.url}/slow HTTP/1.1\r\nHost: a\r\n\r\nGET ${origin.url}/fast HTTP/1.1\r\nHost: a\r\n\r\n` +
        `POST ${origin.url}/third HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
    );
    const bodies = [...raw.matchAll(/<(\/\w+)>/g)].map((m) => m[1]);
    assert.deepEqual(bodies, ["/slow", "/fast", "/third"]);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: malformed requests get 400 with a reason, and the proxy keeps serving", async () => {
  const origin = startOrigin(() => new Response("fine"));
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const cases: [string, number, RegExp][] = [
      ["GARBAGE\r\n\r\n", 400, /malformed request line/],
      ["GET /relative HTTP/1.1\r\nHost: x\r\n\r\n", 400, /absolute URL/],
      [`GET ${origin.url}/ HTTP/1.1\r\nBad Header\r\n\r\n`, 400, /malformed header line/],
      [
        `POST ${origin.url}/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`,
        400,
        /both Transfer-Encoding and Content-Length/,
      ],
      [`GET ${origin.url}/ HTTP/1.1\r\nX: ${"a".repeat(70000)}\r\n\r\n`, 431, /header section too large/],
      [`GET ${origin.url}/ HTTP/2.0\r\n\r\n`, 505, /unsupported HTTP version/],
      [`GET ftp://x/ HTTP/1.1\r\n\r\n`, 400, /unsupported scheme/],
    ];
    for (const [req, status, reason] of cases) {
      const raw = await rawExchange(proxy.port, req);
      assert.match(
        raw,
        new RegExp(`^HTTP/1.1 ${status} `),
        `${JSON.stringify(req.slice(0, 40))} -> ${raw.slice(0, 80)}`,
      );
      assert.match(raw, reason);
      assert.match(raw, /Connection: close/);
    }
    const ok = await curl(["-x", proxy.url, `${origin.url}/`]);
    assert.equal(ok.body, "fine");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: refused upstream gives 502, a silent one 504, each with a readable page", async () => {
  const closed = await startRawOrigin(() => {});
  const deadPort = closed.port;
  await closed.close();
  const silent = await startRawOrigin(() => {/* accepts, never answers */});
  const proxy = await startProxy(["--set", "tcp_timeout=1"]);
  try {
    const refused = await curl(["-x", proxy.url, `http://127.0.0.1:${deadPort}/`]);
    assert.equal(refused.status, 502);
    assert.match(refused.body, /Cannot connect to 127\.0\.0\.1:\d+: connection refused/);
    const timeout = await curl(["-x", proxy.url, `${silent.url}/`]);
    assert.equal(timeout.status, 504);
    assert.match(timeout.body, /timed out/i);
    await proxy.waitFor(/<< Server timed out/);
  } finally {
    await proxy.stop();
    await silent.close();
  }
});

Deno.test("proxy: CONNECT to a plain-HTTP port tunnels and still sees the requests", async () => {
  const origin = startOrigin((req) => new Response(`tunneled ${new URL(req.url).pathname}`));
  const proxy = await startProxy();
  try {
    const r = await curl(["-p", "-x", proxy.url, `${origin.url}/inside`]);
    assert.equal(r.status, 200);
    assert.equal(r.body, "tunneled /inside");
    assert.match(r.headers, /HTTP\/1.1 200 Connection established/);
    await proxy.waitFor(/GET http:\/\/127\.0\.0\.1:\d+\/inside\n\s+<< 200 OK/);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: a WebSocket-style 101 upgrade is relayed both ways", async () => {
  const origin = await startRawOrigin((s) => {
    let upgraded = false;
    s.on("data", (d: Uint8Array) => {
      const text = new TextDecoder().decode(d);
      if (!upgraded) {
        upgraded = true;
        s.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
      } else s.write(`echo:${text}`);
    });
  });
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const net = await import("node:net");
    const got = await new Promise<string>((resolve) => {
      const c = net.connect(proxy.port, "127.0.0.1");
      let buf = "";
      c.on("data", (d: Uint8Array) => {
        buf += new TextDecoder().decode(d);
        if (buf.includes("\r\n\r\n") && !buf.includes("echo:")) c.write("ping");
        if (buf.includes("echo:ping")) c.destroy();
      });
      c.on("close", () => resolve(buf));
      c.write(`GET ${origin.url}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n`);
    });
    assert.match(got, /^HTTP\/1.1 101 /);
    assert.match(got, /Upgrade: echo/i);
    assert.ok(got.endsWith("echo:ping"));
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("proxy: a request addressed to the proxy itself is refused instead of looping", async () => {
  const proxy = await startProxy(["--flow-detail", "0"]);
  try {
    const r = await curl(["-x", proxy.url, `http://127.0.0.1:${proxy.port}/`]);
    assert.equal(r.status, 400);
    assert.match(r.body, /this proxy itself/);
  } finally {
    await proxy.stop();
  }
});

Deno.test("proxy: inside CONNECT, a request whose first packet is only 'GET' is still seen as HTTP", async () => {
  const origin = startOrigin((req) => new Response(`seen ${new URL(req.url).pathname}`));
  const proxy = await startProxy();
  try {
    const net = await import("node:net");
    const got = await new Promise<string>((resolve) => {
      const c = net.connect(proxy.port, "127.0.0.1");
      let buf = "";
      c.setNoDelay(true);
      c.on("data", (d: Uint8Array) => {
        buf += new TextDecoder().decode(d);
        if (buf === "HTTP/1.1 200 Connection established\r\n\r\n") {
          c.write("GET");
          setTimeout(() => c.write(" /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 50);
        }
      });
      c.on("close", () => resolve(buf));
      c.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    assert.match(got, /seen \/split$/);
    await proxy.waitFor(/GET http:\/\/127\.0\.0\.1:\d+\/split\n\s+<< 200 OK/);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});
