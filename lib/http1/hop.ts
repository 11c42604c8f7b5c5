/** Hop-by-hop header handling for a proxy (RFC 9110 §7.6.1): what must not be forwarded as is. */
import type { Headers } from "../http/headers.ts";

/** Headers that only concern one connection, never forwarded. */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authorization",
  // not "proxy-authenticate": the 407 answer of the proxyauth addon must carry it (mitmproxy forwards it too)
]);

/** The lower-cased tokens of all Connection headers. */
export function connectionTokens(headers: Headers): Set<string> {
  const out = new Set<string>();
  for (const v of headers.getAll("connection")) {
    for (const t of v.split(",")) if (t.trim()) out.add(t.trim().toLowerCase());
  }
  return out;
}

/** Whether the message asks for a protocol upgrade (e.g. WebSocket). */
export function isUpgrade(headers: Headers): boolean {
  return headers.has("upgrade") && connectionTokens(headers).has("upgrade");
}

/**
 * The fields to forward: everything except hop-by-hop fields and those the Connection header names.
 * With `keepUpgrade`, `Upgrade` and a `Connection: Upgrade` are kept (for a 101 handshake).
 */
export function endToEndFields(headers: Headers, keepUpgrade = false): [string, string][] {
  // the Connection tokens only when there is a Connection field (most responses have none)
  let named: Set<string> | null = null;
  for (const f of headers.fields) {
    if (f[0].length === 10 && f[0].toLowerCase() === "connection") {
      named = connectionTokens(headers);
      break;
    }
  }
  const out: [string, string][] = [];
  for (const f of headers.fields) {
    const k = f[0].toLowerCase();
    if (keepUpgrade && k === "upgrade") {
      out.push(f);
      continue;
    }
    if (HOP_BY_HOP.has(k) || (named !== null && named.has(k))) continue;
    out.push(f);
  }
  if (keepUpgrade) out.push(["Connection", "Upgrade"]);
  return out;
}

/** Whether a client's request allows keeping the connection open afterwards. */
export function clientWantsKeepAlive(httpVersion: string, headers: Headers): boolean {
  const tokens = connectionTokens(headers);
  for (const v of headers.getAll("proxy-connection")) {
    for (const t of v.split(",")) tokens.add(t.trim().toLowerCase());
  }
  if (tokens.has("close")) return false;
  if (httpVersion === "HTTP/1.0") return tokens.has("keep-alive");
  return true;
}
