/**
 * Modify a streamed response (mitmproxy's examples/addons/http-stream-modify.py).
 *
 * Generally speaking, we recommend *not* to stream messages you need to modify. Modifying streamed
 * responses is tricky and brittle:
 * - If the transfer encoding isn't chunked, you cannot simply change the content length.
 * - If you want to replace all occurrences of "foobar", make sure to catch the cases where one chunk ends
 *   with [...]foo" and the next starts with "bar[...].
 *
 *     mitmdeno -s addons/examples/http_stream_modify.ts
 *
 * A stream function is code that runs on the proxy's data path: load this one in-process (as an addon of
 * your own build, or with `tctx.script` in tests); a sandboxed `-s` script can only set `stream = true`.
 */
import type { HTTPFlow } from "mitmdeno";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Called for each chunk of body data that arrives at the proxy, and once at the end of the message with an
 * empty chunk. May return bytes or a list of bytes.
 */
export function modify(data: Uint8Array): Uint8Array | Uint8Array[] {
  return enc.encode(dec.decode(data).replaceAll("foo", "bar"));
}

export function responseheaders(flow: HTTPFlow): void {
  flow.response!.stream = modify;
}
