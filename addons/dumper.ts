/**
 * The dumper addon: mitmdump's flow printer, line for line as mitmproxy's `addons/dumper.py` (main branch):
 *
 * - `flow_detail` 1: `client: METHOD url` (the URL cut to the terminal width - 25, at least 50) and
 *   ` << code reason size` aligned under the method; 2: the full URL and headers (4-space indent), trailers
 *   after `--- HTTP Trailers`; 3: bodies through the content views (`dumper_default_contentview`, "auto"
 *   picks by content type: 4-space JSON, indented HTML/XML, ...), each after a blank line and cut at
 *   `content_view_lines_cutoff` lines with "(cut off)"; 4: nothing cut.
 * - `[replay]` in place of the client for client replays and before `<<` for server replays; errors as
 *   ` << message`; the HTTP version shown unless both sides are HTTP/1.0 or 1.1 alike.
 *
 * Deliberate differences are listed in docs/options.md ("Output").
 */
import type { Loader } from "../lib/addons/manager.ts";
import type { HTTPFlow } from "../lib/flow/flow.ts";
import { formatAddress } from "../lib/flow/connection.ts";
import { CLOSE_REASONS } from "../lib/websocket/frame.ts";
import type { TCPFlow } from "../lib/flow/tcp.ts";
import type { Headers } from "../lib/http/headers.ts";
import type { Message } from "../lib/http/message.ts";
import { prettySize } from "../lib/http/bytes.ts";
import { reasonPhrase } from "../lib/http/status.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { OptionsError } from "../lib/addons/options.ts";
import { type Filter, parseFilterOrNull } from "../lib/addons/filter_option.ts";
import { bytesToEscapedStr, cutAfterNLines, escapeControlCharacters } from "../lib/contentviews/text.ts";
import { MITMPROXY_ONLY_VIEWS, VIEW_NAMES } from "../lib/contentviews/names.ts";

/** The content views (with their npm packages), loaded once bodies are shown (`flow_detail` 3 and up). */
type ContentViews = typeof import("../lib/contentviews/mod.ts");

/** Where dumper output goes (one call per printed flow, newlines included). */
export type Writer = (text: string) => void;

function stdoutWriter(): Writer {
  const enc = new TextEncoder();
  return (t) => {
    try {
      Deno.stdout.writeSync(enc.encode(t));
    } catch { /* stdout closed (e.g. piped into head): nothing to do */ }
  };
}

interface Style {
  fg?: "red" | "green" | "yellow" | "blue" | "magenta" | "cyan" | "bright_blue";
  bold?: boolean;
  dim?: boolean;
  blink?: boolean;
}

const FG = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, bright_blue: 94 };

/** The colours of highlighted content (mitmproxy's CONTENTVIEW_STYLES). */
const CONTENT_STYLES: Record<string, Style> = {
  name: { fg: "yellow" },
  string: { fg: "green" },
  number: { fg: "blue" },
  boolean: { fg: "magenta" },
  comment: { dim: true },
  error: { fg: "red" },
};

/** Python's str.splitlines() boundaries. */
// deno-lint-ignore no-control-regex
const LINE_BREAKS = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;

/** mitmproxy's `indent(n, text)`: strip, split into lines, prefix each. */
function indent(n: number, text: string): string {
  const pad = " ".repeat(n);
  const t = text.trim();
  return t ? t.split(LINE_BREAKS).map((l) => pad + l).join("\n") : "";
}

/** Header names and values as mitmproxy prints them: bytes escaped (`\xc3\xa9` for non-ASCII). */
function escapedHeader(s: string): string {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return bytesToEscapedStr(b);
}

function terminalWidth(): number {
  try {
    const cols = Number(Deno.env.get("COLUMNS"));
    if (cols > 0) return cols;
  } catch { /* no env permission */ }
  try {
    if (Deno.stdout.isTerminal()) return Deno.consoleSize().columns;
  } catch { /* not a terminal */ }
  return 80;
}

