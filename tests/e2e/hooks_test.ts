/**
 * Hooks through a real proxy (in-process master, real sockets, curl as the client): event order,
 * answering from a hook with no upstream connection, error isolation, kill, streaming, size limits.
 */
import assert from "node:assert/strict";
import { curl, onRequestHead, rawExchange, startInProcess, startOrigin, startRawOrigin } from "./helpers.ts";
import { type HTTPFlow, Response } from "../../mod.ts";

Deno.test("hooks: fire in mitmproxy's order for a plain HTTP request", async () => {
  const origin = startOrigin(() => new globalThis.Response("ok"));
  const events: string[] = [];
  const recorder: Record<string, unknown> = { name: "recorder" };
  // subscribe to each event, then expect them all, in exactly this order
  const expected = [
    "client_connected",
    "requestheaders",
    "request",
    "server_connect",
    "server_connected",
    "responseheaders",
    "response",
    "server_disconnected",
    "client_disconnected",
  ];
  for (const e of expected) recorder[e] = () => void events.push(e);
  const proxy = await startInProcess([recorder]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/`]);
    assert.equal(r.body, "ok");
    const deadline = Date.now() + 3000;
    while (!events.includes("client_disconnected") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(events, expected);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: a request hook that sets flow.response answers with no upstream connection", async () => {
  const origin = await startRawOrigin((s) => s.destroy());
  const seen: string[] = [];
  const addon = {
    name: "answer",
    async request(flow: HTTPFlow) {
      await new Promise((r) => setTimeout(r, 5)); // async hooks are awaited
      flow.response = Response.make(418, "from the hook", { "x-why": "demo" });
    },
    response(flow: HTTPFlow) {
      seen.push(`${flow.response!.statusCode}`);
    },
    server_connect() {
      seen.push("server_connect");
    },
  };
  const proxy = await startInProcess([addon]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/x`]);
    assert.equal(r.status, 418);
    assert.equal(r.body, "from the hook");
    assert.match(r.headers, /x-why: demo/);
    assert.equal(origin.connections, 0);
    assert.deepEqual(seen, ["418"]);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: a throwing hook is logged with file:line and the flow goes on", async () => {
  const origin = startOrigin(() => new globalThis.Response("still fine"));
  const addon = {
    name: "broken",
    request(_flow: HTTPFlow) {
      throw new Error("boom in request");
    },
  };
  const later = {
    name: "later",
    response(flow: HTTPFlow) {
      flow.response!.headers.set("x-later", "ran");
    },
  };
  const proxy = await startInProcess([addon, later]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/`]);
    assert.equal(r.body, "still fine");
    assert.match(r.headers, /x-later: ran/);
    const line = proxy.logs.find((l) => l.includes("boom in request"));
    assert.ok(line, proxy.logs.join("\n"));
    assert.match(
      line!,
      /^error: Addon error in broken\.request: boom in request \(at .*hooks_test\.ts:\d+:\d+\)/,
    );
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: headers and bodies changed in hooks reach the server and the client", async () => {
  let seenHead = "";
  const origin = await startRawOrigin((s) => {
    let buf = "";
    s.on("data", (d: Uint8Array) => {
      buf += new TextDecoder().decode(d);
      if (buf.includes("\r\n\r\n") && buf.endsWith("CHANGED")) {
        seenHead = buf;
        s.write("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 17\r\n\r\n<b>html page</b>!");
      }
    });
  });
  const addon = {
    name: "rewrite",
    request(flow: HTTPFlow) {
      flow.request.headers.set("x-added", "1");
      flow.request.text = "CHANGED";
    },
    response(flow: HTTPFlow) {
      flow.response!.headers.set("newheader", "foo");
      flow.response!.text = flow.response!.text!.replaceAll("html", "fakehtml");
    },
  };
  const proxy = await startInProcess([addon]);
  try {
    const r = await curl(["-x", proxy.url, "-d", "original", `${origin.url}/`]);
    assert.equal(r.body, "<b>fakehtml page</b>!");
    assert.match(r.headers, /newheader: foo/);
    assert.match(r.headers, /content-length: 21/i);
    assert.match(seenHead, /x-added: 1/);
    assert.match(seenHead, /Content-Length: 7\r\n/);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: gzip bodies are decoded for hooks and re-encoded", async () => {
  const { gzipSync, gunzipSync } = await import("node:zlib");
  const origin = startOrigin(() =>
    new globalThis.Response(new Uint8Array(gzipSync(new TextEncoder().encode("compressed hello"))), {
      headers: { "content-encoding": "gzip", "content-type": "text/plain" },
    })
  );
  let seen = "";
  const proxy = await startInProcess([{
    name: "gz",
    response(flow: HTTPFlow) {
      seen = flow.response!.text!;
      flow.response!.text = seen.toUpperCase();
    },
  }]);
  try {
    const out = await Deno.makeTempFile();
    const r = await new Deno.Command("curl", { args: ["-sS", "-x", proxy.url, "-o", out, `${origin.url}/`] })
      .output();
    assert.equal(r.code, 0);
    assert.equal(seen, "compressed hello");
    assert.equal(new TextDecoder().decode(gunzipSync(await Deno.readFile(out))), "COMPRESSED HELLO");
    await Deno.remove(out);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: flow.kill() closes the connection without a response", async () => {
  const origin = startOrigin(() => new globalThis.Response("never"));
  const errors: string[] = [];
  const proxy = await startInProcess([{
    name: "killer",
    requestheaders(flow: HTTPFlow) {
      if (flow.request.path === "/kill") flow.kill();
    },
    error(flow: HTTPFlow) {
      errors.push(flow.error!.msg);
    },
  }]);
  try {
    const raw = await rawExchange(proxy.port, `GET ${origin.url}/kill HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(raw, "");
    assert.deepEqual(errors, ["Connection killed."]);
    const ok = await curl(["-x", proxy.url, `${origin.url}/fine`]);
    assert.equal(ok.body, "never");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: response.stream with a transformer streams and rewrites chunks", async () => {
  const origin = await startRawOrigin((s) =>
    onRequestHead(s, () => {
      s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      s.write("5\r\nabcde\r\n");
      setTimeout(() => s.write("3\r\nfgh\r\n0\r\n\r\n"), 50);
    })
  );
  let responseHookBody: Uint8Array | null | undefined;
  const proxy = await startInProcess([{
    name: "streamer",
    responseheaders(flow: HTTPFlow) {
      flow.response!.stream = (chunk: Uint8Array) =>
        new TextEncoder().encode(new TextDecoder().decode(chunk).toUpperCase());
    },
    response(flow: HTTPFlow) {
      responseHookBody = flow.response!.rawContent;
    },
  }]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/`]);
    assert.equal(r.body, "ABCDEFGH");
    assert.equal(responseHookBody, null, "streamed bodies are not kept");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: body_size_limit answers 413 for big requests and 502 for big responses", async () => {
  const origin = startOrigin((req) =>
    new globalThis.Response(new URL(req.url).pathname === "/big" ? "x".repeat(5000) : "small")
  );
  const errors: string[] = [];
  const proxy = await startInProcess([{
    name: "errs",
    error: (f: HTTPFlow) => void errors.push(f.error!.msg),
  }], [
    "body_size_limit=1k",
  ]);
  try {
    const up = await curl(["-x", proxy.url, "--data-binary", "y".repeat(3000), `${origin.url}/small`]);
    assert.equal(up.status, 413);
    const down = await curl(["-x", proxy.url, `${origin.url}/big`]);
    assert.equal(down.status, 502);
    assert.match(down.body, /body_size_limit/);
    assert.ok(errors.some((e) => /Response body exceeds/.test(e)), errors.join());
    const ok = await curl(["-x", proxy.url, `${origin.url}/small`]);
    assert.equal(ok.body, "small");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("hooks: options reject bad values with the option's name", async () => {
  const proxy = await startInProcess([]);
  try {
    await assert.rejects(() => proxy.master.options.set(["stream_large_bodies=lots"]), /stream_large_bodies/);
    await assert.rejects(
      () => proxy.master.options.set(["connection_strategy=sometimes"]),
      /one of eager, lazy/,
    );
    await assert.rejects(
      () => proxy.master.options.set(["mode=bogus"]),
      /Option "mode": invalid mode "bogus"/,
    );
    assert.equal(proxy.master.options.stream_large_bodies, null, "rolled back");
  } finally {
    await proxy.stop();
  }
});

Deno.test("hooks: CR/LF put into a header by an addon cannot split the response", async () => {
  const origin = startOrigin(() => new globalThis.Response("ok"));
  const proxy = await startInProcess([{
    name: "splitter",
    response(flow: HTTPFlow) {
      flow.response!.headers.set("x-evil", "a\r\nX-Injected: 1");
    },
  }]);
  try {
    const r = await curl(["-x", proxy.url, `${origin.url}/`]);
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.headers, /x-injected/i);
    assert.match(r.body, /invalid character \(CR, LF or NUL\) in the value of header x-evil/);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});
