/** anticomp: with `anticomp` set, asks servers for uncompressed responses (mitmproxy's `anticomp.py`). */
import { ctx, type HTTPFlow, type Loader } from "../mod.ts";

/** Sets `Accept-Encoding: identity` when `anticomp` is on. */
export class AntiComp {
  readonly name = "anticomp";

  load(loader: Loader): void {
    loader.addOption("anticomp", "bool", false, "Try to convince servers to send us un-compressed data.");
  }

  request(flow: HTTPFlow): void {
    if (ctx.options.anticomp) flow.request.anticomp();
  }
}
