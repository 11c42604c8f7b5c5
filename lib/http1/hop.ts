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

/** 1 at the index of every hop-by-hop name's length. */
const HOP_LENGTHS = new Uint8Array(32);
for (const n of HOP_BY_HOP) HOP_LENGTHS[n.length] = 1;

/** Add the lower-cased comma-separated tokens of `value` to `out`. */
function addTokens(value: string, out: Set<string>): void {
  for (const t of value.split(",")) {
    const x = t.trim();
    if (x) out.add(x.toLowerCase());
  }
}

/** The lower-cased tokens of all Connection headers. */
export function connectionTokens(headers: Headers): Set<string> {
  const out = new Set<string>();
  for (const f of headers.fields) {
    if (f[0].length === 10 && f[0].toLowerCase() === "connection") addTokens(f[1], out);
  }
  return out;
}

/** Whether a Connection header lists `token` (lower case), without building the token set. */
export function hasConnectionToken(headers: Headers, token: string): boolean {
  for (const f of headers.fields) {
    if (f[0].length !== 10 || f[0].toLowerCase() !== "connection") continue;
    for (const t of f[1].split(",")) if (t.trim().toLowerCase() === token) return true;
  }
  return false;
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
    // most names cannot be hop-by-hop by their length alone: no lower-cased copy for them
    if (named === null && HOP_LENGTHS[f[0].length] !== 1) {
      out.push(f);
      continue;
    }
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

/**
 * Frame forwarded `fields` (from {@link endToEndFields}, changed in place) with the length actually sent:
 * the first Content-Length field keeps its spelling and place and gets `length`, any others go; with
 * `length` null (chunked, or no length) every Content-Length goes. Returns whether there was one, so the
 * caller appends a field only when none was placed (as mitmproxy, which updates the header in place).
 */
export function placeContentLength(fields: [string, string][], length: number | null): boolean {
  let had = false;
  let j = 0;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    if (f[0].length === 14 && f[0].toLowerCase() === "content-length") {
      if (had || length === null) {
        had = true;
        continue;
      }
      had = true;
      fields[j++] = [f[0], String(length)];
      continue;
    }
    fields[j++] = f;
  }
  fields.length = j;
  return had;
}

/** Whether a client's request allows keeping the connection open afterwards. */
export function clientWantsKeepAlive(httpVersion: string, headers: Headers): boolean {
  let tokens: Set<string> | null = null;
  for (const f of headers.fields) {
    const n = f[0].length;
    if (n !== 10 && n !== 16) continue;
    const k = f[0].toLowerCase();
    if (k === "connection" || k === "proxy-connection") addTokens(f[1], tokens ??= new Set());
  }
  if (tokens?.has("close")) return false;
  if (httpVersion === "HTTP/1.0") return tokens?.has("keep-alive") ?? false;
  return true;
}
