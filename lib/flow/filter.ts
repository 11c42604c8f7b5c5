/**
 * mitmproxy's filter expression language (`flowfilter.py`), e.g. `~d example.com & !~s`, `~q | ~s ~b x`.
 *
 * Parsing follows mitmproxy's pyparsing grammar exactly, quirks included:
 * - precedence `!` > `&` > `|`, and juxtaposition (implicit AND) binds loosest: `~q | ~s ~b x` is
 *   `(~q | ~s) & ~b x`. Juxtaposition is only allowed at the top level, not inside parentheses.
 * - an operator token (`~h`) must be followed by whitespace or the end (`~q)` and `~q&~s` are errors).
 * - a regex is an unquoted run of characters other than `( ) ~ ' "` and whitespace, or a `"..."` / `'...'`
 *   string where `\t \n \r \f` become whitespace and `\X` becomes `X` (so `"a\.b"` is the regex `a.b`;
 *   write `"a\\.b"` for a literal dot).
 * - a dangling operator character becomes a bare (URL) regex, as in mitmproxy: `x & ` is `x` AND `~u &`.
 *
 * Regexes are Python-flavoured; common differences are translated to JS (`(?P<n>`, `(?P=n)`, `\A`, `\Z`,
 * leading inline flags such as `(?i)`, `$` before a final newline, bytes-mode `\s`). Every regex operator is
 * case-insensitive unless the environment variable `MITMPROXY_CASE_SENSITIVE_FILTERS` is exactly `1` (read
 * at parse time when env permission is granted), `~d` and `~m` included, as in mitmproxy since 11.1; `~a`
 * matches its asset types case-sensitively, always. Byte-oriented operators (`~b ~h ~t ~m ~a`) match against
 * latin1 text (one char per byte) with the pattern UTF-8 encoded, like Python's bytes regexes.
 *
 * @example
 * ```ts
 * import { matchFilter, parseFilter } from "./filter.ts";
 * import { tflow } from "../../testing.ts";
 * const flow = tflow({ resp: true });
 * const f = parseFilter('~d example\\.com & ~h "content-type: text/html"');
 * f(flow); // boolean
 * matchFilter("~s", flow);
 * ```
 * @module
 */
import type { Flow } from "./flow.ts";

/** A compiled filter: call it with a flow. `expr` is the source expression. */
export type Filter = ((flow: Flow) => boolean) & {
  /** The expression this filter was parsed from. */
  expr: string;
  /** The parsed tree, mostly for debugging and tests. */
  ast: FilterNode;
};

/** A node of a parsed filter expression. */
export type FilterNode =
  | { kind: "and"; items: FilterNode[] }
  | { kind: "or"; items: FilterNode[] }
  | { kind: "not"; item: FilterNode }
  | { kind: "op"; op: string; arg?: string | number; pos: number };

