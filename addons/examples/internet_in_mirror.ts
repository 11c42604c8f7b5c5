/**
 * Mirror all web pages (mitmproxy's examples/addons/internet-in-mirror.py). Useful if you are living down
 * under.
 *
 *     mitmdeno -s addons/examples/internet_in_mirror.ts
 */
import type { HTTPFlow } from "mitmdeno";

export function response(flow: HTTPFlow): void {
  if (flow.response?.text) {
    flow.response.text = flow.response.text.replace(
      "</head>",
      "<style>body {transform: scaleX(-1);}</style></head>",
    );
  }
}
