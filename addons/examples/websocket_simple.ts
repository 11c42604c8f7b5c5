/**
 * Process individual messages of a WebSocket connection (mitmproxy's examples/addons/websocket-simple.py):
 * log each, replace a leading "Hello" with "HAPPY", and drop messages that contain "FOOBAR".
 *
 *     mitmdeno -s addons/examples/websocket_simple.ts
 */
import { ctx, type HTTPFlow } from "mitmdeno";

export function websocket_message(flow: HTTPFlow): void {
  // the newest message
  const message = flow.websocket!.messages.at(-1)!;
  // sent by the client or the server?
  if (message.fromClient) ctx.log.info(`Client sent a message: ${message}`);
  else ctx.log.info(`Server sent a message: ${message}`);
  // change the message
  message.text = message.text.replace(/^Hello/, "HAPPY");
  // do not forward this one
  if (message.text.includes("FOOBAR")) message.drop();
}
