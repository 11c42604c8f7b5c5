/**
 * Single-request sanity check sent before load testing, so a broken proxy yields a clear error
 * ("probe got 502 ...") instead of a wall of wrk error counters.
 *
 * @module
 */

import type { WrkTarget } from "./wrk.ts";

/** Result of {@linkcode probe}. */
export interface ProbeResult {
  status: number;
  /** Status line and headers as received. */
  head: string;
  /** Number of body bytes received (until close). */
  bodyBytes: number;
}

/**
 * Send exactly the request wrk would send for `target` (but with `Connection: close`) over a raw TCP
 * connection and read the response until the peer closes. Rejects on timeout or malformed response.
 */
export async function probe(target: WrkTarget, timeoutMs = 5000): Promise<ProbeResult> {
  const u = new URL(target.url);
  const path = target.requestTarget ?? `${u.pathname}${u.search}`;
  const headers: Record<string, string> = {
    Host: target.host ?? u.host,
    ...target.headers,
    Connection: "close",
  };
  if (target.body !== undefined) {
    headers["Content-Length"] = String(new TextEncoder().encode(target.body).length);
  }
  const req = `${target.method ?? "GET"} ${path} HTTP/1.1\r\n` +
    Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n" + (target.body ?? "");

  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port || 80) });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  let timedOut = true;
  const chunks: Uint8Array[] = [];
  try {
    await conn.write(new TextEncoder().encode(req));
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    timedOut = false;
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource)) throw e;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed by the timer */ }
  }
  const raw = new TextDecoder("latin1").decode(concat(chunks));
  const end = raw.indexOf("\r\n\r\n");
  if (timedOut && end < 0) {
    throw new Error(`probe ${path} via ${target.url}: no response within ${timeoutMs} ms`);
  }
  const m = raw.match(/^HTTP\/1\.[01] (\d{3})/);
  if (!m || end < 0) {
    throw new Error(
      `probe ${path} via ${target.url}: malformed response: ${JSON.stringify(raw.slice(0, 200))}`,
    );
  }
  return { status: Number(m[1]), head: raw.slice(0, end), bodyBytes: raw.length - end - 4 };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
