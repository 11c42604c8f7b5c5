/**
 * Modify and inspect TCP flows (mitmproxy's examples/addons/tcp-simple.py): replace "foo" with "bar" in
 * every message and log it. Works for any TCP connection the proxy reads as a TCP flow:
 *
 *     mitmdeno --set tcp_hosts=.* -s addons/examples/tcp_simple.ts
 */
import { ctx, type TCPFlow } from "mitmdeno";

export function tcp_message(flow: TCPFlow): void {
  const message = flow.messages.at(-1)!;
  message.text = message.text.replaceAll("foo", "bar");
  ctx.log.info(`tcp_message[fromClient=${message.fromClient}, content=${JSON.stringify(message.text)}]`);
}