/** A syntax error (or uncompilable regex) in a filter expression. */
export class FilterError extends Error {
  /** 0-based character position of the problem, or -1 for an empty expression. */
  position: number;
  /** `message` with the character `position` in the expression where parsing failed. */
  constructor(message: string, position: number) {
    super(message);
    this.name = "FilterError";
    this.position = position;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Operators

const UNARY = new Set([
  "a",
  "e",
  "http",
  "marked",
  "replay",
  "replayq",
  "replays",
  "q",
  "s",
  "tcp",
  "udp",
  "dns",
  "websocket",
  "all",
]);
const REX = new Set([
  "b",
  "bq",
  "bs",
  "t",
  "tq",
  "ts",
  "d",
  "dst",
  "h",
  "hq",
  "hs",
  "m",
  "src",
  "u",
  "meta",
  "marker",
  "comment",
]);
const INT = new Set(["c"]);

/** Operators matched against bytes (Python compiles their regex as bytes). */
const BINARY = new Set(["b", "bq", "bs", "t", "tq", "ts", "h", "hq", "hs", "m"]);

/** Help text for every operator, as shown by mitmproxy's `filter_help`. */
export const FILTER_HELP: [string, string][] = [
  ["!", "unary not"],
  ["&", "and"],
  ["|", "or"],
  ["(...)", "grouping"],
  ["~a", "Match asset in response: CSS, JavaScript, images, fonts."],
  ["~all", "Match all flows"],
  ["~b regex", "Body"],
  ["~bq regex", "Request body"],
  ["~bs regex", "Response body"],
  ["~c int", "HTTP response code"],
  ["~comment regex", "Flow comment"],
  ["~d regex", "Domain"],
  ["~dns", "Match DNS flows"],
  ["~dst regex", "Match destination address"],
  ["~e", "Match error"],
  ["~h regex", "Header"],
  ["~hq regex", "Request header"],
  ["~hs regex", "Response header"],
  ["~http", "Match HTTP flows"],
  ["~m regex", "Method"],
  ["~marked", "Match marked flows"],
  ["~marker regex", "Match marked flows with specified marker"],
  ["~meta regex", "Flow metadata"],
  ["~q", "Match request with no response"],
  ["~replay", "Match replayed flows"],
  ["~replayq", "Match replayed client request"],
  ["~replays", "Match replayed server response"],
  ["~s", "Match response"],
  ["~src regex", "Match source address"],
  ["~t regex", "Content-type header"],
  ["~tcp", "Match TCP flows"],
  ["~tq regex", "Request Content-Type header"],
  ["~ts regex", "Response Content-Type header"],
  ["~u regex", "URL"],
  ["~udp", "Match UDP flows"],
  ["~websocket", "Match WebSocket flows"],
];

// ---------------------------------------------------------------------------------------------------------
// Parser: a backtracking recursive descent equivalent to mitmproxy's
//   OneOrMore(infixNotation(atom, [("!", 1, RIGHT), ("&", 2, LEFT), ("|", 2, LEFT)]))

const WS = " \n\t\r";
const NOT_WORD = "()~'\"" + WS;

function isPrintable(c: string): boolean {
  const code = c.charCodeAt(0);
  return code > 0x20 && code < 0x7f;
}

class Fail {
  constructor(readonly pos: number) {}
}

class Parser {
  pos = 0;
  furthest = -1;
  expected = new Set<string>();

  constructor(readonly s: string, readonly caseSensitive: boolean) {}

  fail(pos: number, what: string): never {
    if (pos > this.furthest) {
      this.furthest = pos;
      this.expected = new Set([what]);
    } else if (pos === this.furthest) {
      this.expected.add(what);
    }
    throw new Fail(pos);
  }

  skipWs(): void {
    while (this.pos < this.s.length && WS.includes(this.s[this.pos])) this.pos++;
  }

  /** Try `fn`; on a parse failure restore the position and return undefined. */
  attempt<T>(fn: () => T): T | undefined {
    const save = this.pos;
    try {
      return fn();
    } catch (e) {
      if (e instanceof Fail) {
        this.pos = save;
        return undefined;
      }
      throw e;
    }
  }

  literal(ch: string): void {
    this.skipWs();
    if (this.s[this.pos] !== ch) this.fail(this.pos, JSON.stringify(ch));
    this.pos++;
  }

  parseTop(): FilterNode {
    const items: FilterNode[] = [this.parseOr()];
    for (;;) {
      const n = this.attempt(() => this.parseOr());
      if (!n) break;
      items.push(n);
    }
    this.skipWs();
    if (this.pos < this.s.length) this.fail(this.pos, "end of input");
    return items.length === 1 ? items[0] : { kind: "and", items };
  }

  parseOr(): FilterNode {
    const first = this.parseAnd();
    const items = [first];
    for (;;) {
      const n = this.attempt(() => {
        this.literal("|");
        return this.parseAnd();
      });
      if (!n) break;
      items.push(n);
    }
    return items.length === 1 ? first : { kind: "or", items };
  }

  parseAnd(): FilterNode {
    const first = this.parseNot();
    const items = [first];
    for (;;) {
      const n = this.attempt(() => {
        this.literal("&");
        return this.parseNot();
      });
      if (!n) break;
      items.push(n);
    }
    return items.length === 1 ? first : { kind: "and", items };
  }

  parseNot(): FilterNode {
    const n = this.attempt(() => {
      this.literal("!");
      return this.parseNot();
    });
    if (n) return { kind: "not", item: n };
    return this.parsePrimary();
  }

  parsePrimary(): FilterNode {
    const atom = this.attempt(() => this.parseAtom());
    if (atom) return atom;
    this.literal("(");
    const inner = this.parseOr();
    this.literal(")");
    return inner;
  }

  parseAtom(): FilterNode {
    this.skipWs();
    const start = this.pos;
    const s = this.s;
    if (start >= s.length) this.fail(start, "a filter expression");
    if (s[start] === "~") {
      let end = start + 1;
      while (end < s.length && isPrintable(s[end])) end++;
      const name = s.slice(start + 1, end);
      if (UNARY.has(name)) {
        this.pos = end;
        return { kind: "op", op: name, pos: start };
      }
      if (REX.has(name)) {
        this.pos = end;
        const arg = this.regexToken(`a regex after ~${name}`);
        return { kind: "op", op: name, arg, pos: start };
      }
      if (INT.has(name)) {
        this.pos = end;
        this.skipWs();
        const m = /^[0-9]+/.exec(s.slice(this.pos));
        if (!m) this.fail(this.pos, `a number after ~${name}`);
        this.pos += m[0].length;
        return { kind: "op", op: name, arg: parseInt(m[0], 10), pos: start };
      }
      // say what went wrong with the operator token
      const known = [...UNARY, ...REX, ...INT].filter((op) =>
        name.startsWith(op)
      ).sort((a, b) => b.length - a.length)[0];
      if (known !== undefined && (name === known || !/^[a-z]/i.test(name.slice(known.length)))) {
        this.fail(start + 1 + known.length, `whitespace or end of input after ~${known}`);
      }
      this.fail(start, `a known operator (got "~${name.replace(/[^a-z].*$/i, "")}")`);
    }
    // a bare regex means ~u
    const arg = this.regexToken("a filter expression");
    return { kind: "op", op: "u", arg, pos: start };
  }

  /** An unquoted word or a quoted string (after skipping whitespace). */
  regexToken(what: string): string {
    this.skipWs();
    const s = this.s;
    const start = this.pos;
    const c = s[start];
    if (c === '"' || c === "'") {
      let i = start + 1;
      while (i < s.length) {
        const ch = s[i];
        if (ch === c) break;
        if (ch === "\n" || ch === "\r") break;
        if (ch === "\\") {
          if (i + 1 >= s.length || s[i + 1] === "\n") break;
          i += 2;
          continue;
        }
        i++;
      }
      if (i >= s.length || s[i] !== c) this.fail(start, `${what} (unterminated ${c}-quoted string)`);
      this.pos = i + 1;
      let body = s.slice(start + 1, i);
      if (body.includes("\\")) {
        body = body.replaceAll("\\t", "\t").replaceAll("\\n", "\n").replaceAll("\\f", "\f").replaceAll(
          "\\r",
          "\r",
        );
        body = body.replace(/\\(.)/g, "$1");
      }
      return body;
    }
    let i = start;
    while (i < s.length && !NOT_WORD.includes(s[i])) i++;
    if (i === start) this.fail(start, what);
    this.pos = i;
    return s.slice(start, i);
  }
}

function describeExpected(p: Parser): string {
  // "!" and "(" are always possible where an expression may start; mention them only if nothing else fits
  const list = [...p.expected].filter((x) => x !== '"!"' && x !== '"("');
  if (list.length === 0) return "a filter expression";
  const specific = list.length > 1 ? list.filter((x) => x !== "a filter expression") : list;
  return specific.length === 1
    ? specific[0]
    : specific.slice(0, -1).join(", ") + " or " + specific[specific.length - 1];
}

function found(s: string, pos: number): string {
  if (pos >= s.length) return "end of input";
  return JSON.stringify(s.slice(pos, pos + 12));
}

// ---------------------------------------------------------------------------------------------------------
// Regex translation (Python re -> JS RegExp)

const BYTES_WS_CLASS = "\\t\\n\\v\\f\\r ";

/** Translate common Python `re` syntax to JS. Returns the source and extra flags found inline. */
export function translatePythonRegex(src: string, binary = false): { source: string; flags: string } {
  let flags = "";
  let i = 0;
  // leading global inline flags, e.g. (?i) or (?ims)
  for (;;) {
    const m = /^\(\?([aiLmsux]+)\)/.exec(src.slice(i));
    if (!m) break;
    for (const f of m[1]) if ("ims".includes(f) && !flags.includes(f)) flags += f;
    i += m[0].length;
  }
  const multiline = flags.includes("m");
  let out = "";
  let inClass = false;
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === "\\") {
      const n = src[i + 1];
      if (n === undefined) {
        out += "\\\\";
        break;
      }
      i++;
      if (n === "A" && !inClass) out += "(?<![\\s\\S])";
      else if (n === "Z" && !inClass) out += "(?![\\s\\S])";
      else if (binary && n === "s") out += inClass ? BYTES_WS_CLASS : `[${BYTES_WS_CLASS}]`;
      else if (binary && n === "S" && !inClass) out += `[^${BYTES_WS_CLASS}]`;
      else out += "\\" + n;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      // a leading ] (or ^]) is literal in Python
      if (src[i + 1] === "^") out += src[++i];
      if (src[i + 1] === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    if (c === "(" && src.startsWith("(?P<", i)) {
      out += "(?<";
      i += 3;
      continue;
    }
    if (c === "(" && src.startsWith("(?P=", i)) {
      const end = src.indexOf(")", i);
      if (end !== -1) {
        out += `\\k<${src.slice(i + 4, end)}>`;
        i = end;
        continue;
      }
    }
    if (c === "$" && !multiline) {
      // Python's $ also matches before a newline at the very end
      out += "(?=\\n?(?![\\s\\S]))";
      continue;
    }
    out += c;
  }
  return { source: out, flags };
}

const utf8 = new TextEncoder();

function toLatin1Pattern(s: string): string {
  // Python compiles `expr.encode()` for bytes operators: match the UTF-8 bytes of the pattern
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  let out = "";
  for (const b of utf8.encode(s)) out += String.fromCharCode(b);
  return out;
}

function compileRegex(
  pattern: string,
  op: string,
  extraFlags: string,
  caseSensitive: boolean,
  position: number,
): RegExp {
  const binary = BINARY.has(op);
  const { source, flags } = translatePythonRegex(binary ? toLatin1Pattern(pattern) : pattern, binary);
  let f = extraFlags;
  if (!caseSensitive) f += "i";
  for (const x of flags) if (!f.includes(x)) f += x;
  try {
    return new RegExp(source, [...new Set(f)].join(""));
  } catch (e) {
    throw new FilterError(
      `Invalid filter expression at position ${position}: cannot compile regex ${JSON.stringify(pattern)} ` +
        `for ~${op}: ${(e as Error).message}`,
      position,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Matching helpers (duck-typed so TCP/UDP/DNS/WebSocket flows work once they exist)

type AnyFlow = Flow & Record<string, any>;

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, Math.min(bytes.length, i + 8192)) as unknown as number[],
    );
  }
  return s;
}

function asText(x: unknown): string {
  if (x == null) return "";
  if (x instanceof Uint8Array) return latin1(x);
  if (typeof x === "string") return x;
  return String(x);
}

const ASSET_TYPES = [
  /text\/javascript/,
  /application\/x-javascript/,
  /application\/javascript/,
  /text\/css/,
  /image\/.*/,
  /font\/.*/,
  /application\/font.*/,
];

function headerFields(msg: any): [string, string][] {
  return msg?.headers?.fields ?? [];
}

function checkContentType(re: RegExp, msg: any): boolean {
  for (const [k, v] of headerFields(msg)) if (k.toLowerCase() === "content-type" && re.test(v)) return true;
  return false;
}

function headerBlock(msg: any): string {
  const h = msg?.headers;
  if (!h) return "";
  return typeof h.toString === "function" ? String(h.toString()) : "";
}

function bodyText(msg: any): string | null {
  if (!msg) return null;
  const raw = msg.rawContent;
  // mitmproxy searches any body that is not missing, the empty one too (`~b "^$"` matches it)
  if (raw == null) return null;
  const c = typeof msg.getContent === "function" ? msg.getContent(false) : raw;
  return c == null ? null : asText(c);
}

function messagesOf(f: AnyFlow): { fromClient?: boolean; from_client?: boolean; content: unknown }[] {
  if (f.type === "http") return Array.isArray(f.websocket?.messages) ? f.websocket.messages : [];
  return Array.isArray(f.messages) ? f.messages : [];
}

function fromClient(m: { fromClient?: boolean; from_client?: boolean }): boolean {
  return Boolean(m.fromClient ?? m.from_client);
}

function dnsText(msg: any): string | null {
  if (!msg) return null;
  if (msg.content instanceof Uint8Array) return latin1(msg.content);
  return String(msg);
}

function bodyMatch(re: RegExp, f: AnyFlow, side: "both" | "request" | "response"): boolean {
  const t = f.type;
  if (t === "http") {
    if (side !== "response") {
      const b = bodyText(f.request);
      if (b !== null && re.test(b)) return true;
    }
    if (side !== "request") {
      const b = bodyText(f.response);
      if (b !== null && re.test(b)) return true;
    }
  } else if (t === "dns") {
    if (side !== "response" && f.request && re.test(dnsText(f.request) ?? "")) return true;
    if (side !== "request" && f.response && re.test(dnsText(f.response) ?? "")) return true;
    return false;
  } else if (t !== "tcp" && t !== "udp") {
    return false;
  }
  for (const m of messagesOf(f)) {
    if (side === "request" && !fromClient(m)) continue;
    if (side === "response" && fromClient(m)) continue;
    if (re.test(asText(m.content))) return true;
  }
  return false;
}

/** Python's `str(v)` for a metadata value (strings bare; containers with `repr` of their items). */
function pyStr(v: unknown): string {
  return typeof v === "string" ? v : pyRepr(v);
}

const BYTE_ESCAPES: Record<number, string> = { 9: "\\t", 10: "\\n", 13: "\\r", 0x5c: "\\\\" };

function pyByte(b: number): string {
  return b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
}

/** Python's `repr(v)` for the JSON-like values metadata holds. */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "string") {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    return q + v.replaceAll("\\", "\\\\").replaceAll(q, `\\${q}`).replaceAll("\n", "\\n") + q;
  }
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (v instanceof Uint8Array) {
    const q = v.includes(0x27) && !v.includes(0x22) ? '"' : "'";
    let s = "";
    for (const b of v) s += BYTE_ESCAPES[b] ?? (b === q.charCodeAt(0) ? `\\${q}` : pyByte(b));
    return `b${q}${s}${q}`;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
  if (typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
  }
  return String(v);
}

