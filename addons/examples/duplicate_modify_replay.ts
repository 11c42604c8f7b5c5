/**
 * Take incoming HTTP requests and replay them with modified parameters
 * (mitmproxy's examples/addons/duplicate-modify-replay.py).
 *
 * Replaying sends new requests, beyond the script, so it needs a grant:
 *
 *     mitmdeno -s addons/examples/duplicate_modify_replay.ts --script-allow replay
 */
import { ctx, type HTTPFlow } from "mitmdeno";

export async function request(flow: HTTPFlow): Promise<void> {
  // Avoid an infinite loop by not replaying already replayed requests
  if (flow.isReplay === "request") return;
  const copy = flow.copy();
  // Only interactive tools have a view. If we have one, add a duplicate entry for our flow.
  if (ctx.master!.addons.get("view")) await ctx.master!.commands.call("view.flows.duplicate", [copy]);
  copy.request.path = "/changed";
  await ctx.master!.commands.call("replay.client", [copy]);
}
