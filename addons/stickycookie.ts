/**
 * stickycookie: a cookie jar (mitmproxy's `stickycookie.py`). With `stickycookie` set to a filter, cookies
 * set by responses are remembered per (domain, port, path) and sent with later matching requests
 * (which get `metadata.stickycookie = true`). Expired cookies are removed from the jar.
 */
import { ctx, type Filter, type HTTPFlow, type Loader, parseFilterOrNull } from "../mod.ts";

/** Jar key: domain, port, path. */
export type CookieOrigin = [string, number, string];

function isIp(h: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(h) || h.includes(":");
}

/** `http.cookiejar.domain_match` (RFC 2965), also trying `b` without its leading dot. */
export function domainMatch(a: string, b: string): boolean {
  const m = (a: string, b: string) => {
    a = a.toLowerCase();
    b = b.toLowerCase();
    if (a === b) return true;
    if (isIp(a)) return false;
    const i = a.lastIndexOf(b);
    if (i <= 0 || i + b.length !== a.length) return false;
    if (!b.startsWith(".")) return false;
    return !isIp(b.slice(1));
  };
  return m(a, b) || m(a, b.replace(/^\.+|\.+$/g, ""));
}

/** Whether Set-Cookie attributes say the cookie is expired (past `Expires` or `Max-Age` <= 0). */
export function isExpired(attrs: Record<string, string>, now: number = Date.now()): boolean {
  const lower = Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k.toLowerCase(), v]));
  if ("max-age" in lower) {
    const n = Number(lower["max-age"]);
    if (Number.isFinite(n)) return n <= 0;
  }
  if (lower.expires) {
    const t = Date.parse(lower.expires);
    if (!Number.isNaN(t)) return t <= now;
  }
  return false;
}

/** Remembers cookies and re-applies them. */
export class StickyCookie {
  readonly name = "stickycookie";
  /** key -> (cookie name -> value), keys are `JSON.stringify([domain, port, path])`. */
  readonly jar: Map<string, Map<string, string>> = new Map();
  flt: Filter | null = null;

  load(loader: Loader): void {
    loader.addOption(
      "stickycookie",
      "optional str",
      null,
      "Set sticky cookie filter. Matched against requests.",
    );
  }

  configure(updated: Set<string>): void {
    if (updated.has("stickycookie")) this.flt = parseFilterOrNull("stickycookie", ctx.options.stickycookie);
  }

  response(flow: HTTPFlow): void {
    if (!this.flt || !flow.response) return;
    for (const [name, value, attrs] of flow.response.cookies) {
      const lower = Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k.toLowerCase(), v]));
      const origin: CookieOrigin = [lower.domain || flow.request.host, flow.request.port, lower.path || "/"];
      if (!domainMatch(flow.request.host, origin[0])) continue;
      const key = JSON.stringify(origin);
      if (isExpired(attrs)) {
        const c = this.jar.get(key);
        c?.delete(name);
        if (c && c.size === 0) this.jar.delete(key);
      } else {
        if (!this.jar.has(key)) this.jar.set(key, new Map());
        this.jar.get(key)!.set(name, value);
      }
    }
  }

  request(flow: HTTPFlow): void {
    if (!this.flt) return;
    const list: [string, string][] = [];
    if (this.flt(flow)) {
      for (const [key, cookies] of this.jar) {
        const [domain, port, path] = JSON.parse(key) as CookieOrigin;
        if (
          domainMatch(flow.request.host, domain) && flow.request.port === port &&
          flow.request.path.startsWith(path)
        ) list.push(...cookies);
      }
    }
    if (list.length) {
      flow.metadata.stickycookie = true;
      flow.request.headers.set("cookie", list.map(([k, v]) => `${k}=${v}`).join("; "));
    }
  }
}
