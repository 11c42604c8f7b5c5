/**
 * WebSocket through the proxy with real clients and servers: the npm `ws` client and server (ws:// and
 * wss:// through CONNECT, deflate on and off, text, binary, fragmented, 10 MiB, close from either side, an
 * addon that rewrites, drops and injects) and headless Chromium on a wss:// page.
 */
import assert from "node:assert/strict";
import { CHROMIUM_ARGS } from "./web_helpers.ts";
import https from "node:https";
import http from "node:http";
import type net from "node:net";
import tls from "node:tls";
import * as wsModule from "npm:ws@8.23.0";

// the ws package has no type declarations of its own
const { WebSocket, WebSocketServer } = wsModule as any;
type WebSocket = any;
import { startInProcess } from "./helpers.ts";
import { connectTunnel } from "./tls_helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import { loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";
import type { HTTPFlow } from "../../lib/flow/flow.ts";

/** A ws echo origin: echoes every message; "close-me" makes it close with 4001 "server bye". */
async function wsOrigin(opts: { tls?: { dir: string }; deflate: boolean }) {
  let caFile = "";
  let server: http.Server | https.Server;
  if (opts.tls) {
    const ca = await loadOrCreateCA(`${opts.tls.dir}/origin-ca`, { basename: "testorigin" });
    const leaf = new CertStore(ca, { secureContext: false }).getCert({
      commonName: "localhost",
      sans: ["localhost", "127.0.0.1"],
    });
    caFile = ca.paths.certPem;
    server = https.createServer({ key: leaf.keyPem, cert: leaf.chainPem }, (_req, res) => {
      res.setHeader("content-type", "text/html");
      res.end("<html><body><p id=msg>wss page</p></body></html>");
    });
  } else server = http.createServer((_req, res) => res.end("plain"));
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: opts.deflate, maxPayload: 64 * 1024 * 1024 });
  const received: string[] = [];
  const extensions: string[] = [];
  const closes: [number, string][] = [];
  wss.on("connection", (ws: WebSocket, req: http.IncomingMessage) => {
    extensions.push(String(req.headers["sec-websocket-extensions"] ?? ""));
    ws.on("message", (data: Uint8Array, isBinary: boolean) => {
      const buf = data as Uint8Array;
      received.push(isBinary ? `binary:${buf.length}` : String(buf));
      if (!isBinary && String(buf).toLowerCase() === "close-me") return ws.close(4001, "server bye");
      ws.send(buf, { binary: isBinary });
    });
    ws.on("close", (code: number, reason: Uint8Array) => closes.push([code, String(reason)]));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    caFile,
    received,
    extensions,
    closes,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A ws client through a CONNECT tunnel of the proxy (TLS inside it for wss). */
async function wsClient(
  proxyPort: number,
  originPort: number,
  opts: { tls?: { ca: string }; deflate: boolean },
): Promise<WebSocket> {
  const target = `localhost:${originPort}`;
  const tunnel = await connectTunnel(proxyPort, target);
  const url = `${opts.tls ? "wss" : "ws"}://${target}/chat`;
  const ws = new WebSocket(url, {
    perMessageDeflate: opts.deflate,
    maxPayload: 64 * 1024 * 1024,
    createConnection: () =>
      opts.tls ? tls.connect({ socket: tunnel, servername: "localhost", ca: [opts.tls.ca] }) : tunnel,
  } as any);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return ws;
}

/** What a ws client received and nobody took yet, and who waits for the next one (see {@link nextMessage}). */
interface Inbox {
  got: { data: Uint8Array; binary: boolean }[];
  waiting: ((m: { data: Uint8Array; binary: boolean }) => void)[];
}
const inboxes = new WeakMap<WebSocket, Inbox>();

/**
 * The next message a ws client receives. Messages are collected from the first call on, so two that arrive
 * in one read (their events fire back to back, before an awaiting caller could listen again) are both kept.
 */
function nextMessage(ws: WebSocket, timeoutMs = 15000): Promise<{ data: Uint8Array; binary: boolean }> {
  let box = inboxes.get(ws);
  if (!box) {
    const b: Inbox = { got: [], waiting: [] };
    ws.on("message", (data: Uint8Array, binary: boolean) => {
      const m = { data: data as Uint8Array, binary };
      const w = b.waiting.shift();
      if (w) w(m);
      else b.got.push(m);
    });
    inboxes.set(ws, b);
    box = b;
  }
  const ready = box.got.shift();
  if (ready) return Promise.resolve(ready);
  const inbox = box;
  return new Promise((resolve, reject) => {
    const take = (m: { data: Uint8Array; binary: boolean }) => {
      clearTimeout(t);
      resolve(m);
    };
    const t = setTimeout(() => {
      inbox.waiting.splice(inbox.waiting.indexOf(take), 1);
      reject(new Error("no message"));
    }, timeoutMs);
    inbox.waiting.push(take);
  });
}

function closed(ws: WebSocket, timeoutMs = 15000): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("the client saw no close")), timeoutMs);
    ws.once("close", (code: number, reason: Uint8Array) => {
      clearTimeout(t);
      resolve([code, String(reason)]);
    });
  });
}

