/**
 * An addon as plain module functions (mitmproxy's examples/addons/anatomy2.py).
 *
 *     mitmdeno -s addons/examples/anatomy2.ts
 */
import type { HTTPFlow } from "mitmdeno";

export function request(flow: HTTPFlow): void {
  flow.request.headers.set("myheader", "value");
}
