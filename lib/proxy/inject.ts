/**
 * The `inject.*` commands of the proxyserver addon (mitmproxy's `inject_websocket`, `inject_tcp`): send a
 * message of our own into a live connection.
 *
 * @module
 */
import type { Flow } from "../flow/flow.ts";
import { HTTPFlow } from "../flow/flow.ts";
import { TCPFlow } from "../flow/tcp.ts";
import type { Logger } from "../addons/log.ts";
import { utf8 } from "../http/bytes.ts";

/** Bytes of a command argument (a string is UTF-8). */
function bytesOf(message: unknown): Uint8Array {
  if (message instanceof Uint8Array) return message;
  return utf8(String(message));
}

/**
 * `inject.websocket flow to_client message [is_text]`: send `message` to the client (`toClient`) or the
 * server of a live WebSocket flow. It goes through `websocket_message` and is recorded as injected.
 */
export function injectWebSocket(
  log: Logger,
  flow: Flow,
  toClient: boolean,
  message: Uint8Array | string,
  isText = true,
): void {
  if (!(flow instanceof HTTPFlow) || !flow.websocket) {
    return log.warn("Cannot inject WebSocket messages into non-WebSocket flows.");
  }
  if (!flow.live || !flow.websocket.inject(!!toClient, bytesOf(message), isText !== false)) {
    return log.warn("Flow is not live.");
  }
}

/** `inject.tcp flow to_client message`: send bytes to the client (`toClient`) or the server of a live TCP flow. */
export function injectTcp(log: Logger, flow: Flow, toClient: boolean, message: Uint8Array | string): void {
  if (!(flow instanceof TCPFlow)) return log.warn("Cannot inject TCP messages into non-TCP flows.");
  if (!flow.live || !flow.inject(!!toClient, bytesOf(message))) return log.warn("Flow is not live.");
}
