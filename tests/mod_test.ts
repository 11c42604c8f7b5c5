/** The public API names the data of every connection-level hook, so addons can type their handlers. */
import assert from "node:assert/strict";
import type {
  Addon,
  Client,
  ClientHelloData,
  NextLayerData,
  ServerConnectionHookData,
  TlsData,
} from "../mod.ts";
import * as api from "../mod.ts";

Deno.test("mod.ts: hook data types for tls_clienthello, tls_*, next_layer, server_connect type an addon", () => {
  const seen: string[] = [];
  const addon: Addon = {
    client_connected(c: Client) {
      seen.push(`client ${c.peername?.[0]}`);
    },
    tls_clienthello(d: ClientHelloData) {
      seen.push(`sni ${d.clientHello.sni}`);
      d.ignoreConnection = d.clientHello.sni === "pinned.example";
    },
    tls_start_client(d: TlsData) {
      seen.push(`tls ${d.conn.id.length > 0}`);
    },
    next_layer(d: NextLayerData) {
      seen.push(`next ${d.destination.host}:${d.destination.port}`);
    },
    server_connect(d: ServerConnectionHookData) {
      seen.push(`server ${d.server.address?.[0]}`);
    },
  };
  assert.deepEqual(Object.keys(addon).sort(), [
    "client_connected",
    "next_layer",
    "server_connect",
    "tls_clienthello",
    "tls_start_client",
  ]);
  for (const ev of Object.keys(addon)) assert.ok(api.EVENTS.includes(ev as api.EventName), ev);
  assert.deepEqual(api.LOG_LEVELS, ["error", "warn", "info", "alert", "debug"]);
  assert.equal(seen.length, 0);
});
