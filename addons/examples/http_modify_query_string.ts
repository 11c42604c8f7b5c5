/**
 * Modify the query string (mitmproxy's examples/addons/http-modify-query-string.py).
 *
 *     mitmdeno -s addons/examples/http_modify_query_string.ts
 */
import type { HTTPFlow } from "mitmdeno";

export function request(flow: HTTPFlow): void {
  flow.request.query.set("mitmproxy", "rocks");
}
