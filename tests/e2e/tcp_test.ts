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

/** A line server: optional banner, then "echo: LINE" per line. */
async function lineServer(banner: string | null) {
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
        s.write(`echo: ${line}\n`);
      }
    });
    s.on("end", () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
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
