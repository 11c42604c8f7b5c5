/**
 * Connection log lines as mitmdump prints them (mitmproxy's `proxy/server.py` logs them at info level):
 * `[127.0.0.1:50123] client connect`, `server connect example.com:443 (93.184.215.14:443)`,
 * `server disconnect ...`, `client disconnect`, and `error establishing server connection: ...`.
 * Shown with the default `termlog_verbosity` (info), hidden by `-q`; `flow_detail` does not affect them.
 */
import { ctx } from "../lib/addons/ctx.ts";
import { type Address, type Client, formatAddress } from "../lib/flow/connection.ts";
import type { ServerConnectionHookData } from "../lib/proxy/conns/manager.ts";

function serverAddr(address: Address | null, peer: Address | null): string {
  if (address && peer && address[0] !== peer[0]) return `${formatAddress(address)} (${formatAddress(peer)})`;
  return formatAddress(address ?? peer);
}

/** Logs client and server connects and disconnects, tagged with the client's address. */
export class ConnectionLog {
  readonly name = "connection_log";

  #log(client: Client, msg: string): void {
    ctx.log.child(formatAddress(client.peername)).info(msg);
  }

  client_connected(client: Client): void {
    this.#log(client, "client connect");
  }

  client_disconnected(client: Client): void {
    this.#log(client, "client disconnect");
  }

  server_connected(d: ServerConnectionHookData): void {
    this.#log(d.client, `server connect ${serverAddr(d.server.address, d.server.peername)}`);
  }

  server_disconnected(d: ServerConnectionHookData): void {
    this.#log(d.client, `server disconnect ${serverAddr(d.server.address, d.server.peername)}`);
  }

  server_connect_error(d: ServerConnectionHookData): void {
    this.#log(d.client, `error establishing server connection: ${d.server.error ?? "unknown error"}`);
  }
}
