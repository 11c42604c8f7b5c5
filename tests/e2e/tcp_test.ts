/**
 * Raw TCP through a CONNECT tunnel with real sockets: a line protocol where the client speaks first (no
 * HTTP request line: TCP at once, not after a wait) and one where the server speaks first (a banner); with
 * the tcp_simple example as an addon the messages are recorded and rewritten, without any a native relay.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { startInProcess } from "./helpers.ts";
import { connectTunnel } from "./tls_helpers.ts";
import type { TCPFlow } from "../../lib/flow/tcp.ts";
import * as tcpSimple from "../../addons/examples/tcp_simple.ts";

/** A line server: optional banner, then "echo: LINE" per line; `lines` has every line it got. */
async function lineServer(banner: string | null = null) {
  const lines: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    if (banner) s.write(banner);
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        s.write(`echo: ${line}\n`);
      }
    });
    s.on("end", () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    lines,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function readUntil(s: net.Socket, re: RegExp, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => reject(new Error(`timeout, got ${JSON.stringify(buf)}`)), ms);
    const on = (d: Uint8Array) => {
      buf += new TextDecoder().decode(d);
      if (re.test(buf)) {
        clearTimeout(t);
        s.off("data", on);
        resolve(buf);
      }
    };
    s.on("data", on);
  });
}

