/**
 * The XML/HTML view: a whitespace-only re-indenter that works on any input (a port of mitmproxy's
 * `_view_xml_html.py`: tokenize into tags and text, indent by 2 per open element, keep `<a>text</a>` inline).
 */
import type { ContentView } from "./types.ts";
import { decodeUtf8Backslash, isXml } from "./text.ts";

const TAG_RE = /[a-zA-Z0-9._:\-]+(?!=)/;
const VOID = new Set([
  "area",
  "base",
  "br",
  "col",
  "embed",
  "hr",
  "img",
  "input",
  "keygen",
  "link",
  "meta",
  "param",
  "source",
  "track",
  "wbr",
]);
const NO_INDENT = new Set(["xml", "doctype", "html"]);
const INDENT = 2;

interface Token {
  kind: "text" | "tag";
  data: string;
}

function tagName(t: Token): string {
  return TAG_RE.exec(t.data)?.[0].toLowerCase() ?? "<empty>";
}
const isComment = (t: Token) => t.data.startsWith("<!--");
const isCdata = (t: Token) => t.data.startsWith("<![CDATA[");
const isClosing = (t: Token) => t.data.startsWith("</");
const isSelfClosing = (t: Token) =>
  isComment(t) || isCdata(t) || t.data.endsWith("/>") || VOID.has(tagName(t));
const isOpening = (t: Token) => !isClosing(t) && !isSelfClosing(t);
function done(t: Token): boolean {
  if (isComment(t)) return t.data.endsWith("-->");
  if (isCdata(t)) return t.data.endsWith("]]>");
  return t.data.endsWith(">");
}

function* tokenize(data: string): Generator<Token> {
  let token: Token = { kind: "text", data: "" };
  let i = 0;
  const readUntil = (ch: string, start: number, include: number) => {
    let end = data.indexOf(ch, start);
    if (end === -1) end = data.length;
    const ret = data.slice(i, end + include);
    i = end + include;
    return ret;
  };
  while (i < data.length) {
    if (token.kind === "text") {
      token.data = readUntil("<", i, 0);
      if (token.data.trim()) yield token;
      token = { kind: "tag", data: "" };
    } else {
      token.data += readUntil(">", i, 1);
      if (done(token)) {
        yield token;
        token = { kind: "text", data: "" };
      }
    }
  }
  if (token.data.trim()) yield token;
}

/** Python's textwrap.dedent. */
function dedent(text: string): string {
  const lines = text.split("\n");
  let margin: string | null = null;
  for (const l of lines) {
    if (!l.trim()) continue;
    const ind = /^[ \t]*/.exec(l)![0];
    if (margin === null) margin = ind;
    else {
      let k = 0;
      while (k < margin.length && k < ind.length && margin[k] === ind[k]) k++;
      margin = margin.slice(0, k);
    }
  }
  return lines.map((l) => (!l.trim() ? "" : l.slice(margin?.length ?? 0))).join("\n");
}

function indentText(data: string, prefix: string): string {
  const dedented = dedent(" ".repeat(32) + data).trim();
  const p = prefix.slice(0, 32);
  return dedented.split("\n").map((l) => (l.trim() ? p + l : l)).join("\n");
}

type T = Token | undefined;

function isInlineText(a: T, b: T, c: T): boolean {
  return a?.kind === "tag" && b?.kind === "text" && c?.kind === "tag" && isOpening(a) &&
    !b.data.includes("\n") && isClosing(c) && tagName(a) === tagName(c);
}

function isInline(prev2: T, prev1: T, t: T, next1: T, next2: T): boolean {
  if (t?.kind === "text") return isInlineText(prev1, t, next1);
  if (t?.kind === "tag") {
    if (isInlineText(prev2, prev1, t) || isInlineText(t, next1, next2)) return true;
    if (next1?.kind === "tag" && isOpening(t) && isClosing(next1) && tagName(t) === tagName(next1)) {
      return true;
    }
    if (prev1?.kind === "tag" && isOpening(prev1) && isClosing(t) && tagName(prev1) === tagName(t)) {
      return true;
    }
  }
  return false;
}

/** Re-indent XML or HTML text. */
export function formatXml(text: string): string {
  const tokens = [...tokenize(text)];
  const open: string[] = [];
  let indent = "";
  let out = "";
  for (let k = 0; k < tokens.length; k++) {
    const [p2, p1, t, n1, n2] = [tokens[k - 2], tokens[k - 1], tokens[k], tokens[k + 1], tokens[k + 2]];
    const inline = isInline(p2, p1, t, n1, n2);
    if (t.kind === "tag") {
      if (isOpening(t)) {
        out += indentText(t.data, indent);
        if (!inline) out += "\n";
        const tag = tagName(t);
        if (open.length <= 16) {
          open.push(tag);
          if (!NO_INDENT.has(tag)) indent += " ".repeat(INDENT);
        }
      } else if (isClosing(t)) {
        const tag = tagName(t);
        if (open.includes(tag)) {
          let remove = 0;
          for (;;) {
            const o = open.pop()!;
            if (!NO_INDENT.has(o)) remove += INDENT;
            if (o === tag) break;
          }
          // mitmproxy slices `indent[:-remove]`, which is "" when nothing was removed: kept as is
          indent = remove ? indent.slice(0, indent.length - remove) : "";
        }
        out += inline ? t.data : indentText(t.data, indent);
        out += "\n";
      } else out += indentText(t.data, indent) + "\n";
    } else {
      out += inline ? t.data.trim() : indentText(t.data, indent) + "\n";
    }
  }
  return out;
}

/** Indented XML and HTML (text decoded with the message's charset when known). */
export const xmlHtml: ContentView = {
  name: "XML/HTML",
  syntaxHighlight: "xml",
  prettify(data, m) {
    let text: string;
    try {
      text = m.charset && !/^utf-?8$/.test(m.charset)
        ? new TextDecoder(m.charset).decode(data)
        : decodeUtf8Backslash(data);
    } catch {
      text = decodeUtf8Backslash(data);
    }
    return formatXml(text);
  },
  renderPriority(data, m) {
    if (!data.length) return 0;
    if (m.contentType === "text/xml" || m.contentType === "text/html") return 1;
    return isXml(data) ? 0.4 : 0;
  },
};
