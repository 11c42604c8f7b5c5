/**
 * Syntax highlighting for the views' output: split text into tagged chunks ("name", "string", "number",
 * "boolean", "comment", "error", or "" for plain text), the tags mitmproxy_rs's highlighter gives. Joining the
 * chunks' texts gives the input back. A small regex tokenizer per syntax, made for display, not parsing.
 */
import type { Chunk, SyntaxHighlight } from "./types.ts";

type Rule = [tag: string, re: RegExp];

function scan(text: string, rules: Rule[]): Chunk[] {
  const src = rules.map(([, re]) => `(${re.source})`).join("|");
  const re = new RegExp(src, "gm");
  const out: Chunk[] = [];
  let last = 0;
  const push = (tag: string, s: string) => {
    if (!s) return;
    const prev = out[out.length - 1];
    if (prev && prev[0] === tag) prev[1] += s;
    else out.push([tag, s]);
  };
  for (const m of text.matchAll(re)) {
    if (m[0] === "") {
      re.lastIndex++;
      continue;
    }
    push("", text.slice(last, m.index));
    const k = m.slice(1).findIndex((g) => g !== undefined);
    push(rules[k][0], m[0]);
    last = m.index! + m[0].length;
  }
  push("", text.slice(last));
  return out;
}

const STRING_DQ = /"(?:[^"\\\n]|\\.)*"/;
const STRING_SQ = /'(?:[^'\\\n]|\\.)*'/;
const NUMBER = /(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])/;

const RULES: Record<string, Rule[]> = {
  yaml: [
    ["comment", /(?<=^|\s)#.*$/],
    ["name", /(?<=^[ \t]*(?:- )*)(?:"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s:#'"\-][^:#\n]*?)(?=:(?:\s|$))/],
    ["string", STRING_DQ],
    ["string", STRING_SQ],
    ["number", NUMBER],
    ["boolean", /(?<![\w-])(?:true|false|null|~)(?![\w-])/],
  ],
  xml: [
    ["comment", /<!--[\s\S]*?-->/],
    ["string", /(?<==\s*)(?:"[^"]*"|'[^']*')/],
    ["name", /(?<=<\/?)[\w:.\-!?]+/],
    ["name", /(?<=\s)[\w:.\-]+(?==)/],
  ],
  css: [
    ["comment", /\/\*[\s\S]*?\*\//],
    ["string", STRING_DQ],
    ["string", STRING_SQ],
    ["name", /(?<=^[ \t]*)[\w-]+(?=\s*:)/],
    ["number", /(?<![\w-])-?\d*\.?\d+(?:px|em|rem|%|s|ms|vh|vw|pt)?(?![\w-])/],
    ["name", /^[^{}\n;]+(?=\s*\{)/],
  ],
  javascript: [
    ["comment", /\/\*[\s\S]*?\*\/|\/\/.*$/],
    ["string", STRING_DQ],
    ["string", STRING_SQ],
    ["string", /`(?:[^`\\]|\\[\s\S])*`/],
    ["number", NUMBER],
    ["boolean", /\b(?:true|false|null|undefined)\b/],
    ["name", /\b(?:function|return|var|let|const|if|else|for|while|new|this|class|typeof|async|await)\b/],
  ],
};

/** Tagged chunks of `text` for `syntax`; "none" gives one plain chunk, "error" one "error" chunk. */
export function highlight(text: string, syntax: SyntaxHighlight): Chunk[] {
  if (!text) return [];
  if (syntax === "error") return [["error", text]];
  const rules = RULES[syntax];
  return rules ? scan(text, rules) : [["", text]];
}
