/**
 * export: turn a flow into a curl command, an HTTPie command, raw HTTP/1 bytes or a HAR entry
 * (mitmproxy's `export.py`, plus `har`). Commands: `export.formats`, `export` (returns the text),
 * `export.file FORMAT FLOW PATH`. There is no clipboard in a terminal proxy, so `export.clip` is absent.
 */
import { ctx, type Flow, HTTPFlow, type Loader, type Request, type Response } from "../mod.ts";
import { concat, fromLatin1 } from "../lib/http/bytes.ts";
import { flowToHarEntry, type HarEntry } from "../lib/io/har.ts";
import { CommandError } from "../lib/addons/commands.ts";

function needRequest(f: Flow): Request {
  if (!(f instanceof HTTPFlow)) throw new CommandError("Can't export flow with no request.");
  const r = f.request.copy();
  r.decode(false);
  return r;
}

function needResponse(f: Flow): Response {
  if (!(f instanceof HTTPFlow) || !f.response) throw new CommandError("Can't export flow with no response.");
  const r = f.response.copy();
  r.decode(false);
  return r;
}

function popHeaders(r: Request): Request {
  r.headers.delete("content-length");
  if (r.headers.get("host") === r.host) r.headers.delete("host");
  return r;
}

/** POSIX shell quoting, like Python's `shlex.quote`. */
export function shellQuote(s: string): string {
  if (s === "") return "''";
  if (/^[\w@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

function bodyForConsole(r: Request): string {
  let text: string | null;
  try {
    text = r.getText(true);
  } catch {
    throw new CommandError("Request content must be valid unicode");
  }
  // deno-lint-ignore no-control-regex
  return (text ?? "").replace(/[\x00-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * The flow's request as a curl command line. `preserveOriginalIp` (`export_preserve_original_ip`): connect to
 * the IP address the proxy connected to (`--resolve`), when it differs from the request's host.
 */
export function curlCommand(f: Flow, preserveOriginalIp = false): string {
  const r = popHeaders(needRequest(f));
  const args = ["curl"];
  const server = f.serverConn.peername?.[0];
  if (preserveOriginalIp && server && r.prettyHost !== server) {
    args.push("--resolve", `${r.prettyHost}:${r.port}:[${server}]`);
  }
  for (const [k, v] of r.headers.items(true)) {
    if (k.toLowerCase() === "accept-encoding") args.push("--compressed");
    else args.push("-H", `${k}: ${v}`);
  }
  if (r.method !== "GET") args.push("-X", r.method);
  args.push(r.prettyUrl);
  if (r.rawContent?.length) args.push("-d", bodyForConsole(r));
  return args.map(shellQuote).join(" ");
}

/** The flow's request as an HTTPie command line. */
export function httpieCommand(f: Flow): string {
  const r = popHeaders(needRequest(f));
  const args = ["http", r.method, r.prettyUrl];
  for (const [k, v] of r.headers.items(true)) args.push(`${k}: ${v}`);
  let cmd = args.map(shellQuote).join(" ");
  if (r.rawContent?.length) cmd += " <<< " + shellQuote(bodyForConsole(r));
  return cmd;
}

function requestTarget(r: Request): string {
  if (r.method === "CONNECT") return r.authority || `${r.host}:${r.port}`;
  return r.path;
}

/** The request as HTTP/1 bytes (decoded body). */
export function rawRequest(f: Flow): Uint8Array {
  const r = needRequest(f);
  let head = `${r.method} ${requestTarget(r)} ${r.httpVersion}\r\n`;
  for (const [k, v] of r.headers.items(true)) head += `${k}: ${v}\r\n`;
  return concat([fromLatin1(head + "\r\n"), r.rawContent ?? new Uint8Array(0)]);
}

/** The response as HTTP/1 bytes (decoded body). */
export function rawResponse(f: Flow): Uint8Array {
  const r = needResponse(f);
  let head = `${r.httpVersion} ${r.statusCode} ${r.reason}\r\n`;
  for (const [k, v] of r.headers.items(true)) head += `${k}: ${v}\r\n`;
  return concat([fromLatin1(head + "\r\n"), r.rawContent ?? new Uint8Array(0)]);
}

/** Request and response (whichever exist), separated by a blank line. */
export function raw(f: Flow, separator: string = "\r\n\r\n"): Uint8Array {
  if (!(f instanceof HTTPFlow)) throw new CommandError("Can't export flow with no request or response.");
  if (f.response) return concat([rawRequest(f), fromLatin1(separator), rawResponse(f)]);
  return rawRequest(f);
}

/** A HAR 1.2 `entry` for an HTTP flow (the same as `savehar`/`hardump` write, from `lib/io/har.ts`). */
export function harEntry(f: Flow): HarEntry {
  if (!(f instanceof HTTPFlow)) throw new CommandError("Can't export a non-HTTP flow as HAR.");
  return flowToHarEntry(f);
}

/** Export formats: name -> function returning text or bytes. */
export const FORMATS: Record<string, (f: Flow) => string | Uint8Array> = {
  curl: (f) => curlCommand(f),
  httpie: httpieCommand,
  raw: (f) => raw(f),
  raw_request: rawRequest,
  raw_response: rawResponse,
  har: (f) => JSON.stringify(harEntry(f), null, 2),
};

/** The export addon (commands only). */
export class Export {
  readonly name = "export";

  load(loader: Loader): void {
    loader.addOption(
      "export_preserve_original_ip",
      "bool",
      false,
      "When exporting a request as an external command, make an effort to connect to the same IP as in the " +
        "original request. This helps with reproducibility in cases where the behaviour depends on the " +
        "particular host we are connecting to. Currently this only affects curl exports.",
    );
    loader.addCommand(
      "export.formats",
      () => this.formats(),
      "Return a list of the supported export formats.",
    );
    loader.addCommand(
      "export",
      (format: string, flow: Flow) => this.export(format, flow),
      "export FORMAT FLOW: return the flow exported in FORMAT (text; bytes for raw formats).",
    );
    loader.addCommand(
      "export.file",
      (format: string, flow: Flow, path: string) => this.file(format, flow, path),
      "export.file FORMAT FLOW PATH: export a flow to a file.",
    );
  }

  formats(): string[] {
    return Object.keys(FORMATS).sort();
  }

  export(format: string, flow: Flow): string | Uint8Array {
    const fn = FORMATS[format];
    if (!fn) throw new CommandError(`No such export format: ${format}`);
    if (format === "curl") return curlCommand(flow, !!ctx.options.export_preserve_original_ip);
    return fn(flow);
  }

  async file(format: string, flow: Flow, path: string): Promise<void> {
    const v = this.export(format, flow);
    await Deno.writeFile(path, typeof v === "string" ? new TextEncoder().encode(v) : v);
  }
}
