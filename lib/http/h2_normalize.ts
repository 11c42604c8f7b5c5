/**
 * `normalize_outbound_headers` (mitmproxy 8.1's `_http2.normalize_h2_headers`): HTTP/2 forbids upper-case
 * header names, so names a script set with capitals are lower-cased before an HTTP/2 message goes out, with
 * one log line per name changed. HTTP/1 messages are never touched (their spelling is kept on the wire), and
 * with the option off HTTP/2 fields are sent as they are (a peer may then reject the stream).
 * @module
 */

/**
 * Lower-case the names of `fields` in place; returns the log messages (one per changed name), empty when
 * nothing changed. Call only for a message that goes out over HTTP/2 and only with the option on.
 */
export function normalizeH2HeaderNames(fields: [string, string][]): string[] {
  let logs: string[] | null = null;
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i][0];
    const lower = name.toLowerCase();
    if (lower === name) continue;
    (logs ??= []).push(`Lowercased '${name}' header as uppercase is not allowed with HTTP/2.`);
    fields[i] = [lower, fields[i][1]];
  }
  return logs ?? [];
}

/**
 * The field names an HTTP/2 codec sends: lower-cased with a log line per changed name when `normalize` is on
 * (the option), else as they are. Returns `fields`, changed in place.
 */
export function outgoingNames(
  fields: [string, string][],
  normalize: boolean,
  log: (message: string) => void,
): [string, string][] {
  if (normalize) { for (const m of normalizeH2HeaderNames(fields)) log(m); }
  return fields;
}
