/**
 * Redirect requests to another host (mitmproxy's examples/addons/http-redirect-requests.py).
 *
 *     mitmdeno -s addons/examples/http_redirect_requests.ts
 */
import type { HTTPFlow } from "mitmdeno";

export function request(flow: HTTPFlow): void {
  // prettyHost takes the Host header of the request into account, which is useful in transparent mode
  // where we usually only have the IP otherwise.
  if (flow.request.prettyHost === "example.org") flow.request.host = "mitmproxy.org";
}
