/**
 * export: turn a flow into a curl command, an HTTPie command, raw HTTP/1 bytes or a HAR entry
 * (mitmproxy's `export.py`, plus `har`). Commands: `export.formats`, `export` (returns the text),
 * `export.file FORMAT FLOW PATH`. There is no clipboard in a terminal proxy, so `export.clip` is absent.
 */
import { type Flow, HTTPFlow, type Loader, type Request, type Response, VERSION } from "../mod.ts";
import { concat, fromLatin1, latin1 } from "../lib/http/bytes.ts";
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

/** The flow's request as a curl command line. */
export function curlCommand(f: Flow): string {
  const r = popHeaders(needRequest(f));
  const args = ["curl"];
  const server = f.serverConn.address?.[0];
  if (server && r.prettyHost !== server) args.push("--resolve", `${r.prettyHost}:${r.port}:[${server}]`);
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

function harHeaders(h: Iterable<[string, string]>): { name: string; value: string }[] {
  return [...h].map(([name, value]) => ({ name, value }));
}

function iso(t: number): string {
  return new Date(t * 1000).toISOString();
}

/** A HAR 1.2 `entry` object for an HTTP flow (timings from the flow's timestamps, -1 when unknown). */
export function harEntry(f: Flow): Record<string, unknown> {
  if (!(f instanceof HTTPFlow)) throw new CommandError("Can't export a non-HTTP flow as HAR.");
  const req = f.request;
  const resp = f.response;
  const reqText = req.getText(false) ?? "";
  const ms = (a: number | null | undefined, b: number | null | undefined) =>
    a != null && b != null ? Math.max(0, Math.round((b - a) * 1000)) : -1;
  const timings = {
    send: ms(req.timestampStart, req.timestampEnd),
    wait: ms(req.timestampEnd, resp?.timestampStart),
    receive: ms(resp?.timestampStart, resp?.timestampEnd),
  };
  const total = [timings.send, timings.wait, timings.receive].filter((x) => x >= 0).reduce((a, b) => a + b, 0);
  const entry: Record<string, unknown> = {
    startedDateTime: iso(req.timestampStart),
    time: total,
    request: {
      method: req.method,
      url: req.prettyUrl,
      httpVersion: req.httpVersion,
      cookies: req.cookies.map(([name, value]) => ({ name, value })),
      headers: harHeaders(req.headers.items(true)),
      queryString: [...req.query].map(([name, value]) => ({ name, value })),
      headersSize: -1,
      bodySize: req.rawContent?.length ?? -1,
      ...(reqText
        ? { postData: { mimeType: req.headers.get("content-type") ?? "", text: reqText, params: [] } }
        : {}),
    },
    response: resp
      ? (() => {
        const body = resp.getContent(false) ?? new Uint8Array(0);
        let text: string;
        let encoding: string | undefined;
        try {
          text = new TextDecoder("utf-8", { fatal: true }).decode(body);
        } catch {
          text = btoa(latin1(body));
          encoding = "base64";
        }
        return {
          status: resp.statusCode,
          statusText: resp.reason,
          httpVersion: resp.httpVersion,
          cookies: resp.cookies.map(([name, value]) => ({ name, value })),
          headers: harHeaders(resp.headers.items(true)),
          content: {
            size: body.length,
            compression: body.length - (resp.rawContent?.length ?? body.length),
            mimeType: resp.headers.get("content-type") ?? "",
            text,
            ...(encoding ? { encoding } : {}),
          },
          redirectURL: resp.headers.get("location") ?? "",
          headersSize: -1,
          bodySize: resp.rawContent?.length ?? -1,
        };
      })()
      : {
        status: 0,
        statusText: "",
        httpVersion: "",
        headers: [],
        cookies: [],
        content: { size: 0, mimeType: "" },
        redirectURL: "",
        headersSize: -1,
        bodySize: -1,
      },
    cache: {},
    timings,
    serverIPAddress: f.serverConn.peername?.[0] ?? f.serverConn.address?.[0] ?? "",
  };
  if (f.comment) entry.comment = f.comment;
  if (f.error) entry._error = f.error.msg;
  return entry;
}

/** A whole HAR document for `flows` (what `har` export writes to a file). */
export function harLog(flows: Flow[]): Record<string, unknown> {
  return {
    log: {
      version: "1.2",
      creator: { name: "mitmdeno", version: VERSION },
      pages: [],
      entries: flows.map(harEntry),
    },
  };
}

/** Export formats: name -> function returning text or bytes. */
export const FORMATS: Record<string, (f: Flow) => string | Uint8Array> = {
  curl: curlCommand,
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
    loader.addCommand("export.formats", () => this.formats(), "Return a list of the supported export formats.");
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
    return fn(flow);
  }

  async file(format: string, flow: Flow, path: string): Promise<void> {
    const v = this.export(format, flow);
    await Deno.writeFile(path, typeof v === "string" ? new TextEncoder().encode(v) : v);
  }
}
