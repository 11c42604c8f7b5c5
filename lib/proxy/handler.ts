/**
 * The root of a connection: builds the context, fires client_connected/client_disconnected, runs the
 * mode layer, and always cleans up. Nothing thrown in a connection reaches the rest of the proxy.
 */
import type { Socket } from "node:net";
import type { Master } from "../master.ts";
import { Client } from "../flow/connection.ts";
import { Stream } from "./stream.ts";
import { Context } from "./context.ts";
import { ServerPool } from "./server_conn.ts";
import type { ModeSpec } from "./mode.ts";
import { modeLayer } from "./layers/modes.ts";
import { describeError } from "../addons/log.ts";

/** Handle one accepted client socket until it closes. */
export async function handleConnection(master: Master, socket: Socket, mode: ModeSpec): Promise<void> {
  const client = new Client({
    peername: [socket.remoteAddress ?? "", socket.remotePort ?? 0],
    sockname: [socket.localAddress ?? "", socket.localPort ?? 0],
    proxyMode: mode.full,
  });
  const stream = new Stream(socket);
  const pool = new ServerPool(master, client);
  const ctx = new Context(master, client, stream, mode, pool);
  const addons = master.addons;
  try {
    if (addons.has("client_connected")) await addons.trigger("client_connected", client);
    if (client.error) return;
    await ctx.runLayer(modeLayer(ctx));
  } catch (e) {
    master.log.error(`${client}: proxy error: ${describeError(e)}`);
  } finally {
    await pool.closeAll().catch(() => {});
    stream.close();
    client.timestampEnd = Date.now() / 1000;
    if (addons.has("client_disconnected")) await addons.trigger("client_disconnected", client);
  }
}
