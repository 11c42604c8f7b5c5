/** The options of the proxy core, present in every master (mitmproxy's `options.py`). */
import type { Options, OptionSpec } from "../addons/options.ts";

/** Core option declarations. */
export const CORE_OPTIONS: OptionSpec[] = [
  { name: "server", type: "bool", default: true, help: "Start a proxy server. Enabled by default." },
  { name: "listen_host", type: "str", default: "", help: "Address to bind the proxy server(s) to." },
  { name: "listen_port", type: "optional int", default: null, help: "Port to bind the proxy server(s) to." },
  {
    name: "mode",
    type: "strs",
    default: ["regular"],
    help:
      "The proxy server type(s): regular, upstream:URL (http:// or https:// proxy), socks5, transparent, reverse:URL (http, https, tls or tcp://host[:port]). Several at once: repeat it, each as MODE@[HOST:]PORT.",
  },
  {
    name: "showhost",
    type: "bool",
    default: false,
    help: "Use the Host header to construct URLs for display.",
  },
  {
    name: "confdir",
    type: "str",
    default: "~/.mitmdeno",
    help: "Location of the default mitmdeno configuration files.",
  },
  {
    name: "ignore_hosts",
    type: "strs",
    default: [],
    help: "Ignore host:port (regex) and pass the traffic through untouched.",
  },
  {
    name: "allow_hosts",
    type: "strs",
    default: [],
    help: "Opposite of --ignore-hosts: only intercept matching host:port.",
  },
  {
    name: "tcp_hosts",
    type: "strs",
    default: [],
    help: "Generic TCP SSL proxy mode for all hosts that match the pattern.",
  },
  {
    name: "ssl_insecure",
    type: "bool",
    default: false,
    help: "Do not verify upstream server SSL/TLS certificates.",
  },
  {
    name: "upstream_cert",
    type: "bool",
    default: true,
    help: "Connect to upstream server to look up certificate details.",
  },
  {
    name: "http2",
    type: "bool",
    default: true,
    help:
      "Enable/disable HTTP/2 support: h2 is offered to TLS clients and servers (ALPN), translated to HTTP/1 where a side speaks only that.",
  },
  {
    name: "http2_ping_keepalive",
    type: "int",
    default: 58,
    help: "Send a PING to keep idle HTTP/2 connections alive, in seconds. 0 to disable.",
  },
  { name: "websocket", type: "bool", default: true, help: "Enable/disable WebSocket support." },
  {
    name: "websocket_keep_messages",
    type: "str",
    default: "auto",
    choices: ["auto", "all", "current"],
    help:
      "Which messages of an open WebSocket stay in flow.websocket.messages: all (mitmproxy's behaviour), current (only the one whose websocket_message hooks run, so memory stays bounded on long connections), or auto: all while something needs the history (-w/save_stream_file, hardump, the web UI, a script or addon with a websocket_end hook), else current.",
  },
  { name: "rawtcp", type: "bool", default: true, help: "Enable/disable raw TCP connections." },
  {
    name: "body_size_limit",
    type: "optional str",
    default: null,
    help: "Byte size limit of HTTP request and response bodies, e.g. 10m. Understands k/m/g/t suffixes.",
  },
  {
    name: "stream_large_bodies",
    type: "optional str",
    default: null,
    help: "Stream data to the client if the body exceeds this size, e.g. 1m. Streamed bodies are not kept.",
  },
  {
    name: "store_streamed_bodies",
    type: "bool",
    default: false,
    help: "Store HTTP request and response bodies when streamed.",
  },
  {
    name: "keep_host_header",
    type: "bool",
    default: false,
    help: "Reverse proxy: keep the original Host header.",
  },
  {
    name: "connection_strategy",
    type: "str",
    default: "eager",
    help: "Determine when server connections should be established (eager: on CONNECT; lazy: when needed).",
    choices: ["eager", "lazy"],
  },
  {
    name: "validate_inbound_headers",
    type: "bool",
    default: true,
    help: "Reject malformed HTTP/1 header lines (obsolete line folding, names that are not tokens, " +
      "whitespace before the colon) with a 400. Off: accept them. Framing errors are refused either way.",
  },
  {
    name: "tcp_timeout",
    type: "int",
    default: 600,
    help: "Idle timeout (seconds) for client and server connections.",
  },
  {
    name: "http_header_timeout",
    type: "int",
    default: 60,
    help: "Seconds a client may take to send a complete request head (from the connection's start for its " +
      "first request, from the first byte for later ones); then 408 and the connection closes. 0: no limit.",
  },
  {
    name: "http_response_timeout",
    type: "int",
    default: 60,
    help: "Seconds to wait for a server's response head after the request was sent; then 504. 0: no limit " +
      "(the tcp_timeout idle limit still applies).",
  },
  {
    name: "connect_timeout",
    type: "int",
    default: 30,
    help: "Timeout (seconds) for connecting to a server.",
  },
  {
    name: "max_header_size",
    type: "int",
    default: 65536,
    help: "Largest accepted message head in bytes (431 above).",
  },
  {
    name: "max_header_count",
    type: "int",
    default: 256,
    help: "Most header fields accepted in one message.",
  },
  { name: "proxy_debug", type: "bool", default: false, help: "Enable debug logs in the proxy core." },
  {
    name: "connect_addr",
    type: "optional str",
    default: null,
    help: "Set the local IP address that mitmdeno should use when connecting to upstream servers.",
  },
  {
    name: "normalize_outbound_headers",
    type: "bool",
    default: true,
    help: "Normalize outgoing HTTP/2 header names, with a debug log line when doing so. HTTP/2 does " +
      "not allow uppercase header names. This option makes sure that HTTP/2 headers set in custom scripts " +
      "are lowercased before they are sent (HTTP/1 messages keep their spelling).",
  },
  {
    name: "content_view_lines_cutoff",
    type: "int",
    default: 512,
    help: "Flow content view lines limit. Limiting it to a smaller number of lines makes viewing big " +
      "bodies faster (flow_detail 3 in mitmdeno dump, the web UI).",
  },
];

/** Declare the core options on `options`. */
export function declareCoreOptions(options: Options): void {
  for (const spec of CORE_OPTIONS) options.add(spec, "core");
}
