/**
 * upstream_auth: `upstream_auth = user:pass` adds HTTP Basic credentials toward the upstream
 * (mitmproxy's `upstream_auth.py`): `Proxy-Authorization` on CONNECTs sent to an upstream proxy and on
 * plain-HTTP requests in upstream mode, `Authorization` on requests in reverse-proxy mode.
 */
import { ctx, type HTTPFlow, type Loader, OptionsError } from "../mod.ts";

/** Build the `Basic ...` header value for `user:pass`; throws OptionsError for a bad spec. */
export function parseUpstreamAuth(auth: string): string {
  if (!/.+:/.test(auth)) {
    throw new OptionsError(
      `Option "upstream_auth": invalid upstream auth specification (expected user:pass)`,
    );
  }
  const bytes = new TextEncoder().encode(auth);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** Adds upstream credentials. */
export class UpstreamAuth {
  readonly name = "upstreamauth";
  auth: string | null = null;

  load(loader: Loader): void {
    loader.addOption(
      "upstream_auth",
      "optional str",
      null,
      "Add HTTP Basic authentication to upstream proxy and reverse proxy requests. Format: username:password.",
      undefined,
      { secret: true },
    );
  }

  configure(updated: Set<string>): void {
    if (!updated.has("upstream_auth")) return;
    const v = ctx.options.upstream_auth as string | null;
    this.auth = v === null ? null : parseUpstreamAuth(v);
  }

  http_connect_upstream(flow: HTTPFlow): void {
    if (this.auth) flow.request.headers.set("Proxy-Authorization", this.auth);
  }

  requestheaders(flow: HTTPFlow): void {
    if (!this.auth) return;
    const mode = flow.clientConn.proxyMode;
    if (mode.startsWith("upstream") && flow.request.scheme === "http") {
      flow.request.headers.set("Proxy-Authorization", this.auth);
    } else if (mode.startsWith("reverse")) {
      flow.request.headers.set("Authorization", this.auth);
    }
  }
}