/** Records the WebSocket hooks (in order) and the flows. */
function recorder() {
  const events: string[] = [];
  const flows: HTTPFlow[] = [];
  return {
    name: "recorder",
    events,
    flows,
    response(f: HTTPFlow) {
      if (f.websocket) events.push("response(ws)");
    },
    websocket_start(f: HTTPFlow) {
      events.push("websocket_start");
      flows.push(f);
    },
    websocket_message(f: HTTPFlow) {
      const m = f.websocket!.messages.at(-1)!;
      events.push(
        `message:${m.fromClient ? "c" : "s"}:${
          m.isText ? m.text.slice(0, 20) : `binary:${m.content.length}`
        }`,
      );
    },
    websocket_end(_f: HTTPFlow) {
      events.push("websocket_end");
    },
  };
}

async function waitFor(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const deflate of [false, true]) {
  Deno.test(`websocket e2e: ws:// through CONNECT, deflate ${deflate ? "on" : "off"}: text, binary, fragmented, 10 MiB, client close`, async () => {
    const origin = await wsOrigin({ deflate });
    const rec = recorder();
    const proxy = await startInProcess([rec]);
    try {
      const ws = await wsClient(proxy.port, origin.port, { deflate });
      ws.send("hello");
      assert.equal(String((await nextMessage(ws)).data), "hello");
      ws.send(Uint8Array.of(0, 1, 2, 255));
      const bin = await nextMessage(ws);
      assert.equal(bin.binary, true);
      assert.deepEqual([...bin.data], [0, 1, 2, 255]);
      // a fragmented text message
      ws.send("frag-", { fin: false });
      ws.send("ment", { fin: true });
      assert.equal(String((await nextMessage(ws)).data), "frag-ment");
      const big = new Uint8Array(10 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
      ws.send(big);
      const back = await nextMessage(ws, 60000);
      assert.equal(back.data.length, big.length);
      assert.equal(Buffer.compare(Buffer.from(back.data), Buffer.from(big)), 0);
      const c = closed(ws);
      ws.close(1000, "bye");
      assert.deepEqual(await c, [1000, "bye"]);
      await waitFor(() => rec.events.includes("websocket_end"), "websocket_end");
      const f = rec.flows[0];
      const w = f.websocket!;
      assert.equal(w.messages.length, 8);
      assert.equal(w.closedByClient, true);
      assert.equal(w.closeCode, 1000);
      assert.equal(w.closeReason, "bye");
      assert.equal(origin.extensions[0].includes("permessage-deflate"), deflate);
      assert.deepEqual(rec.events.slice(0, 4), [
        "response(ws)",
        "websocket_start",
        "message:c:hello",
        "message:s:hello",
      ]);
      assert.equal(rec.events.at(-1), "websocket_end");
      assert.ok(rec.events.includes(`message:c:binary:${big.length}`));
    } finally {
      await proxy.stop();
      await origin.close();
    }
  });
}

Deno.test("websocket e2e: wss:// through CONNECT + TLS with deflate: an addon rewrites, drops and injects; the server closes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-wss-" });
  const origin = await wsOrigin({ tls: { dir }, deflate: true });
  const tlsconfig = new TlsConfig();
  const rec = recorder();
  const rewriter = {
    name: "rewriter",
    websocket_message(f: HTTPFlow) {
      const m = f.websocket!.messages.at(-1)!;
      if (!m.fromClient || m.injected) return;
      if (m.text === "drop me") m.drop();
      else if (m.text === "inject") f.websocket!.inject(true, "injected by the proxy");
      else if (m.isText) m.text = m.text.toUpperCase();
    },
  };
  const proxy = await startInProcess([tlsconfig, rec, rewriter], [
    `confdir=${dir}/conf`,
    `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
  ]);
  try {
    const ws = await wsClient(proxy.port, origin.port, { tls: { ca: tlsconfig.ca!.certPem }, deflate: true });
    ws.send("hello");
    assert.equal(String((await nextMessage(ws)).data), "HELLO");
    ws.send("drop me");
    ws.send("inject");
    assert.equal(String((await nextMessage(ws)).data), "injected by the proxy");
    assert.equal(String((await nextMessage(ws)).data), "inject");
    await waitFor(() => origin.received.length >= 2, "the origin's messages");
    assert.deepEqual(origin.received, ["HELLO", "inject"]);
    const c = closed(ws);
    ws.send("close-me");
    assert.deepEqual(await c, [4001, "server bye"]);
    await waitFor(() => rec.events.includes("websocket_end"), "websocket_end");
    const w = rec.flows[0].websocket!;
    assert.equal(w.closedByClient, false);
    assert.equal(w.closeCode, 4001);
    assert.equal(w.closeReason, "server bye");
    assert.ok(w.messages.some((m) => m.dropped && m.text === "drop me"));
    assert.ok(w.messages.some((m) => m.injected && !m.fromClient));
    assert.equal(origin.extensions[0].includes("permessage-deflate"), true);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("websocket e2e: without a recorder (websocket_keep_messages auto) a flow holds only the message being handled", async () => {
  const origin = await wsOrigin({ deflate: false });
  const seen: number[] = [];
  let flow: HTTPFlow | null = null;
  // an addon with no websocket_end hook: nothing needs the history
  const watcher = {
    name: "watcher",
    websocket_message(f: HTTPFlow) {
      flow = f;
      seen.push(f.websocket!.messages.length);
      const m = f.websocket!.messages.at(-1)!;
      if (m.fromClient) m.text = m.text.toUpperCase();
    },
  };
  const proxy = await startInProcess([watcher]);
  try {
    const ws = await wsClient(proxy.port, origin.port, { deflate: false });
    for (let i = 0; i < 50; i++) {
      ws.send(`message ${i}`);
      assert.equal(String((await nextMessage(ws)).data), `MESSAGE ${i}`);
    }
    const c = closed(ws);
    ws.close(1000);
    await c;
    assert.equal(seen.length, 100);
    assert.ok(seen.every((n) => n === 1), `messages seen per hook: ${seen}`);
    assert.equal(flow!.websocket!.messages.length, 0);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("websocket e2e: the websocket option off relays raw: no messages recorded, echo still works", async () => {
  const origin = await wsOrigin({ deflate: true });
  const rec = recorder();
  const proxy = await startInProcess([rec], ["websocket=false"]);
  try {
    const ws = await wsClient(proxy.port, origin.port, { deflate: true });
    ws.send("raw");
    assert.equal(String((await nextMessage(ws)).data), "raw");
    const c = closed(ws);
    ws.close(1000);
    await c;
    assert.deepEqual(rec.flows, []);
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "websocket e2e: headless Chromium on a wss:// page: messages both ways, a hook's rewrite, deflate",
  ignore: !haveChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { chromium } = await import("npm:playwright-core@1.65.1");
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-ws-chromium-" });
    const origin = await wsOrigin({ tls: { dir }, deflate: true });
    const tlsconfig = new TlsConfig();
    const rec = recorder();
    const rewriter = {
      name: "rewriter",
      websocket_message(f: HTTPFlow) {
        const m = f.websocket!.messages.at(-1)!;
        if (!m.fromClient && m.isText) m.text = `${m.text} (via mitmdeno)`;
      },
    };
    const proxy = await startInProcess([tlsconfig, rec, rewriter], [
      `confdir=${dir}/conf`,
      `ssl_verify_upstream_trusted_ca=${origin.caFile}`,
    ]);
    const browser = await chromium.launchPersistentContext(`${dir}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        ...CHROMIUM_ARGS,
        `--proxy-server=http://127.0.0.1:${proxy.port}`,
        "--proxy-bypass-list=<-loopback>",
        `--ignore-certificate-errors-spki-list=${tlsconfig.ca!.spkiSha256Base64}`,
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`https://localhost:${origin.port}/`, { timeout: 15000 });
      const got = await page.evaluate(`new Promise((resolve, reject) => {
        const ws = new WebSocket("wss://localhost:${origin.port}/chat");
        const out = [];
        ws.binaryType = "arraybuffer";
        ws.onerror = () => reject(new Error("ws error"));
        ws.onopen = () => { ws.send("from chromium"); ws.send(new Uint8Array([1, 2, 3])); };
        ws.onmessage = (e) => {
          out.push(typeof e.data === "string" ? e.data : "binary:" + new Uint8Array(e.data).join(","));
          if (out.length === 2) { ws.close(1000, "done"); resolve(out.concat([ws.extensions])); }
        };
      })`) as string[];
      assert.deepEqual(got, ["from chromium (via mitmdeno)", "binary:1,2,3", "permessage-deflate"]);
      await waitFor(() => rec.events.includes("websocket_end"), "websocket_end");
      const w = rec.flows[0].websocket!;
      assert.equal(w.closeCode, 1000);
      assert.equal(w.closedByClient, true);
      assert.equal(w.messages.length, 4);
    } finally {
      await browser.close();
      await proxy.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("websocket e2e: a sandboxed script (-s) rewrites, drops and injects; websocket_end sees every message", async () => {
  const { startProxy } = await import("./helpers.ts");
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-ws-script-" });
  const script = `${dir}/ws.ts`;
  await Deno.writeTextFile(
    script,
    `import { ctx, type HTTPFlow } from "mitmdeno";
export function websocket_message(flow: HTTPFlow) {
  const m = flow.websocket!.messages.at(-1)!;
  if (!m.fromClient || m.injected) return;
  if (m.text === "drop me") m.drop();
  else if (m.text === "inject") flow.websocket!.inject(true, "injected by a script");
  else m.text = m.text.toUpperCase();
}
export function websocket_end(flow: HTTPFlow) {
  const ws = flow.websocket!;
  ctx.log.info("ws end: " + ws.messages.length + " messages, dropped " +
    ws.messages.filter((m) => m.dropped).map((m) => m.text).join() + ", code " + ws.closeCode);
}
`,
  );
  const origin = await wsOrigin({ deflate: false });
  const p = await startProxy(["-s", script]);
  try {
    await p.waitFor(/Loading script/);
    const ws = await wsClient(p.port, origin.port, { deflate: false });
    ws.send("hello");
    assert.equal(String((await nextMessage(ws)).data), "HELLO");
    ws.send("drop me");
    ws.send("inject");
    assert.equal(String((await nextMessage(ws)).data), "injected by a script");
    assert.equal(String((await nextMessage(ws)).data), "inject");
    const c = closed(ws);
    ws.close(1000, "done");
    await c;
    await p.waitFor(/ws end: 6 messages, dropped drop me, code 1000/, 15000);
    assert.deepEqual(origin.received, ["HELLO", "inject"]);
  } finally {
    await p.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
