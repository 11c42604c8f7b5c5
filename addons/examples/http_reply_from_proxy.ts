/**
 * Send a reply from the proxy without sending the request to the server
 * (mitmproxy's examples/addons/http-reply-from-proxy.py).
 *
 *     mitmdeno -s addons/examples/http_reply_from_proxy.ts
 *     curl -x http://127.0.0.1:8080 http://example.com/path
 */
import { type HTTPFlow, Response } from "mitmdeno";

export function request(flow: HTTPFlow): void {
  if (flow.request.prettyUrl === "http://example.com/path") {
    flow.response = Response.make(
      200, // (optional) status code
      "Hello World", // (optional) content
      { "Content-Type": "text/html" }, // (optional) headers
    );
  }
}