/** Prints flows as they complete. */
export class Dumper {
  readonly name = "dumper";
  #write: Writer;
  #color: boolean;
  #filter: Filter | null = null;
  #views: ContentViews | null = null;

  constructor(write?: Writer, color?: boolean) {
    this.#write = write ?? stdoutWriter();
    this.#color = color ?? (write ? false : Deno.stdout.isTerminal() && !Deno.noColor);
  }

  load(loader: Loader): void {
    loader.addOption(
      "flow_detail",
      "int",
      1,
      "The display detail level for flows in mitmdeno (dump): 0 (quiet) to 4 (very verbose). 0: no output; " +
        "1: shortened request URL with response status code; 2: full request URL with response status code and " +
        "HTTP headers; 3: 2 + truncated request and response content (content_view_lines_cutoff); " +
        "4: 3 + nothing is truncated.",
    );
    loader.addOption(
      "dumper_default_contentview",
      "str",
      "auto",
      "The default content view mode.",
      [...VIEW_NAMES, ...MITMPROXY_ONLY_VIEWS].sort((a, b) => a === "auto" ? -1 : a.localeCompare(b)),
    );
    loader.addOption("dumper_filter", "optional str", null, "Limit which flows are dumped.");
  }

  async configure(updated: Set<string>): Promise<void> {
    const o = ctx.options;
    if (updated.has("flow_detail") && (o.flow_detail < 0 || o.flow_detail > 4)) {
      throw new OptionsError(`Option "flow_detail": ${o.flow_detail} is out of range, expected 0 to 4`);
    }
    if (o.flow_detail >= 3) this.#views ??= await import("../lib/contentviews/mod.ts");
    if (updated.has("content_view_lines_cutoff") && o.content_view_lines_cutoff < 1) {
      throw new OptionsError(
        `Option "content_view_lines_cutoff": ${o.content_view_lines_cutoff} is out of range, expected at least 1`,
      );
    }
    if (updated.has("dumper_filter")) this.#filter = parseFilterOrNull("dumper_filter", o.dumper_filter);
    if (updated.has("dumper_default_contentview")) {
      const v = o.dumper_default_contentview as string;
      if (MITMPROXY_ONLY_VIEWS.includes(v)) {
        ctx.log.warn(
          `Option "dumper_default_contentview": the "${v}" view is not supported by mitmdeno yet; ` +
            `bodies are shown with "auto"`,
        );
      }
    }
  }

  #style(text: string, s: Style): string {
    if (!this.#color || !text) return text;
    let pre = "";
    if (s.fg) pre += `\x1b[${FG[s.fg]}m`;
    if (s.bold) pre += "\x1b[1m";
    if (s.dim) pre += "\x1b[2m";
    if (s.blink) pre += "\x1b[5m";
    return pre ? `${pre}${text}\x1b[0m` : text;
  }

