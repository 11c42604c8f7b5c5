/**
 * Log at every level (mitmproxy's examples/addons/log-events.py).
 *
 *     mitmdeno -s addons/examples/log_events.ts
 */
import { ctx } from "mitmdeno";

export function load(): void {
  ctx.log.info("This is some informative text.");
  ctx.log.warn("This is a warning.");
  ctx.log.error("This is an error.");
  ctx.log.alert(
    "This is an alert. It has the same urgency as info, but will also pop up in the status bar.",
  );
}
