/** Text helpers the content views share (mitmproxy's `strutils` and `contentviews._utils`). */

/** Replace control characters (except tab, CR and LF when `keepSpacing`) with ".", as mitmproxy shows text. */
export function escapeControlCharacters(text: string, keepSpacing = true): string {
  // deno-lint-ignore no-control-regex
  return text.replace(keepSpacing ? /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g : /[\x00-\x1f\x7f]/g, ".");
}

/** Decode UTF-8 like Python's `decode("utf-8", "backslashreplace")`: invalid bytes become `\xNN`. */
export function decodeUtf8Backslash(b: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b);
  } catch { /* invalid somewhere: decode by hand */ }
  let out = "";
  let i = 0;
  const hex = (x: number) => `\\x${x.toString(16).padStart(2, "0")}`;
  while (i < b.length) {
    const c = b[i];
    let n = 0;
    let min = 0;
    if (c < 0x80) {
      out += String.fromCharCode(c);
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    let cp = n === 1 ? c & 0x1f : n === 2 ? c & 0x0f : c & 0x07;
    let ok = n > 0 && i + n < b.length + 1;
    for (let j = 1; ok && j <= n; j++) {
      const cc = b[i + j];
      if (cc === undefined || (cc & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (cc & 0x3f);
    }
    if (ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) {
      out += String.fromCodePoint(cp);
      i += n + 1;
    } else {
      out += hex(c);
      i++;
    }
  }
  return out;
}

/** mitmproxy_rs's `is_binary`: more than 30% of the first 100 bytes are control or non-ASCII bytes. */
export function isBinary(data: Uint8Array): boolean {
  if (!data.length) return false;
  const n = Math.min(100, data.length);
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const b = data[i];
    if (b < 9 || (b > 13 && b < 32) || b > 126) bad++;
  }
  return bad / n > 0.3;
}

/** Whether the first non-whitespace byte is "<" (mitmproxy's `is_xml`). */
export function isXml(data: Uint8Array): boolean {
  for (const c of data) {
    if (c === 9 || c === 10 || c === 13 || c === 32) continue;
    return c === 60;
  }
  return false;
}

/** Keep the first `n` lines of `text` (each with its line break), as mitmproxy's `cut_after_n_lines`. */
export function cutAfterNLines(text: string, n: number): string {
  let pos = text.indexOf("\n");
  while (pos >= 0 && n > 1) {
    pos = text.indexOf("\n", pos + 1);
    n--;
  }
  return pos >= 0 ? text.slice(0, pos + 1) : text;
}

/** Pairs to a mapping; a repeated key collects its values in a list (mitmproxy's `merge_repeated_keys`). */
export function mergeRepeatedKeys(items: Iterable<[string, string]>): Map<string, string | string[]> {
  const out = new Map<string, string | string[]>();
  for (const [k, v] of items) {
    const old = out.get(k);
    if (old === undefined || old === "") out.set(k, v);
    else if (Array.isArray(old)) old.push(v);
    else out.set(k, [old, v]);
  }
  return out;
}

/** Bytes as text for display: printable ASCII kept, other bytes as `\xNN` (mitmproxy's `bytes_to_escaped_str`). */
export function bytesToEscapedStr(b: Uint8Array, keepSpacing = false): string {
  let s = "";
  for (const c of b) {
    if (c === 0x5c) s += "\\\\";
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else if (c === 9) s += keepSpacing ? "\t" : "\\t";
    else if (c === 10) s += keepSpacing ? "\n" : "\\n";
    else if (c === 13) s += keepSpacing ? "\r" : "\\r";
    else s += `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return s;
}
