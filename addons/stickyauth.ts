/**
 * stickyauth: with `stickyauth` set to a filter, remembers the `Authorization` header per host and adds it
 * to later matching requests to that host that have none (mitmproxy's `stickyauth.py`).
 */
import { ctx, type Filter, type HTTPFlow, type Loader, parseFilterOrNull } from "../mod.ts";

/** Re-applies remembered Authorization headers. */
export class StickyAuth {
  readonly name = "stickyauth";
  flt: Filter | null = null;
  /** host -> Authorization value. */
  readonly hosts: Map<string, string> = new Map();

  load(loader: Loader): void {
    loader.addOption("stickyauth", "optional str", null, "Set sticky auth filter. Matched against requests.");
  }

  configure(updated: Set<string>): void {
    if (updated.has("stickyauth")) this.flt = parseFilterOrNull("stickyauth", ctx.options.stickyauth);
  }

  request(flow: HTTPFlow): void {
    if (!this.flt) return;
    const host = flow.request.host;
    const auth = flow.request.headers.get("authorization");
    if (auth !== undefined) this.hosts.set(host, auth);
    else if (this.flt(flow) && this.hosts.has(host)) {
      flow.request.headers.set("authorization", this.hosts.get(host)!);
    }
  }
}
