import assert from "node:assert/strict";
import { context, tflow, treq, tresp } from "mitmdeno/testing";
import { type HTTPFlow, Request } from "mitmdeno";
import { Export, harEntry } from "../../addons/export.ts";

const dec = new TextDecoder();

Deno.test("export: formats, curl, httpie", async () => {
  const ex = new Export();
  await using tctx = await context(ex);
  assert.deepEqual(await tctx.command("export.formats"), [
    "curl",
    "har",
    "httpie",
    "raw",
    "raw_request",
    "raw_response",
  ]);
  const f = tflow({
    req: Request.make("POST", "http://example.com/path?a=1", "it's a body", { "accept-encoding": "gzip" }),
  });
  f.serverConn.address = ["example.com", 80];
  assert.equal(
    await tctx.command("export", "curl", f),
    `curl --compressed -X POST 'http://example.com/path?a=1' -d 'it'"'"'s a body'`,
  );
  const g = tflow({ req: treq() });
  assert.equal(
    await tctx.command("export", "curl", g),
    "curl -H 'header: qvalue' http://address:22/path -d content",
  );
  // export_preserve_original_ip (off by default): --resolve to the IP the proxy connected to (peername)
  g.serverConn.peername = ["192.168.0.1", 22];
  assert.doesNotMatch(String(await tctx.command("export", "curl", g)), /--resolve/);
  await tctx.configure(ex, { export_preserve_original_ip: true });
  assert.equal(
    await tctx.command("export", "curl", g),
    "curl --resolve 'address:22:[192.168.0.1]' -H 'header: qvalue' http://address:22/path -d content",
  );
  g.serverConn.peername = ["address", 22]; // the same as the host: nothing to pin
  assert.doesNotMatch(String(await tctx.command("export", "curl", g)), /--resolve/);
  await tctx.configure(ex, { export_preserve_original_ip: false });
  assert.equal(
    await tctx.command("export", "httpie", g),
    "http GET http://address:22/path 'header: qvalue' <<< content",
  );
  await assert.rejects(tctx.command("export", "nope", g), /No such export format/);
});

Deno.test("export: raw, raw_request, raw_response, file, HAR entry", async () => {
  const ex = new Export();
  await using tctx = await context(ex);
  const f = tflow({ resp: true });
  assert.equal(
    dec.decode(await tctx.command("export", "raw_request", f) as Uint8Array),
    "GET /path HTTP/1.1\r\nheader: qvalue\r\ncontent-length: 7\r\n\r\ncontent",
  );
  assert.equal(
    dec.decode(await tctx.command("export", "raw_response", f) as Uint8Array),
    "HTTP/1.1 200 OK\r\nheader-response: svalue\r\ncontent-length: 7\r\n\r\nmessage",
  );
  const raw = dec.decode(await tctx.command("export", "raw", f) as Uint8Array);
  assert.ok(raw.includes("content\r\n\r\nHTTP/1.1 200 OK"));
  await assert.rejects(tctx.command("export", "raw_response", tflow()), /no response/);
  const path = await Deno.makeTempFile();
  try {
    await tctx.command("export.file", "curl", f, path);
    assert.match(await Deno.readTextFile(path), /^curl /);
  } finally {
    await Deno.remove(path);
  }
  const gz = tflow({
    resp: tresp({ headers: [["content-type", "text/plain"], ["content-encoding", "gzip"]] }),
  });
  gz.response!.content = "hello";
  const e = harEntry(gz) as any;
  assert.equal(e.request.method, "GET");
  assert.equal(e.request.url, "http://address:22/path");
  assert.equal(e.response.status, 200);
  assert.equal(e.response.content.text, "hello");
  assert.equal(e.response.content.mimeType, "text/plain");
  assert.equal(e.startedDateTime, new Date(946681200000).toISOString());
  assert.equal(e.timings.wait, 1000);
  assert.equal(JSON.parse(await tctx.command("export", "har", gz) as string).response.status, 200);
});

Deno.test("export: export_preserve_original_ip on a flow through the proxy; the curl command runs", async () => {
  const { startInProcess, startOrigin } = await import("../e2e/helpers.ts");
  const origin = startOrigin((req) => new Response(`origin got ${new URL(req.url).pathname}`));
  const ex = new Export();
  const flows: HTTPFlow[] = [];
  const proxy = await startInProcess([ex, { name: "rec", response: (f: HTTPFlow) => void flows.push(f) }]);
  try {
    const via = await new Deno.Command("curl", {
      args: ["-sS", "-x", proxy.url, `http://localhost:${origin.port}/p`],
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(via.stdout), "origin got /p");
    const f = flows[0];
    assert.equal(f.serverConn.peername?.[0], "127.0.0.1");
    const plain = String(await proxy.master.commands.call("export", "curl", f));
    assert.doesNotMatch(plain, /--resolve/);
    await proxy.master.options.set(["export_preserve_original_ip=true"]);
    const cmd = String(await proxy.master.commands.call("export", "curl", f));
    assert.match(cmd, new RegExp(`^curl --resolve 'localhost:${origin.port}:\\[127\\.0\\.0\\.1\\]' `));
    // the exported command reproduces the request against the same IP
    const out = await new Deno.Command("sh", { args: ["-c", `${cmd} -sS`], stdout: "piped" }).output();
    assert.equal(new TextDecoder().decode(out.stdout), "origin got /p");
  } finally {
    await proxy.stop();
    await origin.close();
  }
});
