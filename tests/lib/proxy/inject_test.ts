/** The inject.* commands of the proxyserver addon: into live TCP and WebSocket flows, warnings otherwise. */
import assert from "node:assert/strict";
import { ProxyServer } from "../../../lib/proxy/server.ts";
import { Client, Server } from "../../../lib/flow/connection.ts";
import { HTTPFlow } from "../../../lib/flow/flow.ts";
import { TCPFlow, type TCPMessage } from "../../../lib/flow/tcp.ts";
import { WebSocketData, type WebSocketMessage } from "../../../lib/flow/websocket.ts";
import { Request } from "../../../lib/http/message.ts";
import { testMaster, text } from "./io_utils.ts";

async function setup() {
  const t = testMaster();
  await t.master.addAddons(new ProxyServer(t.master));
  const warnings = () => t.logs.filter((e) => e.level === "warn").map((e) => e.msg);
  return { ...t, warnings };
}

Deno.test("inject.tcp: bytes or UTF-8 text to either side of a live TCP flow; warnings for other flows and closed ones", async () => {
  const { master, warnings } = await setup();
  const flow = new TCPFlow(new Client(), new Server(["127.0.0.1", 9]));
  const sent: TCPMessage[] = [];
  flow.setInjector((m) => void sent.push(m));
  await master.commands.call("inject.tcp", flow, true, "héllo");
  await master.commands.call("inject.tcp", flow, false, new Uint8Array([0, 1]));
  assert.equal(sent.length, 2);
  assert.equal(sent[0].fromClient, false, "to the client: as if from the server");
  assert.equal(text(sent[0].content), "héllo");
  assert.ok(sent[0].injected);
  assert.equal(sent[1].fromClient, true);
  assert.deepEqual([...sent[1].content], [0, 1]);
  assert.deepEqual(warnings(), []);
  flow.setInjector(null);
  await master.commands.call("inject.tcp", flow, true, "late");
  const http = new HTTPFlow(new Client(), new Server(["h", 80]), Request.make("GET", "http://h/"));
  await master.commands.call("inject.tcp", http, true, "x");
  assert.deepEqual(warnings(), ["Flow is not live.", "Cannot inject TCP messages into non-TCP flows."]);
  assert.equal(sent.length, 2);
});

Deno.test("inject.websocket: text or binary to either side of a live WebSocket flow; warnings otherwise", async () => {
  const { master, warnings } = await setup();
  const flow = new HTTPFlow(new Client(), new Server(["h", 80]), Request.make("GET", "http://h/ws"));
  await master.commands.call("inject.websocket", flow, true, "x");
  flow.websocket = new WebSocketData();
  const sent: WebSocketMessage[] = [];
  await master.commands.call("inject.websocket", flow, true, "not yet open");
  flow.websocket.setInjector((m) => void sent.push(m));
  await master.commands.call("inject.websocket", flow, true, "hi");
  await master.commands.call("inject.websocket", flow, false, "bin", false);
  assert.equal(sent.length, 2);
  assert.equal(sent[0].type, 1, "text");
  assert.equal(sent[0].fromClient, false);
  assert.equal(text(sent[0].content), "hi");
  assert.ok(sent[0].injected);
  assert.equal(sent[1].type, 2, "binary");
  assert.equal(sent[1].fromClient, true);
  const dead = new HTTPFlow(new Client(), new Server(["h", 80]), Request.make("GET", "http://h/ws"), false);
  dead.websocket = new WebSocketData();
  dead.websocket.setInjector(() => assert.fail("a flow that is not live gets nothing"));
  await master.commands.call("inject.websocket", dead, true, "x");
  await master.commands.call("inject.websocket", new TCPFlow(new Client(), new Server(null)), true, "x");
  assert.deepEqual(warnings(), [
    "Cannot inject WebSocket messages into non-WebSocket flows.",
    "Flow is not live.",
    "Flow is not live.",
    "Cannot inject WebSocket messages into non-WebSocket flows.",
  ]);
});
