/**
 * CSS and JavaScript views: whitespace-only beautifiers that work on any input (ports of mitmproxy's
 * `_view_css.py` and `_view_javascript.py`). Strings, comments and regex literals ("special areas") are
 * protected from the rewrite rules by moving their delimiter characters to the private use plane meanwhile.
 */
import type { ContentView } from "./types.ts";
import { decodeUtf8Backslash } from "./text.ts";

const NO_ESCAPE = String.raw`(?<!\\)(?:\\\\)*`;
const MULTILINE_CONTENT = String.raw`[\s\S]*?`;
const SINGLELINE_CONTENT = String.raw`.*?`;
const MULTILINE_CONTENT_LINE_CONTINUATION = String.raw`(?:.|(?<=\\)\n)*?`;

function escapeSpecialAreas(data: string, areas: string[], controlChars: string): string {
  const parts = data.split(new RegExp(`(${areas.join("|")})`, "m"));
  const rex = new RegExp(`[${controlChars}]`, "g");
  return parts.map((x, i) =>
    i % 2 ? (x ?? "").replace(rex, (c) => String.fromCharCode(c.charCodeAt(0) + 0xe000)) : x ?? ""
  ).join("");
}

function unescapeSpecialAreas(data: string): string {
  return data.replace(/[\ue000-\ue0ff]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xe000));
}

const CSS_AREAS = [
  `'${SINGLELINE_CONTENT}${NO_ESCAPE}'`,
  `"${SINGLELINE_CONTENT}${NO_ESCAPE}"`,
  String.raw`/\*${MULTILINE_CONTENT}\*/`,
  `//${SINGLELINE_CONTENT}$`,
];

/** Beautify CSS: one declaration per line, 4-space indent, a blank line after each block. */
export function beautifyCss(css: string, indent = "    "): string {
  let d = escapeSpecialAreas(css.trim(), CSS_AREAS, "{};:");
  d = d.replace(/\s*;\s*/g, ";\n");
  d = d.replace(/\s*{\s*/g, " {\n");
  d = d.replace(/\s*}\s*/g, "\n}\n\n");
  d = d.replace(/\s*:\s*(?=[^{]+})/g, ": ");
  d = d.replace(/\s*,\s*/g, ", ");
  d = d.replace(/\n[ \t]+/g, "\n");
  d = d.replace(/\n(?![}\n])(?=[^{]*})/g, "\n" + indent);
  d = unescapeSpecialAreas(d);
  return d.replace(/\n+$/, "") + "\n";
}

const JS_AREAS = [
  String.raw`(?<=[^\w\s)])\s*/(?:[^\n/]|(?<!\\)(?:\\\\)*\\/)+?/(?=[gimsuy]{0,6}\s*(?:[;,).\n]|$))`,
  `'${MULTILINE_CONTENT_LINE_CONTINUATION}${NO_ESCAPE}'`,
  `"${MULTILINE_CONTENT_LINE_CONTINUATION}${NO_ESCAPE}"`,
  `\`${MULTILINE_CONTENT}${NO_ESCAPE}\``,
  String.raw`/\*${MULTILINE_CONTENT}\*/`,
  `//${SINGLELINE_CONTENT}$`,
  String.raw`for\(${SINGLELINE_CONTENT}\)`,
];

/** Beautify JavaScript: statements on their own lines, 2 spaces per open brace. */
export function beautifyJs(js: string): string {
  let d = escapeSpecialAreas(js, JS_AREAS, "{};\n");
  d = d.replace(/\s*{\s*(?!};)/g, " {\n");
  d = d.replace(/\s*;\s*/g, ";\n");
  d = d.replace(/(?<!{)\s*}(;)?\s*/g, "\n}$1\n");
  let out = "";
  let level = 0;
  for (const line of d.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    if (line.endsWith("{\n")) {
      out += " ".repeat(2 * level) + line;
      level++;
    } else if (line.startsWith("}")) {
      level--;
      out += " ".repeat(Math.max(0, 2 * level)) + line;
    } else out += " ".repeat(Math.max(0, 2 * level)) + line;
  }
  return unescapeSpecialAreas(out);
}

/** Beautified CSS. */
export const css: ContentView = {
  name: "CSS",
  syntaxHighlight: "css",
  prettify: (data) => beautifyCss(decodeUtf8Backslash(data)),
  renderPriority: (data, m) => (data.length && m.contentType === "text/css" ? 1 : 0),
};

const JS_TYPES = ["application/x-javascript", "application/javascript", "text/javascript"];

/** Beautified JavaScript. */
export const javascript: ContentView = {
  name: "JavaScript",
  syntaxHighlight: "javascript",
  prettify: (data) => beautifyJs(new TextDecoder().decode(data)),
  renderPriority: (data, m) => (data.length && JS_TYPES.includes(m.contentType ?? "") ? 1 : 0),
};