function compileNode(node: FilterNode, caseSensitive: boolean) {
  return build(node);

  function build(n: FilterNode): (f: AnyFlow) => boolean {
    switch (n.kind) {
      case "and": {
        const fns = n.items.map(build);
        return (f) => fns.every((fn) => fn(f));
      }
      case "or": {
        const fns = n.items.map(build);
        return (f) => fns.some((fn) => fn(f));
      }
      case "not": {
        const fn = build(n.item);
        return (f) => !fn(f);
      }
      case "op":
        return buildOp(n.op, n.arg, n.pos);
    }
  }

  function buildOp(op: string, arg: string | number | undefined, pos: number): (f: AnyFlow) => boolean {
    const rex = (flags = "") => compileRegex(String(arg), op, flags, caseSensitive, pos);
    switch (op) {
      case "all":
        return () => true;
      case "e":
        return (f) => Boolean(f.error);
      case "http":
        return (f) => f.type === "http";
      case "tcp":
        return (f) => f.type === "tcp";
      case "udp":
        return (f) => f.type === "udp";
      case "dns":
        return (f) => f.type === "dns";
      case "websocket":
        return (f) => f.type === "http" && f.websocket != null;
      case "q":
        return (f) => (f.type === "http" || f.type === "dns") && !f.response;
      case "s":
        return (f) => (f.type === "http" || f.type === "dns") && Boolean(f.response);
      case "marked":
        return (f) => Boolean(f.marked);
      case "replay":
        return (f) => f.isReplay != null;
      case "replayq":
        return (f) => f.isReplay === "request";
      case "replays":
        return (f) => f.isReplay === "response";
      case "a":
        return (f) =>
          f.type === "http" && Boolean(f.response) &&
          ASSET_TYPES.some((re) => checkContentType(re, f.response));
      case "c": {
        const code = Number(arg);
        return (f) => f.type === "http" && Boolean(f.response) && f.response.statusCode === code;
      }
      case "t": {
        const re = rex();
        return (f) =>
          f.type === "http" &&
          (checkContentType(re, f.request) || (Boolean(f.response) && checkContentType(re, f.response)));
      }
      case "tq": {
        const re = rex();
        return (f) => f.type === "http" && checkContentType(re, f.request);
      }
      case "ts": {
        const re = rex();
        return (f) => f.type === "http" && Boolean(f.response) && checkContentType(re, f.response);
      }
      case "h": {
        const re = rex("m");
        return (f) =>
          f.type === "http" &&
          ((Boolean(f.request) && re.test(headerBlock(f.request))) ||
            (Boolean(f.response) && re.test(headerBlock(f.response))));
      }
      case "hq": {
        const re = rex("m");
        return (f) => f.type === "http" && Boolean(f.request) && re.test(headerBlock(f.request));
      }
      case "hs": {
        const re = rex("m");
        return (f) => f.type === "http" && Boolean(f.response) && re.test(headerBlock(f.response));
      }
      case "b": {
        const re = rex("s");
        return (f) => bodyMatch(re, f, "both");
      }
      case "bq": {
        const re = rex("s");
        return (f) => bodyMatch(re, f, "request");
      }
      case "bs": {
        const re = rex("s");
        return (f) => bodyMatch(re, f, "response");
      }
      case "m": {
        const re = rex();
        return (f) => f.type === "http" && re.test(asText(f.request?.method));
      }
      case "d": {
        const re = rex();
        return (f) => f.type === "http" && (re.test(f.request.host) || re.test(f.request.prettyHost));
      }
      case "u": {
        const re = rex();
        return (f) => {
          if (!f.request) return false;
          if (f.type === "http") return re.test(f.request.prettyUrl);
          if (f.type === "dns") {
            const q = f.request.questions;
            return Array.isArray(q) && q.length > 0 && re.test(String(q[0].name));
          }
          return false;
        };
      }
      case "src": {
        const re = rex();
        return (f) => {
          const p = f.clientConn?.peername;
          return p != null && re.test(`${p[0]}:${p[1]}`);
        };
      }
      case "dst": {
        const re = rex();
        return (f) => {
          const a = f.serverConn?.address;
          return a != null && re.test(`${a[0]}:${a[1]}`);
        };
      }
      case "meta": {
        const re = rex("m");
        return (f) =>
          re.test(Object.entries(f.metadata ?? {}).map(([k, v]) => `${k}: ${pyStr(v)}`).join("\n"));
      }
      case "marker": {
        const re = rex();
        return (f) => re.test(f.marked ?? "");
      }
      case "comment": {
        const re = rex("m");
        return (f) => re.test(f.comment ?? "");
      }
    }
    throw new Error(`unknown filter operator ~${op}`);
  }
}

