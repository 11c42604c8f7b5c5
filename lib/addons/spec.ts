/**
 * The spec-string syntax shared by map_remote, map_local, modify_body and modify_headers
 * (mitmproxy's `utils/spec.py`), plus the Python-compatible pieces those addons need: escaped strings,
 * `re` patterns and `re.sub` replacement templates.
 *
 * A spec is `SEP subject SEP replacement` or `SEP filter SEP subject SEP replacement`; the first character
 * is the separator and the rest is split at most 2 times, so the replacement may contain the separator.
 *
 * @example
 * ```ts
 * import { parseSpec } from "./spec.ts";
 * const s = parseSpec("|~d example.com|/old|/new"); // filter, "/old", "/new"
 * ```
 * @module
 */
import { expandHome } from "../paths.ts";
import { type Filter, matchAll, parseFilter, translatePythonRegex } from "../flow/filter.ts";
import { OptionsError } from "./options.ts";
import { fromLatin1, latin1, utf8 } from "../http/bytes.ts";

/** A parsed `[SEP filter]SEP subject SEP replacement` spec. */
export interface Spec {
  /** The flow filter (`~all` when the spec has none). */
  filter: Filter;
  /** The regular expression (or header name) to look for. */
  subject: string;
  /** What replaces it (`@path` reads a file). */
  replacement: string;
}

/** Split a spec. Throws Error with a user-readable reason. */
export function parseSpec(option: string): Spec {
  if (!option) throw new Error("empty specification");
  const sep = option[0];
  const parts = splitMax(option.slice(1), sep, 2);
  if (parts.length === 2) return { filter: matchAll, subject: parts[0], replacement: parts[1] };
  if (parts.length === 3) {
    let filter: Filter;
    try {
      filter = parseFilter(parts[0]);
    } catch (e) {
      throw new Error(`invalid filter expression ${JSON.stringify(parts[0])}: ${(e as Error).message}`);
    }
    return { filter, subject: parts[1], replacement: parts[2] };
  }
  throw new Error(
    `invalid number of parameters (2 or 3 are expected, separated by the first character ${
      JSON.stringify(sep)
    })`,
  );
}

/** Python's `str.split(sep, max)`. */
export function splitMax(s: string, sep: string, max: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < max) {
    const i = rest.indexOf(sep);
    if (i === -1) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

/**
 * The OptionsError for a bad spec: names the option, the value and what is wrong,
 * e.g. `Option "map_remote": cannot parse "|x": invalid number of parameters ...`.
 */
export function specError(option: string, value: string, e: unknown): OptionsError {
  return new OptionsError(
    `Option "${option}": cannot parse ${JSON.stringify(value)}: ${(e as Error)?.message ?? e}`,
  );
}

/**
 * Parse every spec string of a list option with `parse`; the first bad one throws {@link specError}
 * naming the option, so the CLI refuses it at start-up.
 * @example this.items = parseSpecList("map_remote", ctx.options.map_remote, parseMapRemoteSpec);
 */
export function parseSpecList<T>(
  option: string,
  values: readonly string[],
  parse: (value: string) => T,
): T[] {
  return values.map((value) => {
    try {
      return parse(value);
    } catch (e) {
      throw specError(option, value, e);
    }
  });
}

/**
 * Python's `codecs.escape_decode`: `\n \t \r \\ \xhh \ooo \' \"` become bytes; unknown escapes stay as
 * they are (so regexes like `\d` survive). The input is UTF-8 encoded first.
 */
export function escapedStrToBytes(s: string): Uint8Array {
  const src = latin1(utf8(s));
  let out = "";
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c !== "\\" || i + 1 >= src.length) {
      out += c;
      continue;
    }
    const n = src[++i];
    const simple: Record<string, string> = {
      n: "\n",
      t: "\t",
      r: "\r",
      "\\": "\\",
      "'": "'",
      '"': '"',
      a: "\x07",
      b: "\b",
      f: "\f",
      v: "\v",
      "\n": "",
    };
    if (n in simple) out += simple[n];
    else if (n === "x" && /^[0-9a-fA-F]{2}$/.test(src.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(n)) {
      let oct = n;
      while (oct.length < 3 && /[0-7]/.test(src[i + 1] ?? "")) oct += src[++i];
      out += String.fromCharCode(parseInt(oct, 8) & 0xff);
    } else out += "\\" + n;
  }
  return fromLatin1(out);
}

