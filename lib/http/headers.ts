/**
 * HTTP header multidict: ordered, case-insensitive, keeps duplicates.
 *
 * Names and values are "binary strings" (each char is one byte, latin1), which is what travels on the wire.
 *
 * @example
 * ```ts
 * import { Headers } from "mitmdeno";
 * const h = new Headers([["Set-Cookie", "a=1"], ["set-cookie", "b=2"]]);
 * h.get("SET-COOKIE"); // "a=1, b=2"
 * h.getAll("set-cookie"); // ["a=1", "b=2"]
 * ```
 */
export class Headers {
  /** The header fields in wire order. Mutate through the methods; read freely. */
  fields: [string, string][];

  /** Headers from [name, value] pairs (order kept, names repeatable) or an object. */
  constructor(init?: Iterable<[string, string]> | Record<string, string>) {
    this.fields = [];
    if (!init) return;
    if (Symbol.iterator in Object(init)) {
      for (const [k, v] of init as Iterable<[string, string]>) this.fields.push([String(k), String(v)]);
    } else {
      for (const [k, v] of Object.entries(init as Record<string, string>)) this.fields.push([k, String(v)]);
    }
  }

  /**
   * Wrap `fields` without copying them: the caller hands the array over (parsers use this for the fields
   * they just built; `new Headers(fields)` copies every pair).
   */
  static adopt(fields: [string, string][]): Headers {
    const h = new Headers();
    h.fields = fields;
    return h;
  }

  /** All values of `name` joined with ", " (cookies with "; "), or undefined if absent. */
  get(name: string): string | undefined {
    const lower = name.toLowerCase();
    const fields = this.fields;
    // one pass, no array unless the name repeats (the usual case has one field or none)
    let first: string | undefined;
    let all: string[] | null = null;
    for (let i = 0; i < fields.length; i++) {
      const k = fields[i][0];
      if (k.length !== lower.length || (k !== lower && k.toLowerCase() !== lower)) continue;
      if (first === undefined) first = fields[i][1];
      else (all ??= [first]).push(fields[i][1]);
    }
    if (all === null) return first;
    return all.join(lower === "cookie" ? "; " : ", ");
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const lower = name.toLowerCase();
    const out: string[] = [];
    for (const [k, v] of this.fields) {
      if (k.length === lower.length && (k === lower || k.toLowerCase() === lower)) out.push(v);
    }
    return out;
  }

  /** Whether a field called `name` exists. */
  has(name: string): boolean {
    return this.indexOf(name) !== -1;
  }

  /** Replace all fields called `name` by one with `value`, in the first one's place and spelling. */
  set(name: string, value: string): void {
    this.setAll(name, [value]);
  }

  /**
   * Set the values of `name`, as mitmproxy does: existing fields of that name take the values in order
   * and keep their spelling and place, fields left over are removed, values left over are appended.
   */
  setAll(name: string, values: string[]): void {
    const lower = name.toLowerCase();
    const out: [string, string][] = [];
    let i = 0;
    for (const f of this.fields) {
      if (f[0].length !== lower.length || f[0].toLowerCase() !== lower) out.push(f);
      else if (i < values.length) out.push([f[0], String(values[i++])]);
    }
    for (; i < values.length; i++) out.push([name, String(values[i])]);
    this.fields = out;
  }

  /** Add a field at the end, keeping existing ones. */
  append(name: string, value: string): void {
    this.fields.push([name, String(value)]);
  }

  /** Alias of {@link append}, as in mitmproxy. */
  add(name: string, value: string): void {
    this.append(name, value);
  }

  /** Insert a field at position `index`. */
  insert(index: number, name: string, value: string): void {
    this.fields.splice(index, 0, [name, String(value)]);
  }

  /** Remove every field called `name`. Returns whether any was removed. */
  delete(name: string): boolean {
    const lower = name.toLowerCase();
    const before = this.fields.length;
    this.fields = this.fields.filter(([k]) => k.toLowerCase() !== lower);
    return this.fields.length !== before;
  }

  /** Number of fields (duplicates counted). */
  get size(): number {
    return this.fields.length;
  }

  /** Distinct header names (first spelling seen). */
  keys(): string[] {
    const seen = new Map<string, string>();
    for (const [k] of this.fields) if (!seen.has(k.toLowerCase())) seen.set(k.toLowerCase(), k);
    return [...seen.values()];
  }

  /** `[name, value]` pairs; with `multi` every field, else one per name with joined values. */
  items(multi = false): [string, string][] {
    if (multi) return this.fields.map(([k, v]) => [k, v]);
    return this.keys().map((k) => [k, this.get(k)!]);
  }

  /** The fields in order, as [name, value] pairs. */
  [Symbol.iterator](): Iterator<[string, string]> {
    return this.fields[Symbol.iterator]();
  }

  /** A deep copy. */
  copy(): Headers {
    return new Headers(this.fields);
  }

  /** The header block as on the wire ("Name: value\r\n" lines, no final blank line). */
  toString(): string {
    let s = "";
    for (const [k, v] of this.fields) s += `${k}: ${v}\r\n`;
    return s;
  }

  /** A plain object (later duplicates joined), handy for logging and JSON. */
  toJSON(): Record<string, string> {
    const o: Record<string, string> = {};
    for (const [k, v] of this.items()) o[k] = v;
    return o;
  }

  /** Index of the first field named `name` (case-insensitive), or -1. */
  private indexOf(name: string): number {
    const lower = name.toLowerCase();
    const fields = this.fields;
    for (let i = 0; i < fields.length; i++) {
      const k = fields[i][0];
      if (k.length === lower.length && (k === lower || k.toLowerCase() === lower)) return i;
    }
    return -1;
  }
}
