/**
 * Flow files with WebSocket messages and TCP flows, both ways with the installed mitmdump 8.1.1: mitmdump
 * records a ws:// session and a raw TCP exchange, we read every message, filter them, and write them (v17)
 * so that mitmdump reads them again with the messages intact.
 */
import assert from "node:assert/strict";
import net from "node:net";
import * as wsModule from "npm:ws@8.23.0";
import { connectTunnel } from "./tls_helpers.ts";
import { readAnyFlows } from "../../lib/io/flowfile.ts";
import { FlowWriter } from "../../lib/io/flowfile.ts";
import { HTTPFlow } from "../../lib/flow/flow.ts";
import { TCPFlow } from "../../lib/flow/tcp.ts";
import { matchFilter } from "../../lib/flow/filter.ts";

const { WebSocket, WebSocketServer } = wsModule as any;
const MITMDUMP = "/usr/bin/mitmdump";
const HAS_MITMDUMP = (() => {
  try {
    return Deno.statSync(MITMDUMP).isFile;
  } catch {
    return false;
  }
})();

/** `p`, or a failure naming `what` after `ms`. */
function within<T>(p: Promise<T>, what: string, ms = 10000): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))),
  ]);
}

async function listen(
  server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown },
) {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as net.AddressInfo).port;
}

Deno.test({
  name:
    "flowfile e2e: mitmdump 8.1.1's WebSocket and TCP flows read, filtered, written as v17 and read by it again",
  ignore: !HAS_MITMDUMP,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-wsff-" });
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => wss.on("listening", r));
    const wsPort = wss.address().port;
    wss.on(
      "connection",
      (s: any) => s.on("message", (d: Uint8Array, bin: boolean) => s.send(d, { binary: bin })),
    );
    const tcpServer = net.createServer((s) => {
      s.on("error", () => {});
      s.on("data", (d) => s.write(`echo: ${d}`));
      s.on("end", () => s.end());
    });
    const tcpPort = await listen(tcpServer);
    const child = new Deno.Command(MITMDUMP, {
      args: [
        "--listen-host",
        "127.0.0.1",
        "-p",
        "0",
        "--set",
        "tcp_hosts=^localhost",
        "-w",
        `${dir}/py.mitm`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const dec = new TextDecoder();
    const pumps = [child.stdout, child.stderr].map(async (s) => {
      for await (const c of s) out += dec.decode(c);
    });
    try {
      const deadline = Date.now() + 20000;
      let port = 0;
      while (!port) {
        const m = /listening at 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) port = Number(m[1]);
        else if (Date.now() > deadline) throw new Error(`mitmdump did not start: ${out}`);
        else await new Promise((r) => setTimeout(r, 100));
      }
      // a WebSocket session through mitmdump
      const tunnel = await connectTunnel(port, `127.0.0.1:${wsPort}`);
      const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/ws`, { createConnection: () => tunnel });
      await within(new Promise((r) => ws.once("open", r)), "ws open");
      const got = new Promise((r) => ws.once("message", r));
      ws.send("hello websocket");
      await within(got, "ws echo");
      const closed = new Promise((r) => ws.once("close", r));
      ws.close(1000, "bye");
      await within(closed, "ws close");
      // a TCP exchange through mitmdump
      const t = await connectTunnel(port, `localhost:${tcpPort}`);
      const echoed = new Promise((r) => t.once("data", r));
      t.write("tcp hello");
      await within(echoed, "tcp echo");
      t.end();
      // mitmdump keeps a half-closed TCP flow open: give it the FIN, then go
      await new Promise((r) => setTimeout(r, 500));
      t.destroy();
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await Promise.all(pumps);
      for (const c of wss.clients) c.terminate();
      wss.close();
      tcpServer.close();
    }
    try {
      const flows = [];
      for await (const f of readAnyFlows(`${dir}/py.mitm`)) flows.push(f);
      const wsFlow = flows.find((f) => f instanceof HTTPFlow && f.websocket) as HTTPFlow;
      const tcpFlow = flows.find((f) => f instanceof TCPFlow) as TCPFlow;
      assert.ok(wsFlow, `a WebSocket flow among ${flows.map((f) => f.type)}`);
      assert.ok(tcpFlow, "a TCP flow");
      assert.deepEqual(wsFlow.websocket!.messages.map((m) => [m.fromClient, m.text]), [
        [true, "hello websocket"],
        [false, "hello websocket"],
      ]);
      assert.equal(wsFlow.websocket!.closeCode, 1000);
      assert.equal(wsFlow.websocket!.closeReason, "bye");
      assert.deepEqual(tcpFlow.messages.map((m) => [m.fromClient, m.text]), [
        [true, "tcp hello"],
        [false, "echo: tcp hello"],
      ]);
      assert.ok(matchFilter("~websocket & ~b 'hello websocket'", wsFlow));
      assert.ok(matchFilter("~tcp & ~bs echo", tcpFlow) && !matchFilter("~tcp & ~bq echo", tcpFlow));
      // written back as v17: mitmdump reads the messages
      const file = await Deno.open(`${dir}/ours17.mitm`, { write: true, create: true, truncate: true });
      const w = new FlowWriter(file, { version: 17 });
      for (const f of flows) await w.add(f);
      file.close();
      const r = await new Deno.Command(MITMDUMP, {
        args: ["-n", "-r", `${dir}/ours17.mitm`, "--flow-detail", "3"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = dec.decode(r.stdout);
      assert.equal(r.code, 0, dec.decode(r.stderr));
      assert.match(text, /-> WebSocket text message -> 127\.0\.0\.1:\d+\/ws\n\s+hello websocket/);
      assert.match(text, /WebSocket connection closed by client: 1000 bye/);
      assert.match(text, /-> tcp -> localhost:\d+\n\s+tcp hello/);
      assert.match(text, /<- tcp <- localhost:\d+\n\s+echo: tcp hello/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