/** mitmproxy's switch: filters are case-sensitive only when `MITMPROXY_CASE_SENSITIVE_FILTERS` is exactly "1". */
function caseSensitiveFromEnv(): boolean {
  try {
    const name = "MITMPROXY_CASE_SENSITIVE_FILTERS";
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return false;
    return Deno.env.get(name) === "1";
  } catch {
    return false;
  }
}

/** Options for {@link parseFilter}. */
export interface ParseFilterOptions {
  /** Case-sensitive regexes (default: from `MITMPROXY_CASE_SENSITIVE_FILTERS`). */
  caseSensitive?: boolean;
}

/**
 * Compile a filter expression. Throws {@link FilterError} with the position and what was expected,
 * e.g. `Invalid filter expression at position 2: expected a regex after ~h`.
 */
export function parseFilter(expr: string, options: ParseFilterOptions = {}): Filter {
  if (!expr) throw new FilterError("Empty filter expression", -1);
  const caseSensitive = options.caseSensitive ?? caseSensitiveFromEnv();
  const p = new Parser(expr, caseSensitive);
  let ast: FilterNode;
  try {
    ast = p.parseTop();
  } catch (e) {
    if (!(e instanceof Fail)) throw e;
    const pos = p.furthest;
    throw new FilterError(
      `Invalid filter expression at position ${pos}: expected ${describeExpected(p)}, found ${
        found(expr, pos)
      }`,
      pos,
    );
  }
  const fn = compileNode(ast, caseSensitive);
  const filter = ((flow: Flow) => fn(flow as AnyFlow)) as Filter;
  filter.expr = expr;
  filter.ast = ast;
  return filter;
}

