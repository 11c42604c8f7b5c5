import assert from "node:assert/strict";
import { Client, Server } from "../../../lib/flow/connection.ts";
import { ConnectionClosed, DataReceived, Start, Wakeup } from "../../../lib/proxy/events.ts";
import { RequestWakeup } from "../../../lib/proxy/commands.ts";

Deno.test("Events carry their connection or command and describe themselves", () => {
  const client = new Client();
  const server = new Server(["h", 1]);
  const d = new DataReceived(client, new Uint8Array([1, 2, 3]));
  assert.equal(d.conn, client);
  assert.equal(String(d), "DataReceived(client, 3b)");
  const c = new ConnectionClosed(server);
  assert.equal(c.conn, server);
  assert.equal(String(c), "ConnectionClosed(server)");
  assert.equal(String(new Start()), "Start");
  const w = new RequestWakeup(1, () => {});
  const e = new Wakeup(w);
  assert.equal(e.command, w);
  assert.equal(String(e), "Wakeup");
});
