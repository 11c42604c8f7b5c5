/**
 * proxyauth: require HTTP Basic credentials from clients (mitmproxy's `proxyauth.py`).
 *
 * `proxyauth` is `user:pass` (one user), `any` (any credentials, only their presence is required) or
 * `@path` (an Apache htpasswd file: bcrypt `$2y$`/`$2b$`/`$2a$`, `$apr1$`, `{SHA}`, DES crypt and
 * plaintext entries). LDAP specs are refused (not supported in mitmdeno).
 *
 * In regular (and upstream) mode the credentials come from `Proxy-Authorization`, and a missing or wrong
 * one is answered with `407` and `Proxy-Authenticate: Basic realm="mitmproxy"`; in other modes
 * `Authorization` / `401` / `WWW-Authenticate` are used. A CONNECT that authenticated keeps its
 * connection authenticated for the requests inside the tunnel. Valid credentials are stored in
 * `flow.metadata.proxyauth = [user, pass]` and the header is removed before the request goes upstream.
 */
import { type Client, ctx, type HTTPFlow, type Loader, OptionsError, Response } from "../mod.ts";
import { expandHome } from "../lib/addons/spec.ts";
import { safeEqual } from "../lib/auth/safe_equal.ts";

/** Checks a user name and password. */
export type Validator = (user: string, pass: string) => boolean;

/** Parse an htpasswd file's text into user -> hash; throws Error for malformed lines. */
export function parseHtpasswd(text: string): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim() || line.trimStart().startsWith("#")) return;
    const c = line.indexOf(":");
    if (c <= 0) throw new Error(`malformed htpasswd file (line ${i + 1})`);
    const hash = line.slice(c + 1).trim();
    if (/^\$(?!2[abxy]\$|apr1\$|1\$)/.test(hash)) {
      throw new Error(`unsupported hash scheme for user ${line.slice(0, c)} (line ${i + 1})`);
    }
    users.set(line.slice(0, c), hash);
  });
  return users;
}

/** Parse a `proxyauth` option value into a validator; throws OptionsError naming the option. */
export async function makeValidator(spec: string): Promise<Validator> {
  if (spec === "any") return () => true;
  if (spec.startsWith("@")) {
    const path = expandHome(spec.slice(1));
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      throw new OptionsError(
        `Option "proxyauth": could not open htpasswd file ${path}: ${(e as Error).message}`,
      );
    }
    let users: Map<string, string>;
    try {
      users = parseHtpasswd(text);
    } catch (e) {
      throw new OptionsError(`Option "proxyauth": ${path}: ${(e as Error).message}`);
    }
    // bcrypt, apr1 and crypt (three npm packages) are loaded only for an htpasswd file
    const { verifyHtpasswdHash } = await import("../lib/auth/htpasswd_hash.ts");
    return (user, pass) => {
      const h = users.get(user);
      if (h === undefined) return false;
      try {
        return verifyHtpasswdHash(pass, h);
      } catch {
        return false;
      }
    };
  }
  if (/^ldaps?:/i.test(spec)) {
    throw new OptionsError(`Option "proxyauth": LDAP authentication is not supported by mitmdeno`);
  }
  const c = spec.indexOf(":");
  if (c !== -1) {
    const u = spec.slice(0, c);
    const p = spec.slice(c + 1);
    return (user, pass) => safeEqual(user, u) && safeEqual(pass, p);
  }
  throw new OptionsError(
    `Option "proxyauth": invalid specification ${
      JSON.stringify(spec)
    } (expected user:pass, any or @htpasswd-file)`,
  );
}

/** Parse `Basic base64(user:pass)`; returns null when the header is not valid Basic auth. */
export function parseBasicAuth(value: string): [string, string] | null {
  const m = /^\s*basic\s+(\S+)\s*$/i.exec(value);
  if (!m) return null;
  let decoded: string;
  try {
    const bin = atob(m[1]);
    decoded = new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  const c = decoded.indexOf(":");
  if (c === -1) return null;
  return [decoded.slice(0, c), decoded.slice(c + 1)];
}

/** Whether the flow came through an HTTP proxy mode (credentials in Proxy-Authorization). */
export function isHttpProxy(flow: HTTPFlow): boolean {
  const m = flow.clientConn.proxyMode;
  return m.startsWith("regular") || m.startsWith("upstream");
}

/** The 407 (proxy) or 401 response asking for credentials. */
export function authRequiredResponse(isProxy: boolean): Response {
  const status = isProxy ? 407 : 401;
  const reason = isProxy ? "Proxy Authentication Required" : "Unauthorized";
  const headers: Record<string, string> = isProxy
    ? { "Proxy-Authenticate": 'Basic realm="mitmproxy"' }
    : { "WWW-Authenticate": 'Basic realm="mitmproxy"' };
  return Response.make(
    status,
    `<html><head><title>${status} ${reason}</title></head><body><h1>${status} ${reason}</h1></body></html>`,
    headers,
  );
}

/** What the socks5_auth hook receives (the socks5 mode: lib/proxy/layers/socks5.ts). */
export interface Socks5AuthData {
  clientConn: Client;
  username: string;
  password: string;
  valid: boolean;
}

/** Requires proxy authentication. */
export class ProxyAuth {
  readonly name = "proxyauth";
  validator: Validator | null = null;
  /** Connections authenticated by a CONNECT request. */
  readonly authenticated: WeakMap<Client, [string, string]> = new WeakMap();

  load(loader: Loader): void {
    loader.addOption(
      "proxyauth",
      "optional str",
      null,
      'Require proxy authentication. Format: "username:pass", "any" to accept any user/pass combination, "@path" to use an Apache htpasswd file (bcrypt, apr1, SHA, crypt, plain).',
      undefined,
      { secret: true },
    );
  }

  async configure(updated: Set<string>): Promise<void> {
    if (!updated.has("proxyauth")) return;
    const spec = ctx.options.proxyauth as string | null;
    this.validator = spec ? await makeValidator(spec) : null;
  }

  socks5_auth(data: Socks5AuthData): void {
    if (this.validator && this.validator(data.username, data.password)) {
      data.valid = true;
      this.authenticated.set(data.clientConn, [data.username, data.password]);
    }
  }

  http_connect(flow: HTTPFlow): void {
    if (this.validator && this.authenticate(flow)) {
      this.authenticated.set(flow.clientConn, flow.metadata.proxyauth as [string, string]);
    }
  }

  requestheaders(flow: HTTPFlow): void {
    if (!this.validator) return;
    const known = this.authenticated.get(flow.clientConn);
    if (known) flow.metadata.proxyauth = known;
    else if (flow.isReplay) return;
    else this.authenticate(flow);
  }

  /** Check the flow's credentials: on success store them and strip the header, else answer 407/401. */
  authenticate(flow: HTTPFlow): boolean {
    const isProxy = isHttpProxy(flow);
    const header = isProxy ? "proxy-authorization" : "authorization";
    const creds = parseBasicAuth(flow.request.headers.get(header) ?? "");
    if (creds && this.validator!(creds[0], creds[1])) {
      flow.metadata.proxyauth = creds;
      flow.request.headers.delete(header);
      return true;
    }
    flow.response = authRequiredResponse(isProxy);
    return false;
  }
}
