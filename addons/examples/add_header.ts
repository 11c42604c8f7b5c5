/**
 * The canonical first script: add a header to every response.
 *
 *     mitmdeno -s addons/examples/add_header.ts
 */
import type { HTTPFlow } from "mitmdeno";

export function response(flow: HTTPFlow): void {
  flow.response!.headers.set("newheader", "foo");
}
