/// <reference lib="dom" />
/** Content views, in the browser: auto, raw, hex, JSON (collapsible), HTML/XML, CSS/JS, image, forms, query. */
import { useState } from "preact/hooks";
import type { JSX } from "preact";

/** The views offered for a message. */
export const VIEWS = [
  "auto",
  "raw",
  "hex",
  "json",
  "html",
  "xml",
  "css",
  "javascript",
  "image",
  "urlencoded",
  "multipart",
  "query",
] as const;
export type ViewName = typeof VIEWS[number];

const dec = new TextDecoder();

/** What "auto" picks from the content type and the bytes. */
export function autoView(contentType: string, data: Uint8Array, isRequest: boolean): ViewName {
  const ct = contentType.toLowerCase();
  if (ct.includes("json")) return "json";
  if (ct.startsWith("image/")) return "image";
  if (ct.includes("html")) return "html";
  if (ct.includes("xml")) return "xml";
  if (ct.includes("css")) return "css";
  if (ct.includes("javascript") || ct.includes("ecmascript")) return "javascript";
  if (ct.includes("x-www-form-urlencoded")) return "urlencoded";
  if (ct.includes("multipart/form-data")) return "multipart";
  if (!data.length && isRequest) return "query";
  let bin = 0;
  for (let i = 0; i < Math.min(data.length, 512); i++) {
    if (data[i] < 9 || (data[i] > 13 && data[i] < 32)) bin++;
  }
  return bin > 8 ? "hex" : "raw";
}

export function hexdump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.subarray(i, i + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, "0")).join(" ");
    const asc = Array.from(row, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : ".")).join("");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${hex.padEnd(48)}  ${asc}`);
  }
  return lines.join("\n");
}

/** Indent markup: one tag per line. */
export function prettyMarkup(s: string): string {
  const tokens = s.replace(/>\s*</g, "><").split(/(?=<)|(?<=>)/);
  let depth = 0;
  const out: string[] = [];
  for (const t of tokens) {
    if (!t.trim()) continue;
    if (/^<\//.test(t)) depth = Math.max(0, depth - 1);
    out.push("  ".repeat(depth) + t.trim());
    if (
      /^<[^!?/][^>]*[^/]>$/.test(t) && !/^<(br|hr|img|input|meta|link|area|base|col|source|wbr)\b/i.test(t)
    ) depth++;
  }
  return out.join("\n");
}

/** Put statements and blocks of CSS/JS on their own lines. */
export function prettyCode(s: string): string {
  if (s.split("\n").length > 5) return s;
  let depth = 0;
  let out = "";
  let q = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      out += c;
      if (c === "\\") out += s[++i] ?? "";
      else if (c === q) q = "";
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      q = c;
      out += c;
    } else if (c === "{") {
      depth++;
      out += " {\n" + "  ".repeat(depth);
    } else if (c === "}") {
      depth = Math.max(0, depth - 1);
      out = out.trimEnd() + "\n" + "  ".repeat(depth) + "}\n" + "  ".repeat(depth);
    } else if (c === ";") out += ";\n" + "  ".repeat(depth);
    else out += c;
  }
  return out.trim();
}

function JsonNode({ k, v, depth }: { k?: string; v: unknown; depth: number }): JSX.Element {
  const [open, setOpen] = useState(depth < 3);
  const key = k !== undefined ? <span class="k">{JSON.stringify(k)}:</span> : null;
  if (v !== null && typeof v === "object") {
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
    const [o, c] = Array.isArray(v) ? ["[", "]"] : ["{", "}"];
    return (
      <li>
        <span class="tog" onClick={() => setOpen(!open)}>{open ? "▾ " : "▸ "}</span>
        {key}
        {o}
        {open
          ? (
            <ul>
              {entries.map(([kk, vv]) => (
                <JsonNode key={kk} k={Array.isArray(v) ? undefined : kk} v={vv} depth={depth + 1} />
              ))}
            </ul>
          )
          : <span class="tog" onClick={() => setOpen(true)}>… {entries.length} items</span>}
        {c}
      </li>
    );
  }
  const cls = typeof v === "string" ? "s" : "n";
  return (
    <li>
      {key}
      <span class={cls}>{JSON.stringify(v)}</span>
    </li>
  );
}

function table(pairs: [string, string][]): JSX.Element {
  if (!pairs.length) return <div class="muted">(empty)</div>;
  return (
    <table class="kv">
      <tbody>
        {pairs.map(([k, v], i) => (
          <tr key={i}>
            <td>{k}</td>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function multipart(ct: string, data: Uint8Array): [string, string][] {
  const b = /boundary="?([^";]+)"?/i.exec(ct)?.[1];
  if (!b) return [];
  const text = new TextDecoder("latin1").decode(data);
  const out: [string, string][] = [];
  for (const part of text.split(`--${b}`)) {
    const i = part.indexOf("\r\n\r\n");
    if (i === -1) continue;
    const head = part.slice(0, i);
    const name = /name="([^"]*)"/i.exec(head)?.[1] ?? "?";
    const file = /filename="([^"]*)"/i.exec(head)?.[1];
    out.push([file ? `${name} (file ${file})` : name, part.slice(i + 4).replace(/\r\n$/, "")]);
  }
  return out;
}

/** Render `data` with `view`. Large contents are cut for display (download gives all of it). */
export function ContentView(
  { view, data, contentType, query }: {
    view: ViewName;
    data: Uint8Array;
    contentType: string;
    query: [string, string][];
  },
): JSX.Element {
  const LIMIT = 1 << 20;
  const cut = data.length > LIMIT;
  const shown = cut ? data.subarray(0, LIMIT) : data;
  const note = cut
    ? <div class="muted">Showing the first 1 MiB of {data.length} bytes; download for the rest.</div>
    : null;
  const text = () => dec.decode(shown);
  let body: JSX.Element;
  switch (view) {
    case "hex":
      body = <pre>{hexdump(shown)}</pre>;
      break;
    case "json": {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text());
      } catch (e) {
        body = (
          <div>
            <div class="errtxt">Not valid JSON: {(e as Error).message}</div>
            <pre>{text()}</pre>
          </div>
        );
        break;
      }
      body = <ul class="jt" style="padding-left:0">{<JsonNode v={parsed} depth={0} />}</ul>;
      break;
    }
    case "html":
    case "xml":
      body = <pre>{prettyMarkup(text())}</pre>;
      break;
    case "css":
    case "javascript":
      body = <pre>{prettyCode(text())}</pre>;
      break;
    case "image": {
      const url = URL.createObjectURL(
        new Blob([data as Uint8Array<ArrayBuffer>], { type: contentType || "image/png" }),
      );
      body = <img class="preview" src={url} alt="image preview" />;
      break;
    }
    case "urlencoded":
      body = table([...new URLSearchParams(text())]);
      break;
    case "multipart":
      body = table(multipart(contentType, shown));
      break;
    case "query":
      body = table(query);
      break;
    default:
      body = <pre>{text()}</pre>;
  }
  return <div>{note}{body}</div>;
}
