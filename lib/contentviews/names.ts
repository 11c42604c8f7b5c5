/**
 * The content views' names, without the views: the dumper declares its option's choices from these at start-up
 * and loads the views (./mod.ts, with their npm packages) only when it shows bodies. A test keeps this list
 * equal to the registry's.
 * @module
 */

/** "auto" and the lower-case name of every view mitmdeno has, sorted (mitmproxy's `available_views()`). */
export const VIEW_NAMES: readonly string[] = [
  "auto",
  "css",
  "graphql",
  "hex dump",
  "hex stream",
  "image",
  "javascript",
  "json",
  "msgpack",
  "multipart form",
  "query",
  "raw",
  "url-encoded",
  "xml/html",
  "zip archive",
];

/** mitmproxy's views that mitmdeno does not have (yet): accepted as names, "auto" is used instead. */
export const MITMPROXY_ONLY_VIEWS: readonly string[] = [
  "dns",
  "grpc",
  "http/3 frames",
  "mqtt",
  "protobuf",
  "socket.io",
  "wbxml",
];
