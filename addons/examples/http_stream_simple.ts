/**
 * Stream every response body instead of buffering it (mitmproxy's examples/addons/http-stream-simple.py).
 * This is equivalent to passing `--set stream_large_bodies=1`.
 *
 *     mitmdeno -s addons/examples/http_stream_simple.ts
 */
import type { HTTPFlow } from "mitmdeno";

export function responseheaders(flow: HTTPFlow): void {
  flow.response!.stream = true;
}