  #headers(h: Headers, out: string[]): void {
    for (const [k, v] of h.fields) {
      out.push(indent(4, `${this.#style(escapedHeader(k), { fg: "blue" })}: ${escapedHeader(v)}`));
    }
  }

  #trailers(t: Headers | null, out: string[]): void {
    if (!t || t.fields.length === 0) return;
    out.push(this.#style(indent(4, "--- HTTP Trailers"), { fg: "magenta" }));
    this.#headers(t, out);
  }

  #message(m: Message, out: string[]): void {
    const o = ctx.options;
    const views = this.#views;
    if (!views) {
      throw new Error("dumper: flow_detail >= 3 without the content views (configure was not awaited)");
    }
    const { highlight, prettifyMessage } = views;
    const viewName = o.dumper_default_contentview as string;
    const pretty = prettifyMessage(m, MITMPROXY_ONLY_VIEWS.includes(viewName) ? "auto" : viewName);
    const text = o.flow_detail === 3 ? cutAfterNLines(pretty.text, o.content_view_lines_cutoff) : pretty.text;
    if (text) {
      out.push("");
      const styled = highlight(text, pretty.syntaxHighlight)
        .map(([tag, chunk]) => this.#style(chunk, CONTENT_STYLES[tag] ?? {})).join("");
      out.push(indent(4, styled));
    }
    if (text.length < pretty.text.length) out.push(this.#style(indent(4, "(cut off)"), { dim: true }));
    if (o.flow_detail >= 2) out.push("");
  }

  #client(f: HTTPFlow): string {
    if (f.isReplay === "request") return this.#style("[replay]", { fg: "yellow", bold: true });
    return f.clientConn.peername ? escapeControlCharacters(formatAddress(f.clientConn.peername)) : "";
  }

  #requestLine(f: HTTPFlow): string {
    const req = f.request;
    const method = req.method + ("h2-pushed-stream" in f.metadata ? " PUSH_PROMISE" : "");
    const methodColor = method.toUpperCase() === "GET"
      ? "green"
      : method.toUpperCase() === "DELETE"
      ? "red"
      : "magenta";
    let url = ctx.options.showhost ? req.prettyUrl : req.url;
    if (ctx.options.flow_detail === 1) {
      const limit = Math.max(terminalWidth() - 25, 50);
      if (url.length > limit) url = url.slice(0, limit) + "…";
    }
    const respVersion = f.response?.httpVersion ?? "HTTP/1.1";
    const ver = !(req.isHttp10 || req.isHttp11) || req.httpVersion !== respVersion
      ? ` ${req.httpVersion}`
      : "";
    return `${this.#client(f)}: ${
      this.#style(escapeControlCharacters(method), { fg: methodColor, bold: true })
    } ${this.#style(escapeControlCharacters(url), { bold: true })}${ver}`;
  }

  #responseLine(f: HTTPFlow): string {
    const r = f.response!;
    const replayStr = f.isReplay === "response" ? "[replay]" : "";
    const replay = replayStr ? this.#style(replayStr, { fg: "yellow", bold: true }) : "";
    const code = r.statusCode;
    const color = code >= 200 && code < 300
      ? "green"
      : code >= 300 && code < 400
      ? "magenta"
      : code >= 400 && code < 600
      ? "red"
      : undefined;
    const codeText = this.#style(String(code), { fg: color, bold: true, blink: code === 418 });
    const reasonText = r.isHttp2 || r.httpVersion === "HTTP/3" ? reasonPhrase(code) : r.reason;
    const reason = this.#style(escapeControlCharacters(reasonText), { fg: color, bold: true });
    const size = this.#style(r.rawContent === null ? "(content missing)" : prettySize(r.rawContent.length), {
      bold: true,
    });
    const ver = !(r.isHttp10 || r.isHttp11) || f.request.httpVersion !== r.httpVersion
      ? `${r.httpVersion} `
      : "";
    let arrows = this.#style(" <<", { bold: true });
    if (ctx.options.flow_detail === 1) {
      const pad = Math.max(
        0,
        formatAddress(f.clientConn.peername).length - (2 + ver.length + replayStr.length),
      );
      arrows = " ".repeat(pad) + arrows;
    }
    return `${replay}${arrows} ${ver}${codeText} ${reason} ${size}`;
  }

  /** The text printed for a finished flow at the current flow_detail ("" at 0). */
  format(f: HTTPFlow): string {
    const detail: number = ctx.options.flow_detail;
    if (detail <= 0) return "";
    const out: string[] = [];
    out.push(this.#requestLine(f));
    if (detail >= 2) this.#headers(f.request.headers, out);
    if (detail >= 3) this.#message(f.request, out);
    if (detail >= 2) this.#trailers(f.request.trailers, out);
    if (f.response) {
      out.push(this.#responseLine(f));
      if (detail >= 2) this.#headers(f.response.headers, out);
      if (detail >= 3) this.#message(f.response, out);
      if (detail >= 2) this.#trailers(f.response.trailers, out);
    }
    if (f.error) {
      out.push(this.#style(` << ${escapeControlCharacters(f.error.msg)}`, { fg: "red", bold: true }));
    }
    return out.join("\n") + "\n";
  }

  #dump(f: HTTPFlow): void {
    if (ctx.options.flow_detail <= 0) return;
    if (this.#filter && !this.#filter(f)) return;
    this.#write(this.format(f));
  }

  response(f: HTTPFlow): void {
    this.#dump(f);
  }

  error(f: HTTPFlow): void {
    this.#dump(f);
  }

  http_connect_error(f: HTTPFlow): void {
    this.#dump(f);
  }

  /** `127.0.0.1:5000 -> WebSocket text message -> example.com:80/ws` (mitmdump's line), the content at 3+. */
  websocket_message(f: HTTPFlow): void {
    const o = ctx.options;
    const m = f.websocket?.messages.at(-1);
    if (!m || o.flow_detail <= 0 || (this.#filter && !this.#filter(f))) return;
    const dir = m.fromClient ? "->" : "<-";
    const type = m.isText ? "text" : "binary";
    let line = `${this.#client(f)} ${dir} WebSocket ${type} message ${dir} ${
      escapeControlCharacters(formatAddress(f.serverConn.address))
    }${escapeControlCharacters(f.request.path)}`;
    if (o.flow_detail >= 3) {
      const text = m.isText ? m.text : String(m).slice("binary message: ".length);
      const cut = o.flow_detail === 3 ? cutAfterNLines(text, o.content_view_lines_cutoff) : text;
      line += "\n" + indent(4, escapeControlCharacters(cut, true));
      if (cut.length < text.length) line += "\n" + this.#style(indent(4, "(cut off)"), { dim: true });
    }
    this.#write(line + "\n");
  }

  /** `127.0.0.1:5000 -> tcp -> example.com:7` (mitmdump's line), the content at 3+. */
  tcp_message(f: TCPFlow): void {
    const o = ctx.options;
    const m = f.messages.at(-1);
    if (!m || o.flow_detail <= 0 || (this.#filter && !this.#filter(f))) return;
    const dir = m.fromClient ? "->" : "<-";
    const client = f.clientConn.peername ? escapeControlCharacters(formatAddress(f.clientConn.peername)) : "";
    let line = `${client} ${dir} tcp ${dir} ${escapeControlCharacters(formatAddress(f.serverConn.address))}`;
    if (o.flow_detail >= 3) {
      const text = escapeControlCharacters(m.text, true);
      const cut = o.flow_detail === 3 ? cutAfterNLines(text, o.content_view_lines_cutoff) : text;
      line += "\n" + indent(4, cut);
    }
    this.#write(line + "\n");
  }

  /** `Error in TCP connection to example.com:7: <error>` (mitmdump's line). */
  tcp_error(f: TCPFlow): void {
    if (ctx.options.flow_detail <= 0 || (this.#filter && !this.#filter(f))) return;
    this.#write(
      this.#style(
        `Error in TCP connection to ${formatAddress(f.serverConn.address)}: ${f.error?.msg ?? ""}`,
        {
          fg: "red",
        },
      ) + "\n",
    );
  }

  /** The dumper prints each message at its own hook: it needs no past ones (see `websocket_keep_messages`). */
  websocketHistory(): boolean {
    return false;
  }

  /** `WebSocket connection closed by client: 1000 bye`, or an error line for abnormal closes (as mitmdump). */
  websocket_end(f: HTTPFlow): void {
    const ws = f.websocket;
    if (!ws || ctx.options.flow_detail <= 0 || (this.#filter && !this.#filter(f))) return;
    const code = ws.closeCode;
    if (code === 1000 || code === 1001 || code === 1005) {
      const by = ws.closedByClient ? "client" : "server";
      this.#write(`WebSocket connection closed by ${by}: ${code} ${ws.closeReason ?? ""}\n`);
      return;
    }
    let err = code !== null && CLOSE_REASONS[code] ? CLOSE_REASONS[code] : `UNKNOWN_ERROR=${code}`;
    if (ws.closeReason) err += ` (reason: ${ws.closeReason})`;
    this.#write(
      this.#style(
        `Error in WebSocket connection to ${formatAddress(f.serverConn.address)}: WebSocket Error: ${err}`,
        { fg: "red" },
      ) + "\n",
    );
  }
}
