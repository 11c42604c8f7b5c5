/**
 * Print the HTTP trailers received, and add one to requests and responses of /inject_trailers
 * (mitmproxy's examples/addons/http-trailers.py).
 *
 * Trailers are headers sent after the body; they need to be announced in the initial headers by name, so
 * the receiving endpoint can wait and read them after the body.
 *
 *     mitmdeno -s addons/examples/http_trailers.ts
 */
import { ctx, Headers, type HTTPFlow } from "mitmdeno";

export function request(flow: HTTPFlow): void {
  if (flow.request.trailers) {
    ctx.log.info(`HTTP Trailers detected! Request contains: ${[...flow.request.trailers]}`);
  }
  if (flow.request.path === "/inject_trailers") {
    if (flow.request.isHttp10) {
      return; // HTTP/1.0 doesn't support trailers
    } else if (flow.request.isHttp11) {
      // Avoid sending a body on GET requests or a 0 byte chunked body with trailers.
      // Otherwise some servers return 400 Bad Request.
      if (!flow.request.content?.length) return;
      // HTTP 1.1 requires transfer-encoding: chunked to send trailers
      flow.request.headers.set("transfer-encoding", "chunked");
    }
    // HTTP 2+ supports trailers on all requests/responses
    flow.request.headers.set("trailer", "x-my-injected-trailer-header");
    flow.request.trailers = new Headers([["x-my-injected-trailer-header", "foobar"]]);
    ctx.log.info(`Injected a new request trailer... ${flow.request.headers.get("trailer")}`);
  }
}

export function response(flow: HTTPFlow): void {
  const resp = flow.response!;
  if (resp.trailers) ctx.log.info(`HTTP Trailers detected! Response contains: ${[...resp.trailers]}`);
  if (flow.request.path === "/inject_trailers") {
    if (flow.request.isHttp10) return;
    else if (flow.request.isHttp11) {
      if (!resp.content?.length) return;
      resp.headers.set("transfer-encoding", "chunked");
    }
    resp.headers.set("trailer", "x-my-injected-trailer-header");
    resp.trailers = new Headers([["x-my-injected-trailer-header", "foobar"]]);
    ctx.log.info(`Injected a new response trailer... ${resp.headers.get("trailer")}`);
  }
}
