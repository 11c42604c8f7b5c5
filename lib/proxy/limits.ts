/**
 * Limits and timeouts of the proxy core, read from the options.
 *
 * @module
 */
import type { Options } from "../addons/options.ts";
import { parseSize } from "../http/bytes.ts";

/** The limits, in bytes and milliseconds (0: no limit). */
export interface Limits {
  maxHeadSize: number;
  maxHeaders: number;
  bodySizeLimit: number | null;
  streamLargeBodies: number | null;
  /** A connection without traffic for this long is closed (`tcp_timeout`). */
  idleTimeout: number;
  connectTimeout: number;
  /** Time for a client to send a request head (`http_header_timeout`). */
  headerTimeout: number;
  /** Time for a server to start its response (`http_response_timeout`). */
  responseTimeout: number;
  /** Local address of connections to servers (`connect_addr`), null: the system's choice. */
  connectAddr: string | null;
  /** Accept non-framing header errors (`validate_inbound_headers=false`; see HeadLimits in lib/http1/parse.ts). */
  lenientHeaders: boolean;
  /** Lower-case HTTP/2 field names before sending (`normalize_outbound_headers`). */
  normalizeOutbound: boolean;
  /** Which messages of an open WebSocket flow are kept (`websocket_keep_messages`). */
  websocketKeep: "auto" | "all" | "current";
}

/** Read the limits from the options. */
export function readLimits(o: Options): Limits {
  const size = (v: string | null) => (v ? parseSize(v) : null);
  return {
    maxHeadSize: o.max_header_size,
    maxHeaders: o.max_header_count,
    bodySizeLimit: size(o.body_size_limit),
    streamLargeBodies: size(o.stream_large_bodies),
    idleTimeout: o.tcp_timeout * 1000,
    connectTimeout: o.connect_timeout * 1000,
    headerTimeout: (o.has("http_header_timeout") ? o.http_header_timeout : 60) * 1000,
    responseTimeout: (o.has("http_response_timeout") ? o.http_response_timeout : 60) * 1000,
    connectAddr: o.has("connect_addr") ? o.connect_addr || null : null,
    lenientHeaders: !o.validate_inbound_headers,
    normalizeOutbound: o.has("normalize_outbound_headers") ? o.normalize_outbound_headers !== false : true,
    websocketKeep: o.has("websocket_keep_messages") ? o.websocket_keep_messages : "auto",
  };
}
