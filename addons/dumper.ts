/**
 * The dumper addon: mitmdump's flow printer. One line per request and one per response at
 * `flow_detail` 1; headers at 2; bodies at 3 (cut at 512 lines); everything at 4.
 */
import type { Loader } from "../lib/addons/manager.ts";
import type { HTTPFlow } from "../lib/flow/flow.ts";
import type { Headers } from "../lib/http/headers.ts";
import type { Message } from "../lib/http/message.ts";
import { latin1, prettySize } from "../lib/http/bytes.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { OptionsError } from "../lib/addons/options.ts";
import { type Filter, parseFilterOrNull } from "../lib/addons/filter_option.ts";

const LINES_CUTOFF = 512;

/** Where dumper output goes (one call per printed block, newline included). */
export type Writer = (text: string) => void;

function stdoutWriter(): Writer {
  const enc = new TextEncoder();
  return (t) => {
    try {
      Deno.stdout.writeSync(enc.encode(t));
    } catch { /* stdout closed (e.g. piped into head): nothing to do */ }
  };
}

const C = {
  reset: "\x1b[0m",
  dim: "\x1b[2m",
  bold: "\x1b[1m",
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  blue: "\x1b[34m",
  magenta: "\x1b[35m",
  cyan: "\x1b[36m",
};

/** Prints flows as they complete. */
export class Dumper {
  readonly name = "dumper";
  #write: Writer;
  #color: boolean;
  #filter: Filter | null = null;

  constructor(write?: Writer, color?: boolean) {
    this.#write = write ?? stdoutWriter();
    this.#color = color ?? (write ? false : Deno.stdout.isTerminal());
  }

  load(loader: Loader): void {
    loader.addOption(
      "flow_detail",
      "int",
      1,
      "Flow detail: 0 nothing, 1 one line per flow, 2 headers, 3 bodies cut at 512 lines, 4 everything.",
    );
    loader.addOption(
      "dumper_filter",
      "optional str",
      null,
      "Limit which flows are dumped (filter expression).",
    );
    loader.addOption("dumper_default_contentview", "str", "auto", "The default content view mode.", [
      "auto",
      "raw",
    ]);
  }

  configure(updated: Set<string>): void {
    const o = ctx.options;
    if (updated.has("flow_detail") && (o.flow_detail < 0 || o.flow_detail > 4)) {
      throw new OptionsError(`Option "flow_detail": ${o.flow_detail} is out of range, expected 0 to 4`);
    }
    if (updated.has("dumper_filter")) this.#filter = parseFilterOrNull("dumper_filter", o.dumper_filter);
  }

  #c(color: keyof typeof C, s: string): string {
    return this.#color ? `${C[color]}${s}${C.reset}` : s;
  }

  #statusColor(code: number): keyof typeof C {
    if (code >= 500) return "red";
    if (code >= 400) return "magenta";
    if (code >= 300) return "cyan";
    if (code >= 200) return "green";
    return "yellow";
  }

  #headers(h: Headers): string {
    return h.fields.map(([k, v]) => `    ${this.#c("blue", k)}: ${v}\n`).join("");
  }

  #body(m: Message, detail: number): string {
    const c = m.getContent(false);
    if (!c || c.length === 0) return "";
    const ct = m.headers.get("content-type") ?? "";
    let text: string;
    if (/json/i.test(ct)) {
      try {
        text = JSON.stringify(JSON.parse(m.getText(false) ?? ""), null, 2);
      } catch {
        text = m.getText(false) ?? "";
      }
    } else if (/^(text\/|application\/(javascript|xml|x-www-form-urlencoded))/i.test(ct) || isPrintable(c)) {
      text = m.getText(false) ?? "";
    } else {
      text = hexdump(c.subarray(0, detail >= 4 ? c.length : 16 * LINES_CUTOFF));
    }
    let lines = text.split("\n");
    let cut = false;
    if (detail < 4 && lines.length > LINES_CUTOFF) {
      lines = lines.slice(0, LINES_CUTOFF);
      cut = true;
    }
    return lines.map((l) => `    ${l}\n`).join("") + (cut ? this.#c("dim", "    (cut off)\n") : "") + "\n";
  }

  #requestLine(f: HTTPFlow): string {
    const detail: number = ctx.options.flow_detail;
    const req = f.request;
    const client = f.clientConn.peername ? `${f.clientConn.peername[0]}:${f.clientConn.peername[1]}` : "";
    let url = ctx.options.showhost ? req.prettyUrl : req.url;
    if (detail <= 1) {
      const cols = Deno.stdout.isTerminal() ? Deno.consoleSize().columns : 0;
      if (cols > 40 && url.length > cols - 25) url = url.slice(0, cols - 26) + "…";
    }
    const replay = f.isReplay === "request" ? "[replay] " : "";
    const ver = req.httpVersion !== "HTTP/1.1" ? ` ${req.httpVersion}` : "";
    return `${this.#c("dim", client + ":")} ${replay}${this.#c("bold", req.method)} ${url}${ver}`;
  }

  /** The text printed for a finished flow at the current flow_detail. */
  format(f: HTTPFlow): string {
    const detail: number = ctx.options.flow_detail;
    if (detail <= 0) return "";
    let out = this.#requestLine(f) + "\n";
    if (detail >= 2) out += this.#headers(f.request.headers);
    if (detail >= 3) out += this.#body(f.request, detail);
    // align the status code under the request method, as mitmdump does
    const addr = f.clientConn.peername ? `${f.clientConn.peername[0]}:${f.clientConn.peername[1]}` : "";
    const indent = " ".repeat(Math.max(0, addr.length - 2));
    if (f.response) {
      const r = f.response;
      const size = r.rawContent ? prettySize(r.rawContent.length) : "[no content]";
      const ms = r.timestampEnd && f.request.timestampStart
        ? ` ${Math.max(0, Math.round((r.timestampEnd - f.request.timestampStart) * 1000))}ms`
        : "";
      const replay = f.isReplay === "response" ? "[replay] " : "";
      out += `${indent} << ${replay}${
        this.#c(this.#statusColor(r.statusCode), `${r.statusCode} ${r.reason}`)
      } ${size}${this.#c("dim", ms)}\n`;
      if (detail >= 2) out += this.#headers(r.headers);
      if (detail >= 3) out += this.#body(r, detail);
    } else if (f.error) {
      out += `${indent} << ${this.#c("red", f.error.msg)}\n`;
    }
    if (detail >= 2) out += "\n";
    return out;
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
}

function isPrintable(b: Uint8Array): boolean {
  const n = Math.min(b.length, 512);
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c < 9 || (c > 13 && c < 32)) return false;
  }
  return true;
}

function hexdump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.subarray(i, i + 16);
    const hex = [...row].map((x) => x.toString(16).padStart(2, "0")).join(" ");
    const asc = latin1(row).replace(/[^\x20-\x7e]/g, ".");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${hex.padEnd(48)}  ${asc}`);
  }
  return lines.join("\n");
}
