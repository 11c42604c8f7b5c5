/**
 * Proxy mode specs: `MODE[:DATA][@[LISTEN_HOST:]LISTEN_PORT]` (mitmproxy's `mode_specs.py`). Every mode of
 * mitmproxy parses; which ones run is the master's mode registry (core.ts), which the proxyserver checks.
 *
 * Targets: `reverse:[SCHEME://]HOST[:PORT]` with http, https (the default), tls or tcp (tcp needs a port);
 * `upstream:[SCHEME://]HOST[:PORT]` with http (the default) or https. mitmproxy's UDP schemes (http3, dtls,
 * udp, quic, dns) are refused by name: mitmdeno has no UDP listener.
 */

/** A parsed mode. */
export interface ModeSpec {
  /** "regular", "reverse", "upstream", "socks5", ... */
  kind: string;
  /** The part after "MODE:", e.g. the reverse target URL. */
  data: string;
  listenHost?: string;
  listenPort?: number;
  /** The spec as given, normalized. */
  full: string;
  /** For reverse/upstream: the parsed target. */
  target?: { scheme: string; host: string; port: number };
}

const KNOWN_MODES = [
  "regular",
  "transparent",
  "socks5",
  "reverse",
  "upstream",
  "wireguard",
  "local",
  "dns",
  "tun",
];

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, tls: 443, dns: 53 };

/** The schemes a reverse proxy target may have (mitmproxy's TCP ones). */
export const REVERSE_SCHEMES = ["http", "https", "tls", "tcp"];
/** mitmproxy's reverse schemes over UDP, which mitmdeno does not serve. */
const UDP_SCHEMES = ["http3", "dtls", "udp", "quic", "dns"];
/** The schemes of an upstream proxy. */
export const UPSTREAM_SCHEMES = ["http", "https"];

/** Parse a server spec `[scheme://]host[:port][/]` (no path allowed). */
export function parseServerSpec(spec: string, defaultScheme: string, allowed: string[]) {
  const m = /^(?:([a-zA-Z0-9]+):\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/?#@\s[\]]+)(?::(\d+))?\/?$/.exec(spec.trim());
  if (!m) throw new Error(`invalid server specification: ${spec}`);
  const scheme = (m[1] ?? defaultScheme).toLowerCase();
  if (!allowed.includes(scheme)) {
    throw new Error(`invalid scheme "${scheme}" (allowed: ${allowed.join(", ")})`);
  }
  const host = m[2].replace(/^\[|\]$/g, "");
  const port = m[3] !== undefined ? Number(m[3]) : DEFAULT_PORTS[scheme];
  if (port === undefined) throw new Error(`a port is required for scheme ${scheme}`);
  if (!(port >= 0 && port <= 65535)) throw new Error("invalid port");
  return { scheme, host, port };
}

/** Parse a mode spec; throws Error with a user-readable reason. */
export function parseMode(spec: string): ModeSpec {
  let head = spec.trim();
  let listenHost: string | undefined;
  let listenPort: number | undefined;
  const at = head.lastIndexOf("@");
  if (at !== -1) {
    const listen = head.slice(at + 1);
    head = head.slice(0, at);
    const colon = listen.lastIndexOf(":");
    const portStr = colon === -1 ? listen : listen.slice(colon + 1);
    if (colon !== -1) listenHost = listen.slice(0, colon).replace(/^\[|\]$/g, "");
    if (!/^\d+$/.test(portStr) || Number(portStr) > 65535) throw new Error(`invalid port in mode "${spec}"`);
    listenPort = Number(portStr);
  }
  const colon = head.indexOf(":");
  const kind = (colon === -1 ? head : head.slice(0, colon)).toLowerCase();
  const data = colon === -1 ? "" : head.slice(colon + 1);
  if (!KNOWN_MODES.includes(kind)) {
    throw new Error(`unknown mode "${kind}" (known: ${KNOWN_MODES.join(", ")})`);
  }
  const out: ModeSpec = { kind, data, listenHost, listenPort, full: spec.trim() };
  if (kind === "reverse") {
    if (!data) throw new Error("reverse mode needs a target, e.g. reverse:http://127.0.0.1:3000");
    const scheme = /^([a-zA-Z0-9]+):\/\//.exec(data.trim())?.[1]?.toLowerCase();
    if (scheme && UDP_SCHEMES.includes(scheme)) {
      throw new Error(
        `reverse proxy scheme "${scheme}" runs over UDP, which mitmdeno does not serve (allowed: ${
          REVERSE_SCHEMES.join(", ")
        })`,
      );
    }
    out.target = parseServerSpec(data, "https", REVERSE_SCHEMES);
  } else if (kind === "upstream") {
    if (!data) throw new Error("upstream mode needs a proxy, e.g. upstream:http://127.0.0.1:3128");
    out.target = parseServerSpec(data, "http", UPSTREAM_SCHEMES);
  } else if (data && ["regular", "transparent", "socks5", "dns"].includes(kind)) {
    throw new Error(`mode ${kind} takes no arguments`);
  }
  return out;
}
