/**
 * Shut the whole proxy down from a script (mitmproxy's examples/addons/shutdown.py).
 *
 * Shutting down acts beyond the script, so it needs a grant:
 *
 *     mitmdeno -s addons/examples/shutdown.ts --script-allow shutdown
 *     curl --proxy localhost:8080 http://example.com/path
 *
 * Without the grant, `ctx.master.shutdown()` throws and the error (naming the grant) is logged.
 */
import { ctx, type HTTPFlow } from "mitmdeno";

export function request(flow: HTTPFlow): void {
  // a random condition to make this example a bit more interactive
  if (flow.request.prettyUrl === "http://example.com/path") {
    ctx.log.info("Shutting down everything...");
    ctx.master!.shutdown();
  }
}
