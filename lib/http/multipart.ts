/**
 * `multipart/form-data` bodies (RFC 7578): parse into parts and encode them back. Pure functions over bytes;
 * part bodies are kept byte-exact (unlike mitmproxy's `decode_multipart`, which drops line breaks inside
 * values), so a form that is parsed and encoded again without changes comes back identical.
 */
import { concat, latin1, utf8 } from "./bytes.ts";

/** One part of a multipart body. */
export interface FormPart {
  /** The `name` of its Content-Disposition (empty when the part has none). */
  name: string;
  /** The `filename` of its Content-Disposition, for file uploads. */
  filename?: string;
  /** The part's own headers, in order, as on the wire (latin1). */
  headers: [string, string][];
  /** The part's body, exactly as sent. */
  content: Uint8Array;
}

/** The boundary of a `multipart/...; boundary=...` content type, or null. */
export function multipartBoundary(contentType: string | undefined | null): string | null {
  if (!contentType || !/^\s*multipart\//i.test(contentType)) return null;
  const m = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : null;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  outer: for (
    let i = hay.indexOf(first, from);
    i !== -1 && i <= hay.length - needle.length;
    i = hay.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function dispositionParam(value: string, param: string): string | undefined {
  const re = new RegExp(`;\\s*${param}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, "i");
  const m = re.exec(value);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
}

/**
 * Split a multipart body into its parts. Returns [] when `contentType` has no boundary or the body holds no
 * delimiter; parts without a header block are skipped. Part names and headers are decoded as UTF-8 where
 * valid (browsers send UTF-8 names), else latin1.
 */
export function parseMultipart(contentType: string | undefined | null, body: Uint8Array): FormPart[] {
  const boundary = multipartBoundary(contentType);
  if (!boundary) return [];
  const delim = utf8(`--${boundary}`);
  const parts: FormPart[] = [];
  let at = indexOf(body, delim, 0);
  while (at !== -1) {
    let start = at + delim.length;
    // "--" after the delimiter closes the body
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break;
    // rest of the delimiter line (transport padding), then CRLF
    while (start < body.length && (body[start] === 0x20 || body[start] === 0x09)) start++;
    if (body[start] === 0x0d) start++;
    if (body[start] === 0x0a) start++;
    const next = indexOf(body, delim, start);
    // the CRLF before the next delimiter belongs to the delimiter
    let end = next === -1 ? body.length : next;
    if (next !== -1 && body[end - 1] === 0x0a) end--;
    if (next !== -1 && body[end - 1] === 0x0d) end--;
    const part = parsePart(body.subarray(start, Math.max(start, end)));
    if (part) parts.push(part);
    at = next;
  }
  return parts;
}

function text(b: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    return latin1(b);
  }
}

function parsePart(raw: Uint8Array): FormPart | null {
  let headEnd = indexOf(raw, utf8("\r\n\r\n"), 0);
  let sep = 4;
  if (headEnd === -1) {
    headEnd = indexOf(raw, utf8("\n\n"), 0);
    sep = 2;
  }
  if (headEnd === -1) return null;
  const headers: [string, string][] = [];
  for (const line of text(raw.subarray(0, headEnd)).split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) headers.push([line.slice(0, i).trim(), line.slice(i + 1).trim()]);
  }
  const cd = headers.find(([k]) => k.toLowerCase() === "content-disposition")?.[1] ?? "";
  const part: FormPart = {
    name: dispositionParam(cd, "name") ?? "",
    headers,
    content: raw.slice(headEnd + sep),
  };
  const filename = dispositionParam(cd, "filename");
  if (filename !== undefined) part.filename = filename;
  return part;
}

/** A fresh boundary: 20 dashes and 32 hex digits, as mitmproxy makes them. */
export function newBoundary(): string {
  const r = crypto.getRandomValues(new Uint8Array(16));
  return "-".repeat(20) + [...r].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The Content-Disposition header of a form field. */
export function dispositionFor(name: string, filename?: string): string {
  const q = (s: string) => s.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replace(/[\r\n]/g, " ");
  return `form-data; name="${q(name)}"${filename !== undefined ? `; filename="${q(filename)}"` : ""}`;
}

/**
 * Encode parts with `boundary`. Throws if a part's content contains the delimiter (the body would not parse
 * back), as mitmproxy does.
 */
export function encodeMultipart(boundary: string, parts: FormPart[]): Uint8Array {
  const delim = utf8(`--${boundary}`);
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    if (indexOf(p.content, delim, 0) !== -1) {
      throw new Error(`multipart: the value of "${p.name}" contains the boundary`);
    }
    let head = `--${boundary}\r\n`;
    for (const [k, v] of p.headers) head += `${k}: ${v}\r\n`;
    chunks.push(utf8(head + "\r\n"), p.content, utf8("\r\n"));
  }
  chunks.push(utf8(`--${boundary}--\r\n`));
  return concat(chunks);
}

/** A form field value: text (sent as UTF-8) or bytes. */
export type FormValue = string | Uint8Array;

/**
 * The fields of a `multipart/form-data` body as a live multidict (mitmproxy's `multipart_form`): every change
 * re-encodes the body through `write`, keeping the other parts' headers (file names, content types) as
 * they were. Values read as bytes (`get`) or text (`getText`).
 */
export class MultipartForm implements Iterable<[string, Uint8Array]> {
  #parts: FormPart[];
  #write: (parts: FormPart[]) => void;

  /** A live view of `parts`; `write` stores the changed parts back into the body. */
  constructor(parts: FormPart[], write: (parts: FormPart[]) => void) {
    this.#parts = parts;
    this.#write = write;
  }

  /** The parts with their headers and file names (a copy). */
  get parts(): FormPart[] {
    return this.#parts.map((p) => ({ ...p, headers: p.headers.map(([k, v]) => [k, v]) }));
  }

  /** The number of fields. */
  get size(): number {
    return this.#parts.length;
  }

  /** The first value of `name`, or null. */
  get(name: string): Uint8Array | null {
    return this.#parts.find((p) => p.name === name)?.content ?? null;
  }

  /** The first value of `name` decoded as UTF-8, or null. */
  getText(name: string): string | null {
    const v = this.get(name);
    return v === null ? null : new TextDecoder().decode(v);
  }

  /** Every value of `name`, in order. */
  getAll(name: string): Uint8Array[] {
    return this.#parts.filter((p) => p.name === name).map((p) => p.content);
  }

  /** Whether a field `name` exists. */
  has(name: string): boolean {
    return this.#parts.some((p) => p.name === name);
  }

  /** Replace the value of the first field `name` (keeping its headers) and drop the others; add it if new. */
  set(name: string, value: FormValue): void {
    const content = typeof value === "string" ? utf8(value) : value;
    const i = this.#parts.findIndex((p) => p.name === name);
    if (i === -1) return this.append(name, value);
    this.#parts[i] = { ...this.#parts[i], content };
    this.#parts = this.#parts.filter((p, j) => j === i || p.name !== name);
    this.#write(this.#parts);
  }

  /** Add a field at the end; `filename` and `contentType` make it a file upload. */
  append(name: string, value: FormValue, opts: { filename?: string; contentType?: string } = {}): void {
    const headers: [string, string][] = [["Content-Disposition", dispositionFor(name, opts.filename)]];
    if (opts.contentType) headers.push(["Content-Type", opts.contentType]);
    const part: FormPart = { name, headers, content: typeof value === "string" ? utf8(value) : value };
    if (opts.filename !== undefined) part.filename = opts.filename;
    this.#parts.push(part);
    this.#write(this.#parts);
  }

  /** Remove every field `name`. */
  delete(name: string): void {
    const before = this.#parts.length;
    this.#parts = this.#parts.filter((p) => p.name !== name);
    if (this.#parts.length !== before) this.#write(this.#parts);
  }

  /** Field names, in order (repeated names repeat). */
  keys(): string[] {
    return this.#parts.map((p) => p.name);
  }

  /** `[name, value]` pairs, in order. */
  entries(): [string, Uint8Array][] {
    return this.#parts.map((p) => [p.name, p.content]);
  }

  /** The fields as [name, value] pairs, in order. */
  [Symbol.iterator](): Iterator<[string, Uint8Array]> {
    return this.entries()[Symbol.iterator]();
  }
}
