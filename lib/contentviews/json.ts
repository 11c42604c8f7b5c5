/**
 * JSON and GraphQL views. JSON is re-indented by 4 spaces from its tokens, not through `JSON.parse`, so key
 * order, duplicate keys and number spellings (big integers, `1.0`) stay as sent; strings are unescaped as
 * Python's `json.dumps(ensure_ascii=False)` shows them.
 */
import type { ContentView, Metadata } from "./types.ts";

class JsonSyntaxError extends Error {}

/** Re-indent JSON text (4 spaces, `", "` and `": "` like Python's `json.dumps(indent=4)`). Throws on bad JSON. */
export function prettyJson(src: string): string {
  let i = 0;
  const ws = () => {
    while (i < src.length && " \t\n\r".includes(src[i])) i++;
  };
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at offset ${i}`);
  };
  const value = (depth: number): string => {
    ws();
    const c = src[i];
    const pad = "    ".repeat(depth + 1);
    const end = "    ".repeat(depth);
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (src[i] === close) {
        i++;
        return c + close;
      }
      const items: string[] = [];
      for (;;) {
        ws();
        let item = "";
        if (c === "{") {
          if (src[i] !== '"') fail("expected a key");
          item = `${string()}: `;
          ws();
          if (src[i] !== ":") fail('expected ":"');
          i++;
        }
        items.push(pad + item + value(depth + 1));
        ws();
        if (src[i] === ",") {
          i++;
          continue;
        }
        if (src[i] === close) {
          i++;
          break;
        }
        fail(`expected "," or "${close}"`);
      }
      return `${c}\n${items.join(",\n")}\n${end}${close}`;
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(src.slice(i, i + 400));
    if (!m) fail("expected a value");
    i += m![0].length;
    return m![0];
  };
  const string = (): string => {
    const start = i;
    i++;
    while (i < src.length && src[i] !== '"') {
      if (src[i] === "\\") i++;
      else if (src.charCodeAt(i) < 0x20) fail("control character in a string");
      i++;
    }
    if (i >= src.length) fail("unterminated string");
    i++;
    // unescape and show as Python does (non-ASCII as is, control characters escaped)
    return JSON.stringify(JSON.parse(src.slice(start, i)));
  };
  const out = value(0);
  ws();
  if (i < src.length) fail("extra data");
  return out;
}

function isJsonType(ct: string | undefined): boolean {
  if (!ct) return false;
  return ct === "application/json" || ct === "application/json-rpc" ||
    (ct.startsWith("application/") && ct.endsWith("json"));
}

/** Indented JSON. */
export const json: ContentView = {
  name: "JSON",
  syntaxHighlight: "yaml",
  prettify: (data) => prettyJson(new TextDecoder().decode(data)),
  renderPriority: (data, m) => data.length && isJsonType(m.contentType) ? 1 : 0,
};

function isQuery(d: unknown): d is { query: string } {
  return typeof d === "object" && d !== null && !Array.isArray(d) &&
    typeof (d as { query?: unknown }).query === "string" && (d as { query: string }).query.includes("\n");
}

function isBatch(d: unknown): d is { query: string }[] {
  return Array.isArray(d) && d.length > 0 && typeof d[0] === "object" && d[0] !== null && "query" in d[0];
}

function formatQuery(d: { query: string }): string {
  return `${JSON.stringify({ ...d, query: "..." }, null, 2)}\n---\n${d.query}\n`;
}

/** A GraphQL request: its other fields as JSON, then the query itself. */
export const graphql: ContentView = {
  name: "GraphQL",
  syntaxHighlight: "none",
  prettify(data) {
    const d = JSON.parse(new TextDecoder().decode(data));
    if (isQuery(d)) return formatQuery(d);
    if (isBatch(d)) return d.map((q, i) => `--- ${i}/${d.length - 1}\n${formatQuery(q)}`).join("");
    throw new Error("Not a GraphQL message.");
  },
  renderPriority(data: Uint8Array, m: Metadata) {
    if (m.contentType !== "application/json" || !data.length) return 0;
    try {
      const d = JSON.parse(new TextDecoder().decode(data));
      return isQuery(d) || isBatch(d) ? 2 : 0;
    } catch {
      return 0;
    }
  },
};
