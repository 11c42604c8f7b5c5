/**
 * `kill -9` of `mitmdeno -w FILE` under keep-alive load: every response a client got must be in the file
 * afterwards, except at most the last one of each connection. The save addon gathers the flows finished in
 * one turn of the event loop into one write (FlowWriterOptions.batch); a writer that waited longer (a timer)
 * would lose every flow of its last few dozen milliseconds (checked: 76-80 flows of a connection lost with a
 * 50 ms timer).
 */
import assert from "node:assert/strict";
import { readFlows } from "../../lib/io/flowfile.ts";
import { keepAliveClient, startProxy } from "./helpers.ts";

const CONNECTIONS = 4;

Deno.test("save: kill -9 under keep-alive load loses at most the last flow of each connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-save-kill-" });
  const body = "x".repeat(1024);
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(body));
  try {
    // three kills: one could land just after a write by luck
    for (let round = 0; round < 3; round++) {
      await killOnce(`${dir}/flows-${round}.mitm`, origin.addr.port, round);
    }
  } finally {
    await origin.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

async function killOnce(path: string, originPort: number, round: number): Promise<void> {
  const proxy = await startProxy(["--flow-detail", "0", "-w", path, "--set", `confdir=${path}.conf`]);
  try {
    const clients = Array.from(
      { length: CONNECTIONS },
      (_, i) => keepAliveClient(proxy.port, originPort, round * CONNECTIONS + i),
    );
    const deadline = Date.now() + 20_000;
    while (clients.some((c) => c.got.length < 300) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, Math.random() * 30));
    Deno.kill(proxy.pid, "SIGKILL");
    await proxy.stop();
    for (const c of clients) c.stop();
    const saved = new Set<string>();
    try {
      for await (const f of readFlows(path)) saved.add(f.request.path);
    } catch { /* a write cut by the kill: the flows before it count */ }
    for (const c of clients) {
      assert.ok(c.got.length >= 300, `only ${c.got.length} responses on a connection`);
      const lost = c.got.filter((p) => !saved.has(p));
      assert.ok(
        lost.length === 0 || (lost.length === 1 && lost[0] === c.got.at(-1)),
        `kill ${round + 1}: ${lost.length} of ${c.got.length} flows lost on one connection ` +
          `(${lost.slice(0, 5).join(" ")}...)`,
      );
    }
  } finally {
    await proxy.stop();
  }
}
