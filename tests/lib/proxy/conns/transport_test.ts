import assert from "node:assert/strict";
import net from "node:net";
import { Transport } from "../../../../lib/proxy/conns/transport.ts";

/** A connected pair of node:net sockets on loopback: [ours, peer]. */
async function socketPair(
  allowHalfOpen = false,
): Promise<{ ours: net.Socket; peer: net.Socket; close(): Promise<void> }> {
  let peer!: net.Socket;
  const server = net.createServer({ allowHalfOpen });
  const accepted = new Promise<void>((resolve) => {
    server.once("connection", (s: net.Socket) => {
      peer = s;
      resolve();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const ours = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  await Promise.all([accepted, new Promise((r) => ours.once("connect", r))]);
  return {
    ours,
    peer,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

Deno.test("Transport.close: flushes, half-closes, and lets go of the socket as soon as the peer closes", async () => {
  const p = await socketPair();
  const stream = new Transport(p.ours);
  let destroyed = 0;
  const destroy = stream.destroy.bind(stream);
  stream.destroy = () => {
    destroyed++;
    destroy();
  };
  const got: Uint8Array[] = [];
  p.peer.on("data", (b: Uint8Array) => got.push(b));
  p.peer.on("end", () => p.peer.end()); // a polite peer: closes its side on our FIN
  stream.write(new TextEncoder().encode("bye"));
  stream.close(100);
  await stream.closedPromise;
  assert.equal(new TextDecoder().decode(got[0]), "bye", "pending data went out before the FIN");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(destroyed, 0, "the grace timer was dropped when the socket closed");
  await p.close();
});

Deno.test("Transport.close: a peer that never closes is cut off after the grace period", async () => {
  const p = await socketPair(true);
  const stream = new Transport(p.ours);
  p.peer.on("data", () => {});
  p.peer.on("end", () => {}); // ignores our FIN, keeps its side open
  const t0 = performance.now();
  stream.close(100);
  await stream.closedPromise;
  const waited = performance.now() - t0;
  assert.ok(waited >= 90 && waited < 2000, `destroyed after ${waited.toFixed(0)} ms`);
  p.peer.destroy();
  await p.close();
});
