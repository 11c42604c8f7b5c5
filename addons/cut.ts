/**
 * cut: extract fields from flows (mitmproxy's `cut.py`). A cut is an attribute path from the flow, in
 * mitmproxy's snake_case or mitmdeno's camelCase: `request.method`, `request.pretty_url`,
 * `response.status_code`, `request.header[content-type]`, `client_conn.peername.host`,
 * `server_conn.address.port`, `request.text`... Commands: `cut FLOWS CUTS` (rows of values),
 * `cut.save FLOWS CUTS PATH` (one value: written as is; else UTF-8 CSV; `+path` appends). No clipboard.
 */
import type { Flow, Loader } from "../mod.ts";
import { CommandError } from "../lib/addons/commands.ts";
import { ctx } from "../lib/addons/ctx.ts";

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isAddr(v: unknown): v is [string, number] {
  return Array.isArray(v) && v.length > 1;
}

/** Extract one cut from a flow: a string, or bytes for binary fields like `request.content`. */
export function extract(cut: string, f: Flow): string | Uint8Array {
  const path = cut.split(".");
  let current: any = f;
  for (let i = 0; i < path.length; i++) {
    const spec = path[i];
    if (spec.startsWith("_") || spec.startsWith("#")) {
      throw new CommandError(`Can't access internal attribute ${spec}`);
    }
    const last = i === path.length - 1;
    if (last) {
      if (spec === "port" && isAddr(current)) return String(current[1]);
      if (spec === "host" && isAddr(current)) return String(current[0]);
      if (spec.startsWith("header[")) {
        if (!spec.endsWith("]")) throw new CommandError(`Invalid header spec: ${spec}`);
        if (!current) return "";
        return current.headers?.get(spec.slice(7, -1).trim()) ?? "";
      }
    }
    let part: any = undefined;
    if (current !== null && current !== undefined) {
      part = spec in Object(current) ? current[spec] : current[camel(spec)];
      if (typeof part === "function") throw new CommandError(`${spec} is a method, not a field`);
    }
    if (last) {
      if (part instanceof Uint8Array) return part;
      if (typeof part === "boolean") return part ? "true" : "false";
    }
    current = part;
  }
  if (current === null || current === undefined || current === "" || current === 0 || current === false) {
    return current === 0 ? "0" : "";
  }
  if (isAddr(current)) return `${current[0]}:${current[1]}`;
  return String(current);
}

function bytesRepr(b: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    let s = "b'";
    for (const x of b) {
      if (x === 0x5c) s += "\\\\";
      else if (x === 0x27) s += "\\'";
      else if (x >= 0x20 && x < 0x7f) s += String.fromCharCode(x);
      else s += `\\x${x.toString(16).padStart(2, "0")}`;
    }
    return s + "'";
  }
}

/** {@link extract} as text (bytes decoded as UTF-8, else shown as a Python bytes literal). */
export function extractStr(cut: string, f: Flow): string {
  const v = extract(cut, f);
  return typeof v === "string" ? v : bytesRepr(v);
}

/** One CSV row as Python's `csv.writer` writes it (minimal quoting, `\r\n`). */
export function csvRow(values: string[]): string {
  return values.map((v) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v)).join(",") + "\r\n";
}

function asList<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}

function cutList(cuts: string | string[]): string[] {
  return Array.isArray(cuts) ? cuts : cuts.split(",").map((c) => c.trim()).filter(Boolean);
}

/** The cut addon (commands only). */
export class Cut {
  readonly name = "cut";

  load(loader: Loader): void {
    loader.addCommand(
      "cut",
      (flows: Flow | Flow[], cuts: string | string[]) => this.cut(flows, cuts),
      "cut FLOWS CUTS: extract fields (rows of values, one per flow).",
    );
    loader.addCommand(
      "cut.save",
      (flows: Flow | Flow[], cuts: string | string[], path: string) => this.save(flows, cuts, path),
      "cut.save FLOWS CUTS PATH: save cuts to a file (CSV unless one value; +PATH appends).",
    );
  }

  cut(flows: Flow | Flow[], cuts: string | string[]): (string | Uint8Array)[][] {
    const cs = cutList(cuts);
    return asList(flows).map((f) => cs.map((c) => extract(c, f)));
  }

  async save(flows: Flow | Flow[], cuts: string | string[], path: string): Promise<void> {
    const fl = asList(flows);
    const cs = cutList(cuts);
    let append = false;
    if (path.startsWith("+")) {
      append = true;
      path = path.slice(1);
    }
    if (path === "~" || path.startsWith("~/")) path = (Deno.env.get("HOME") ?? "") + path.slice(1);
    try {
      if (cs.length === 1 && fl.length === 1) {
        let existing = 0;
        if (append) {
          try {
            existing = (await Deno.stat(path)).size;
          } catch { /* new file */ }
        }
        const v = extract(cs[0], fl[0]);
        const bytes = typeof v === "string" ? new TextEncoder().encode(v) : v;
        const data = existing > 0 ? new Uint8Array([0x0a, ...bytes]) : bytes;
        await Deno.writeFile(path, data, { append });
        ctx.log.alert("Saved single cut.");
      } else {
        const text = fl.map((f) => csvRow(cs.map((c) => extractStr(c, f)))).join("");
        await Deno.writeTextFile(path, text, { append });
        ctx.log.alert(`Saved ${cs.length} cuts over ${fl.length} flows as CSV.`);
      }
    } catch (e) {
      ctx.log.error((e as Error).message);
    }
  }
}