/** A readable rendering of a parsed filter, e.g. `and(or(~q, ~s), ~b "x")`. */
export function describeFilter(node: FilterNode): string {
  switch (node.kind) {
    case "and":
    case "or":
      return `${node.kind}(${node.items.map(describeFilter).join(", ")})`;
    case "not":
      return `not(${describeFilter(node.item)})`;
    case "op":
      return node.arg === undefined ? `~${node.op}` : `~${node.op} ${JSON.stringify(node.arg)}`;
  }
}

/** Check a filter expression without compiling twice; returns the error message or null. */
export function validateFilter(expr: string): string | null {
  try {
    parseFilter(expr);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const CACHE_MAX = 256;
const cache = new Map<string, Filter>();

/**
 * Match `flow` against a filter: an expression (compiled once and cached), a compiled {@link Filter},
 * or null/undefined (matches everything). Invalid expressions throw {@link FilterError}.
 */
export function matchFilter(expr: string | Filter | null | undefined, flow: Flow): boolean {
  if (expr == null) return true;
  if (typeof expr === "function") return expr(flow);
  const key = (caseSensitiveFromEnv() ? "1" : "0") + expr;
  let f = cache.get(key);
  if (!f) {
    f = parseFilter(expr);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(key, f);
  }
  return f(flow);
}

/** A filter that matches every flow (`~all`). */
export const matchAll: Filter = parseFilter("~all", { caseSensitive: false });