/**
 * Compile a Python `re` pattern. With `binary`, it matches latin1 strings (one char per byte) such as
 * {@link latin1} of a body, and non-ASCII pattern characters are matched as their UTF-8 bytes.
 * With `latin1`, the pattern is already bytes as a latin1 string (e.g. from {@link escapedStrToBytes}).
 * Throws Error("invalid regular expression ...").
 */
export function compilePyRegex(
  pattern: string,
  opts: { binary?: boolean; dotAll?: boolean; global?: boolean; latin1?: boolean } = {},
): RegExp {
  const src = opts.binary && !opts.latin1 ? latin1(utf8(pattern)) : pattern;
  const t = translatePythonRegex(src, opts.binary);
  let flags = t.flags;
  if (opts.dotAll && !flags.includes("s")) flags += "s";
  if (opts.global) flags += "g";
  if (!opts.binary) flags += "u";
  try {
    return new RegExp(t.source, flags);
  } catch (e) {
    if (!opts.binary) {
      // some Python patterns are valid without the strict unicode mode
      try {
        return new RegExp(t.source, flags.replace("u", ""));
      } catch { /* report the first error */ }
    }
    throw new Error(`invalid regular expression ${JSON.stringify(pattern)} (${(e as Error).message})`);
  }
}

/**
 * A replacer function for `String.prototype.replace` that expands a Python `re.sub` template:
 * `\1`..`\99`, `\g<1>`, `\g<name>`, and the escapes `\n \t \r \\`. Everything else is literal
 * (in particular `$`, which JS would otherwise expand).
 */
export function pyTemplate(template: string): (...args: any[]) => string {
  type Part = string | number | { name: string };
  const parts: Part[] = [];
  let lit = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== "\\" || i + 1 >= template.length) {
      lit += c;
      continue;
    }
    const n = template[i + 1];
    let m: RegExpExecArray | null;
    if ((m = /^\d{1,2}/.exec(template.slice(i + 1)))) {
      if (lit) parts.push(lit), lit = "";
      parts.push(Number(m[0]));
      i += m[0].length;
    } else if (n === "g" && (m = /^g<([^>]+)>/.exec(template.slice(i + 1)))) {
      if (lit) parts.push(lit), lit = "";
      parts.push(/^\d+$/.test(m[1]) ? Number(m[1]) : { name: m[1] });
      i += m[0].length;
    } else {
      const esc: Record<string, string> = {
        n: "\n",
        t: "\t",
        r: "\r",
        "\\": "\\",
        f: "\f",
        v: "\v",
        a: "\x07",
      };
      lit += n in esc ? esc[n] : "\\" + n;
      i++;
    }
  }
  if (lit) parts.push(lit);
  if (parts.every((p) => typeof p === "string")) {
    const s = (parts as string[]).join("");
    return () => s;
  }
  return (...args: any[]) => {
    const last = args[args.length - 1];
    const named = typeof last === "object" && last !== null ? last as Record<string, string> : undefined;
    const groupEnd = named ? args.length - 3 : args.length - 2;
    let out = "";
    for (const p of parts) {
      if (typeof p === "string") out += p;
      else if (typeof p === "number") {
        if (p === 0) out += args[0];
        else if (p < groupEnd) out += args[p] ?? "";
        else throw new Error(`invalid group reference ${p}`);
      } else {
        if (!named || !(p.name in named)) throw new Error(`unknown group name ${p.name}`);
        out += named[p.name] ?? "";
      }
    }
    return out;
  };
}

/** `re.sub(pattern, template, s)` for strings (all occurrences). */
export function pySub(re: RegExp, template: string, s: string): string {
  const g = re.global ? re : new RegExp(re.source, re.flags + "g");
  return s.replace(g, pyTemplate(template));
}

/**
 * The replacement of a modify_body/modify_headers spec as bytes: `@path` reads the file (`~` expanded),
 * anything else is {@link escapedStrToBytes}. Throws Error("invalid file path ...") when unreadable.
 */
export function readReplacement(replacement: string): Uint8Array {
  if (replacement.startsWith("@")) {
    const path = expandHome(replacement.slice(1));
    try {
      return Deno.readFileSync(path);
    } catch (e) {
      throw new Error(`invalid file path: ${replacement.slice(1)} (${(e as Error).message})`);
    }
  }
  return escapedStrToBytes(replacement);
}

export { expandHome };
