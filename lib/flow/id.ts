/**
 * Flow ids: UUIDs of version 7 (RFC 9562: the Unix time in milliseconds, then 74 random bits), where
 * mitmproxy makes version 4 ones. Still unique opaque strings to everything that reads them (flow files,
 * mitmproxy, the web API), but ordered by creation time, so an index over them grows at its end: the flow
 * store's id index took a random page write per recorded flow (about half of what a commit writes) with
 * random ids.
 *
 * @module
 */

/** A new flow id: a UUIDv7 whose random bits come from `crypto.randomUUID()` (a version 4 UUID). */
export function flowId(now: number = Date.now()): string {
  const u = crypto.randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx (V: the variant, as v7 wants it)
  const ms = now.toString(16).padStart(12, "0");
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${u.slice(15)}`;
}

/**
 * The creation time (ms) a version 7 UUID carries, or null for any other id (a version 4 one from
 * mitmproxy, anything else a flow file holds).
 */
export function flowIdTime(id: string): number | null {
  if (id.length !== 36 || !V7.test(id)) return null;
  return parseInt(id.slice(0, 8), 16) * 65536 + parseInt(id.slice(9, 13), 16);
}

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/i;
