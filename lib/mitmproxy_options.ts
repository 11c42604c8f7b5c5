/**
 * Every option name mitmproxy has (the main branch and 8.1, the Debian package), so that a config.yaml shared
 * with mitmproxy, mitmweb or mitmdump and `--set` lines can be told apart from typos: an option of another
 * mitmproxy tool (console, web), one mitmdeno lacks, or a misspelling (with a suggestion).
 */

/** All of mitmproxy's option names. */
export const MITMPROXY_OPTIONS: ReadonlySet<string> = new Set([
  "add_upstream_certs_to_client_chain",
  "allow_hosts",
  "anticache",
  "anticomp",
  "block_global",
  "block_list",
  "block_private",
  "body_size_limit",
  "cert_passphrase",
  "certs",
  "ciphers_client",
  "ciphers_server",
  "client_certs",
  "client_replay",
  "client_replay_concurrency",
  "command_history",
  "confdir",
  "connect_addr",
  "connection_strategy",
  "console_default_contentview",
  "console_eventlog_verbosity",
  "console_flowlist_layout",
  "console_focus_follow",
  "console_layout",
  "console_layout_headers",
  "console_mouse",
  "console_palette",
  "console_palette_transparent",
  "console_quickhelp_visible",
  "console_strip_trailing_newlines",
  "content_view_lines_cutoff",
  "dns_listen_host",
  "dns_listen_port",
  "dns_mode",
  "dns_name_servers",
  "dns_server",
  "dns_use_hosts_file",
  "dumper_default_contentview",
  "dumper_filter",
  "export_preserve_original_ip",
  "flow_detail",
  "hardump",
  "http2",
  "http2_ping_keepalive",
  "http3",
  "http_connect_send_host_header",
  "ignore_hosts",
  "intercept",
  "intercept_active",
  "keep_alt_svc_header",
  "keep_host_header",
  "keepserving",
  "key_size",
  "listen_host",
  "listen_port",
  "map_local",
  "map_remote",
  "mode",
  "modify_body",
  "modify_headers",
  "normalize_outbound_headers",
  "onboarding",
  "onboarding_host",
  "onboarding_port",
  "protobuf_definitions",
  "proxy_debug",
  "proxyauth",
  "rawtcp",
  "readfile_filter",
  "request_client_cert",
  "rfile",
  "save_stream_file",
  "save_stream_filter",
  "scripts",
  "server",
  "server_replay",
  "server_replay_extra",
  "server_replay_ignore_content",
  "server_replay_ignore_host",
  "server_replay_ignore_params",
  "server_replay_ignore_payload_params",
  "server_replay_ignore_port",
  "server_replay_kill_extra",
  "server_replay_nopop",
  "server_replay_refresh",
  "server_replay_reuse",
  "server_replay_use_headers",
  "show_ignored_hosts",
  "showhost",
  "ssl_insecure",
  "ssl_verify_upstream_trusted_ca",
  "ssl_verify_upstream_trusted_confdir",
  "stickyauth",
  "stickycookie",
  "store_streamed_bodies",
  "stream_large_bodies",
  "strip_ech",
  "tcp_hosts",
  "tcp_timeout",
  "termlog_verbosity",
  "tls_ecdh_curve_client",
  "tls_ecdh_curve_server",
  "tls_version_client_max",
  "tls_version_client_min",
  "tls_version_server_max",
  "tls_version_server_min",
  "udp_hosts",
  "upstream_auth",
  "upstream_cert",
  "validate_inbound_headers",
  "view_filter",
  "view_order",
  "view_order_reversed",
  "web_columns",
  "web_debug",
  "web_host",
  "web_open_browser",
  "web_password",
  "web_port",
  "web_static_viewer",
  "web_theme",
  "websocket",
]);

/** The mitmproxy tool an option belongs to when it is not one of mitmdump's: "mitmweb", "mitmproxy" (console). */
export function otherToolOf(name: string): "mitmweb" | "mitmproxy" | null {
  if (name.startsWith("web_")) return "mitmweb";
  if (name.startsWith("console_")) return "mitmproxy";
  if (
    name === "view_filter" || name === "view_order" || name === "view_order_reversed" ||
    name === "intercept" || name === "intercept_active"
  ) return "mitmproxy";
  return null;
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length];
}

/** The closest of `candidates` to `name`, if close enough to be a likely typo. */
export function didYouMean(name: string, candidates: Iterable<string>): string | null {
  let best: [number, string] | null = null;
  for (const c of candidates) {
    const dist = distance(name, c);
    if (best === null || dist < best[0]) best = [dist, c];
  }
  return best && best[0] <= Math.max(2, Math.floor(name.length / 4)) ? best[1] : null;
}

/** How an unknown option name is explained: its kind and a one-line message for the user. */
export interface UnknownOption {
  kind: "other-tool" | "not-yet" | "unknown";
  message: string;
}

/** Explain an option name nobody declared, given the declared names. */
export function describeUnknownOption(name: string, declared: Iterable<string>): UnknownOption {
  const tool = otherToolOf(name);
  if (tool) {
    return {
      kind: "other-tool",
      message: `"${name}" is an option of ${tool}, not of mitmdeno ${
        tool === "mitmweb" ? "dump (use mitmdeno web)" : "(no console UI)"
      }`,
    };
  }
  if (MITMPROXY_OPTIONS.has(name)) {
    return { kind: "not-yet", message: `option "${name}" is not supported by mitmdeno yet` };
  }
  const guess = didYouMean(name, declared);
  return {
    kind: "unknown",
    message: `unknown option "${name}"${guess ? ` (did you mean "${guess}"?)` : ""}`,
  };
}
