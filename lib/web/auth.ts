/**
 * Who may use the web UI (mitmweb 11.1+'s rules, and a few more):
 *
 * - Every HTTP and WebSocket route needs the access token: `?token=...` (the URL printed at start),
 *   `Authorization: Bearer ...`, or the cookie set after the first valid token (HttpOnly, SameSite=Strict,
 *   a random per-run value, never the password itself).
 * - `web_password` sets a fixed token (plain text, or a bcrypt hash starting with `$2`); without it a
 *   random one is made per run.
 * - The Host header must name this server (localhost, an IP address, or `web_host`): a DNS rebinding page
 *   on another name is refused even with a valid cookie.
 * - State-changing requests (anything but GET/HEAD/OPTIONS) authenticated by the cookie must carry the
 *   `X-XSRFToken` header matching the `_xsrf` cookie (double submit, as tornado/mitmweb), and a
 *   cross-site `Sec-Fetch-Site` or a foreign `Origin` is refused. WebSocket upgrades check `Origin` too.
 *
 * @module
 */
import { safeEqual } from "../auth/safe_equal.ts";

/** bcryptjs, loaded by {@link WebAuth.prepare} only when `web_password` is a bcrypt hash. */
type Bcrypt = typeof import("bcryptjs").default;

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Parse a Cookie header. */
export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i === -1) continue;
    out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** Whether `host` (a Host header) names a server on this machine or the configured web_host. */
export function hostAllowed(hostHeader: string | null, webHost: string): boolean {
  if (!hostHeader) return false;
  let host = hostHeader.trim().toLowerCase();
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (m) host = m[1];
  else if (host.indexOf(":") === host.lastIndexOf(":")) host = host.replace(/:\d+$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return true; // an IP address is not a rebindable name
  if (host.includes(":")) return true; // IPv6 literal
  return webHost !== "" && host === webHost.toLowerCase();
}

/** The outcome of checking a request. */
export type AuthResult =
  | { ok: true; setCookie: string[]; viaCookie: boolean }
  | { ok: false; status: number; reason: string };

/** The web UI's access control for one run. */
export class WebAuth {
  #token: string;
  #hash: string | null = null;
  #bcrypt: Bcrypt | null = null;
  /** The cookie value proving a past valid token (random per run). */
  readonly #session = randomHex(32);
  /** The double-submit value for state-changing requests. */
  readonly xsrf = randomHex(16);
  port: number;
  webHost: string;

  constructor(port: number, webHost: string, password = "") {
    this.port = port;
    this.webHost = webHost;
    this.#token = randomHex(16);
    this.setPassword(password);
  }

  /** Use `password` (plain or a bcrypt hash) instead of the random token; "" for a random token. */
  setPassword(password: string): void {
    if (password.startsWith("$")) {
      if (!/^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$/.test(password)) {
        throw new Error(
          "starts with $ but is not a bcrypt hash ($2b$...); argon2 hashes (mitmweb's) are not supported",
        );
      }
      this.#hash = password;
    } else {
      this.#hash = null;
      this.#token = password || randomHex(16);
    }
  }

  /** Load what checking the password needs (bcryptjs for a hash); await it before serving after a change. */
  async prepare(): Promise<void> {
    if (this.#hash !== null) this.#bcrypt ??= (await import("bcryptjs")).default;
  }

  /** Whether a fixed password is set (then the URL printed at start carries no token). */
  get fixed(): boolean {
    return this.#hash !== null;
  }

  /** The token to put into the printed URL, or "" when a password/hash is used. */
  urlToken(passwordSet: boolean): string {
    return passwordSet ? "" : this.#token;
  }

  /** The auth cookie's name (one per port, like mitmweb's `mitmproxy-auth-PORT`). */
  get cookieName(): string {
    return `mitmdeno-auth-${this.port}`;
  }

  /** Whether `candidate` is the token/password. */
  valid(candidate: string): boolean {
    if (!candidate) return false;
    if (this.#hash) {
      try {
        // fail closed if prepare() was not awaited
        return this.#bcrypt?.compareSync(candidate, this.#hash) ?? false;
      } catch {
        return false;
      }
    }
    return safeEqual(candidate, this.#token);
  }

  /** Check a request; on success, the cookies to set. */
  check(req: Request, url: URL): AuthResult {
    if (!hostAllowed(req.headers.get("host"), this.webHost)) {
      return { ok: false, status: 403, reason: "Host header not allowed (DNS rebinding protection)" };
    }
    const cookies = parseCookies(req.headers.get("cookie"));
    let viaCookie = false;
    let ok = false;
    const auth = req.headers.get("authorization");
    if (auth?.startsWith("Bearer ")) ok = this.valid(auth.slice(7).trim());
    if (!ok) {
      const t = url.searchParams.get("token");
      if (t) ok = this.valid(t);
    }
    if (!ok) {
      const c = cookies.get(this.cookieName);
      if (c && safeEqual(c, this.#session)) ok = viaCookie = true;
    }
    if (!ok) return { ok: false, status: 403, reason: "a valid token is required" };
    const method = req.method;
    const upgrade = req.headers.get("upgrade")?.toLowerCase() === "websocket";
    const origin = req.headers.get("origin");
    if (origin && origin !== "null") {
      let oh = "";
      try {
        oh = new URL(origin).host;
      } catch { /* unparsable */ }
      if (oh.toLowerCase() !== (req.headers.get("host") ?? "").toLowerCase()) {
        return { ok: false, status: 403, reason: "cross-origin request refused" };
      }
    }
    if (upgrade && viaCookie && !origin) {
      // browsers always send Origin on WebSocket upgrades; a cookie without one is not a browser tab of ours
      return { ok: false, status: 403, reason: "WebSocket upgrade without Origin refused" };
    }
    if (!["GET", "HEAD", "OPTIONS"].includes(method)) {
      const site = req.headers.get("sec-fetch-site");
      if (site && site !== "same-origin" && site !== "none") {
        return { ok: false, status: 403, reason: "cross-site request refused" };
      }
      if (viaCookie) {
        const x = req.headers.get("x-xsrftoken") ?? req.headers.get("x-csrftoken") ?? "";
        const c = cookies.get("_xsrf") ?? "";
        if (!x || !safeEqual(x, this.xsrf) || !safeEqual(c, this.xsrf)) {
          return { ok: false, status: 403, reason: "missing or wrong X-XSRFToken header" };
        }
      }
    }
    const setCookie: string[] = [];
    if (!viaCookie) {
      setCookie.push(
        `${this.cookieName}=${this.#session}; Path=/; HttpOnly; SameSite=Strict; Max-Age=34560000`,
      );
    }
    if (cookies.get("_xsrf") !== this.xsrf) setCookie.push(`_xsrf=${this.xsrf}; Path=/; SameSite=Strict`);
    return { ok: true, setCookie, viaCookie };
  }
}
