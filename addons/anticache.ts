/**
 * anticache: with `anticache` set, strips `If-Modified-Since` and `If-None-Match` from requests so the
 * server cannot answer "304 Not Modified" (mitmproxy's `anticache.py`).
 */
import { ctx, type HTTPFlow, type Loader } from "../mod.ts";

/** Removes conditional request headers when `anticache` is on. */
export class AntiCache {
  readonly name = "anticache";

  load(loader: Loader): void {
    loader.addOption(
      "anticache",
      "bool",
      false,
      "Strip out request headers that might cause the server to return 304-not-modified.",
    );
  }

  request(flow: HTTPFlow): void {
    if (ctx.options.anticache) flow.request.anticache();
  }
}