for (const withFlows of [false, true]) {
  Deno.test(`tcp e2e: client speaks first, then a server-first banner protocol (${withFlows ? "TCP flows + tcp_simple" : "native relay"})`, async () => {
    const flows: TCPFlow[] = [];
    const ends: string[] = [];
    const addons = withFlows
      ? [{
        name: "tcpsimple",
        tcp_start: (f: TCPFlow) => void flows.push(f),
        tcp_message: tcpSimple.tcp_message,
        tcp_end: (f: TCPFlow) => void ends.push(f.id),
      }]
      : [];
    const proxy = await startInProcess(addons);
    const plain = await lineServer(null);
    const banner = await lineServer("220 ready foo\n");
    try {
      // the client speaks first with bytes that are not an HTTP request line
      const a = await connectTunnel(proxy.port, `127.0.0.1:${plain.port}`);
      const t0 = Date.now();
      a.write("\x01foo line\n");
      const got = await readUntil(a, /echo: .*\n/);
      assert.ok(Date.now() - t0 < 2000, `answered after ${Date.now() - t0} ms`);
      assert.equal(got, withFlows ? "echo: \x01bar line\n" : "echo: \x01foo line\n");
      a.end();
      // the server speaks first
      const b = await connectTunnel(proxy.port, `127.0.0.1:${banner.port}`);
      const hello = await readUntil(b, /220 .*\n/, 8000);
      assert.equal(hello, withFlows ? "220 ready bar\n" : "220 ready foo\n");
      b.write("hi\n");
      assert.equal(await readUntil(b, /echo: hi\n/), "echo: hi\n");
      b.end();
      if (withFlows) {
        const end = Date.now() + 5000;
        while (ends.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        assert.equal(ends.length, 2);
        assert.deepEqual(flows[0].messages.map((m) => [m.fromClient, m.text]), [
          [true, "\x01bar line\n"],
          [false, "echo: \x01bar line\n"],
        ]);
        assert.equal(flows[1].messages[0].fromClient, false);
      }
      a.destroy();
      b.destroy();
    } finally {
      await proxy.stop();
      await plain.close();
      await banner.close();
    }
  });
}

/** Write one line and wait until the server has it (TCP may merge writes: one message per line). */
async function sendLine(s: net.Socket, origin: { lines: string[] }, line: string): Promise<void> {
  const n = origin.lines.length;
  s.write(line + "\n");
  const deadline = Date.now() + 5000;
  while (origin.lines.length <= n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
}

const TCP_SCRIPT = `import { ctx, type TCPFlow } from "mitmdeno";
export function tcp_start(flow: TCPFlow) {
  ctx.log.info("tcp start " + flow.serverConn.address?.join(":") + " messages=" + flow.messages.length);
}
export function tcp_message(flow: TCPFlow) {
  const m = flow.messages.at(-1)!;
  if (!m.fromClient || m.injected) return;
  if (m.text === "drop me\\n") m.content = new Uint8Array(0);
  else if (m.text === "ping\\n") flow.inject(true, "injected pong\\n");
  else m.text = m.text.replaceAll("foo", "bar");
}
export function tcp_end(flow: TCPFlow) {
  ctx.log.info("tcp end " + flow.serverConn.address?.join(":") + " " +
    JSON.stringify(flow.messages.map((m) => [m.fromClient, m.injected, m.text])));
}
`;

const THROWING_SCRIPT = `export function tcp_message(flow: any) {
  const m = flow.messages.at(-1);
  m.text = "never seen";
  throw new Error("tcp hook broke");
}
`;

Deno.test("tcp e2e: sandboxed scripts (-s): rewrite, drop and inject; tcp_start/tcp_end in order; a throwing tcp_message is logged, traffic goes on", async () => {
  const { startProxy } = await import("./helpers.ts");
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tcp-script-" });
  await Deno.writeTextFile(`${dir}/tcp.ts`, TCP_SCRIPT);
  await Deno.writeTextFile(`${dir}/throws.ts`, THROWING_SCRIPT);
  const origin = await lineServer();
  const p = await startProxy(["-s", `${dir}/tcp.ts`, "-s", `${dir}/throws.ts`]);
  try {
    const s = await connectTunnel(p.port, `127.0.0.1:${origin.port}`);
    const got = readUntil(s, /echo: ping\n/, 10000);
    // the client speaks first with bytes that are not an HTTP request line: TCP at once
    await sendLine(s, origin, "\x01foo one");
    // nothing reaches the server for a dropped message: wait for the dumper's line for it instead
    const seen = () => p.output().split(" -> tcp -> ").length;
    const before = seen();
    s.write("drop me\n");
    const deadline = Date.now() + 5000;
    while (seen() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await sendLine(s, origin, "ping");
    const text = await got;
    assert.equal(text, "echo: \x01bar one\ninjected pong\necho: ping\n");
    assert.deepEqual(origin.lines, ["\x01bar one", "ping"]);
    s.end();
    const where = `127.0.0.1:${origin.port}`;
    await p.waitFor(new RegExp(`tcp end ${where} `), 15000);
    const out = p.output();
    assert.ok(out.indexOf(`tcp start ${where} messages=0`) < out.indexOf(`tcp end ${where}`), out);
    const end = JSON.parse(new RegExp(`tcp end ${where} (.*)`).exec(out)![1]);
    assert.deepEqual(end, [
      [true, false, "\x01bar one\n"],
      [false, false, "echo: \x01bar one\n"],
      [true, false, ""],
      [true, false, "ping\n"],
      [false, true, "injected pong\n"],
      [false, false, "echo: ping\n"],
    ]);
    assert.match(out, /Addon error in throws\.ts\.tcp_message: .*tcp hook broke.*throws\.ts:4:\d+/);
    assert.doesNotMatch(out, /never seen|not available to sandboxed scripts/);
    s.destroy();
  } finally {
    await p.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tcp e2e: a sandboxed script's TCP hooks make tcp_hosts produce TCP flows as a built-in's do; ignored hosts stay a passthrough", async () => {
  const { ScriptLoader } = await import("../../lib/addons/script/loader.ts");
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-tcp-hosts-" });
  await Deno.writeTextFile(
    `${dir}/tcp.ts`,
    `import { ctx, type TCPFlow } from "mitmdeno";
export function tcp_message(flow: TCPFlow) {
  const m = flow.messages.at(-1)!;
  m.text = m.text.replaceAll("foo", "bar");
  ctx.log.info("script saw " + JSON.stringify(m.text));
}
`,
  );
  const origin = await lineServer();
  const ignored = await lineServer();
  // no dumper: only the script has TCP hooks
  const loaderProxy = await startInProcess([], [
    `tcp_hosts=^127\\.0\\.0\\.1:${origin.port}$`,
    `ignore_hosts=^127\\.0\\.0\\.1:${ignored.port}$`,
    "script_timeout=60",
  ]);
  try {
    const loader = new ScriptLoader(loaderProxy.master, { watch: false });
    await loaderProxy.master.addons.add(loader);
    await loaderProxy.master.options.update({ scripts: [`${dir}/tcp.ts`] });
    assert.ok(loaderProxy.master.addons.has("tcp_message"), loaderProxy.logs.join("\n"));
    // tcp_hosts: a TCP flow even for bytes that look like HTTP
    const a = await connectTunnel(loaderProxy.port, `127.0.0.1:${origin.port}`);
    const echo = readUntil(a, /echo: .*\n/);
    a.write("GET /foo HTTP/1.1\n");
    assert.equal(await echo, "echo: GET /bar HTTP/1.1\n");
    assert.ok(
      loaderProxy.logs.some((l) => l.includes('script saw "GET /bar HTTP/1.1\\n"')),
      loaderProxy.logs.join("\n"),
    );
    a.destroy();
    // ignored: relayed untouched, the script sees nothing
    const n = loaderProxy.logs.length;
    const b = await connectTunnel(loaderProxy.port, `127.0.0.1:${ignored.port}`);
    const plain = readUntil(b, /echo: .*\n/);
    b.write("\x01foo\n");
    assert.equal(await plain, "echo: \x01foo\n");
    assert.ok(!loaderProxy.logs.slice(n).some((l) => l.includes("script saw")), loaderProxy.logs.join("\n"));
    b.destroy();
  } finally {
    await loaderProxy.stop();
    await origin.close();
    await ignored.close();
    await Deno.remove(dir, { recursive: true });
  }
});
