/**
 * update_alt_svc: in reverse-proxy mode, rewrite `host:port` in `Alt-Svc` response headers to
 * `:<listen port>` so clients keep talking to the proxy, unless `keep_alt_svc_header` is set
 * (mitmproxy's `update_alt_svc.py`).
 */
import { ctx, type HTTPFlow, type Loader } from "../mod.ts";

/** Rewrite every `host:port` authority in an Alt-Svc value to `:port`. */
export function updateAltSvcHeader(header: string, port: number): string {
  return header.replace(/([a-zA-Z0-9.-]*:\d{1,5})/g, `:${port}`);
}

/** Keeps Alt-Svc pointing at the reverse proxy. */
export class UpdateAltSvc {
  readonly name = "updatealtsvc";

  load(loader: Loader): void {
    loader.addOption(
      "keep_alt_svc_header",
      "bool",
      false,
      "Reverse Proxy: Keep Alt-Svc headers as-is, even if they do not point to mitmdeno. Enabling this option may cause clients to bypass the proxy.",
    );
  }

  responseheaders(flow: HTTPFlow): void {
    const resp = flow.response;
    if (!resp || ctx.options.keep_alt_svc_header || !flow.clientConn.proxyMode.startsWith("reverse")) return;
    const v = resp.headers.get("alt-svc");
    const port = flow.clientConn.sockname?.[1];
    if (v === undefined || port === undefined) return;
    resp.headers.set("alt-svc", updateAltSvcHeader(v, port));
  }
}
