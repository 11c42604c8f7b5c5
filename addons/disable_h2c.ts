/**
 * disable_h2c: HTTP/2 cleartext is not supported, so strip `Upgrade: h2c` requests back to HTTP/1.1
 * (removing `Upgrade`, `Connection` and `HTTP2-Settings`) and kill prior-knowledge `PRI * HTTP/2.0`
 * requests (mitmproxy's `disable_h2c.py`).
 */
import { ctx, type HTTPFlow } from "../mod.ts";

/** Refuses h2c upgrades. */
export class DisableH2C {
  readonly name = "disableh2c";

  request(flow: HTTPFlow): void {
    const h = flow.request.headers;
    if ((h.get("upgrade") ?? "").trim().toLowerCase() === "h2c") {
      ctx.log.warn("HTTP/2 cleartext connections (h2c upgrade requests) are currently not supported.");
      h.delete("upgrade");
      h.delete("connection");
      h.delete("http2-settings");
    }
    const r = flow.request;
    if (r.method === "PRI" && r.path === "*" && r.httpVersion === "HTTP/2.0") {
      if (flow.killable) flow.kill();
      ctx.log.warn("Initiating HTTP/2 connections with prior knowledge are currently not supported.");
    }
  }
}
