/**
 * tnetstrings as mitmproxy writes them (`mitmproxy/io/tnetstring.py`): `<length>:<payload><tag>`.
 *
 * JS representation:
 * - `,` bytes <-> `Uint8Array`
 * - `;` str <-> `string`
 * - `#` int <-> `number` (or `bigint` when outside the safe integer range; `bigint` always encodes as `#`)
 * - `^` float <-> `number`. An integer-valued `number` encodes as `#`; wrap it with {@link tfloat} to force
 *   `^`. Floats are written as Python's `repr()` (`1.0`, `1e-05`, `1e+16`, `inf`, `nan`).
 * - `!` bool <-> `boolean`, `~` null <-> `null` (`undefined` also encodes as null)
 * - `]` list <-> `Array` (tuples come back as arrays)
 * - `}` dict <-> plain object. Keys decode to strings (bytes keys, from Python 2 era files, as UTF-8).
 *   On encode, a plain object's keys are written as `;` strings; a `Map` may have any serializable keys.
 *
 * @module
 */

import { allocBytes } from "../http/bytes.ts";

/** A value that can be written as a tnetstring. */
export type TNetValue =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | TFloat
  | TNetValue[]
  | Map<TNetValue, TNetValue>
  | { [key: string]: TNetValue };

/** A decoded tnetstring dict. */
export type TNetDict = { [key: string]: TNetValue };

/** Error for malformed tnetstring data; `offset` is the byte offset (in the file/stream) of the problem. */
export class TnetstringError extends Error {
  /** Byte offset of the problem, counted from the start of the input. */
  offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte offset ${offset})`);
    this.name = "TnetstringError";
    this.offset = offset;
  }
}

/** Marks a number to be encoded as a float (`^`) even when it is integer-valued. */
export class TFloat {
  /** The wrapped value. */
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/** Wrap `x` so it encodes as a float; null/undefined stay null. */
export function tfloat(x: number): TFloat;
export function tfloat(x: number | null | undefined): TFloat | null;
export function tfloat(x: number | null | undefined): TFloat | null {
  return x == null ? null : new TFloat(Number(x));
}

/**
 * Python's `repr(float)`: shortest round-trip digits, scientific notation when the decimal exponent is
 * < -4 or >= 16, always with a ".0" or exponent so it reads back as a float.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const ax = Math.abs(x);
  if (ax >= 1e-4 && ax < 1e16) {
    // where both write plain decimals (JS from 1e-6 to 1e21), JS's shortest round-trip digits are Python's
    const s = String(x);
    return s.includes(".") ? s : `${s}.0`;
  }
  const sign = x < 0 ? "-" : "";
  const exp = Math.abs(x).toExponential(); // shortest round-trip digits, e.g. "1.2345e+3"
  const e = exp.indexOf("e");
  const digits = exp.slice(0, e).replace(".", "");
  const decpt = Number(exp.slice(e + 1)) + 1; // position of the decimal point relative to the digits
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
    if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const ex = decpt - 1;
  const abs = Math.abs(ex);
  return `${sign}${mant}e${ex < 0 ? "-" : "+"}${abs < 10 ? "0" : ""}${abs}`;
}

const FLOAT_RE = /^[+-]?(?:(?:\d[\d_]*)?(?:\.\d*)?(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)$/i;

/** Parse a float literal the way Python's `float()` does (enough for what Python writes). */
export function parsePyFloat(s: string): number {
  const t = s.trim();
  if (!FLOAT_RE.test(t) || !/[\dinfa]/i.test(t)) return NaN;
  const low = t.toLowerCase().replace(/_/g, "");
  const neg = low.startsWith("-");
  const body = low.replace(/^[+-]/, "");
  if (body === "inf" || body === "infinity") return neg ? -Infinity : Infinity;
  if (body === "nan") return NaN;
  return Number(low);
}

// ---------------------------------------------------------------------------------------------------------
// Encoding: like Python's implementation we write back to front, so each length prefix is known when written.

const encoder = new TextEncoder();

/**
 * Builds a tnetstring from its end towards its start (a value's length prefix is known once the value is
 * written): for encoders of a fixed shape (lib/io/flow_encode.ts) next to the generic {@link dumps}.
 */
export class ReverseWriter {
  buf: Uint8Array;
  pos: number;
  constructor(buf: Uint8Array = new Uint8Array(4096)) {
    this.buf = buf;
    this.pos = buf.length;
  }
  ensure(n: number): void {
    if (this.pos >= n) return;
    const used = this.buf.length - this.pos;
    let size = Math.max(4096, this.buf.length * 2);
    while (size - used < n) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf.subarray(this.pos), size - used);
    this.buf = nb;
    this.pos = size - used;
  }
  byte(b: number): void {
    if (this.pos < 1) this.ensure(1);
    this.buf[--this.pos] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.pos -= b.length;
    this.buf.set(b, this.pos);
  }
  /** Writes an ASCII string; returns false if it has non-ASCII chars (nothing written then). */
  ascii(s: string): boolean {
    return this.chars(s, 0x7f);
  }
  /**
   * Writes a binary (latin1) string as its bytes; returns false if it has chars above U+00FF (nothing
   * written then; see binToBytes in state.ts, which encodes such a string as UTF-8).
   */
  latin1(s: string): boolean {
    return this.chars(s, 0xff);
  }
  /** Writes each char of `s` as one byte if none is above `max`; returns false (nothing written) otherwise. */
  chars(s: string, max: number): boolean {
    const n = s.length;
    this.ensure(n);
    const start = this.pos - n;
    const buf = this.buf;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > max) return false;
      buf[start + i] = c;
    }
    this.pos = start;
    return true;
  }
  /** Write the decimal digits of a non-negative safe integer; returns how many (no string made: a length
   * prefix per value, String(n) was a tenth of a flow's encoding time). */
  uint(n: number): number {
    if (this.pos < 16) this.ensure(16);
    const buf = this.buf;
    const end = this.pos;
    let pos = end;
    do {
      const q = Math.floor(n / 10);
      buf[--pos] = 0x30 + (n - q * 10);
      n = q;
    } while (n > 0);
    this.pos = pos;
    return end - pos;
  }
  get size(): number {
    return this.buf.length - this.pos;
  }
  result(): Uint8Array {
    return this.buf.slice(this.pos);
  }
}

const COLON = 0x3a;

function isPlainObject(v: object): v is Record<string, TNetValue> {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** Write one value (any {@link TNetValue}) in front of what `w` holds. */
export function writeValue(w: ReverseWriter, value: TNetValue): void {
  const before = w.size;
  if (value === null || value === undefined) {
    w.byte(0x7e); // ~
    w.byte(COLON);
    w.byte(0x30);
    return;
  }
  switch (typeof value) {
    case "boolean":
      if (value) {
        w.ascii("4:true!");
      } else {
        w.ascii("5:false!");
      }
      return;
    case "number":
      if (Number.isInteger(value) && Number.isSafeInteger(value)) {
        w.byte(0x23); // #
        const len = w.uint(Math.abs(value));
        if (value < 0) w.byte(0x2d);
        w.byte(COLON);
        w.uint(len + (value < 0 ? 1 : 0));
      } else if (Number.isInteger(value)) {
        // a huge integer-valued double: Python would have an int here only if it was one; keep it exact.
        writeValue(w, BigInt(value));
      } else {
        writeFloat(w, value);
      }
      return;
    case "bigint": {
      const s = value.toString();
      w.byte(0x23);
      w.ascii(s);
      w.byte(COLON);
      w.uint(s.length);
      return;
    }
    case "string": {
      w.byte(0x3b); // ;
      if (!w.ascii(value)) w.bytes(encoder.encode(value));
      w.byte(COLON);
      w.uint(w.size - before - 2);
      return;
    }
    case "object":
      break;
    default:
      throw new TypeError(`cannot serialize ${typeof value} as tnetstring`);
  }
  if (value instanceof Uint8Array) {
    w.byte(0x2c); // ,
    w.bytes(value);
    w.byte(COLON);
    w.uint(value.length);
    return;
  }
  if (value instanceof TFloat) return writeFloat(w, value.value);
  if (Array.isArray(value)) {
    w.byte(0x5d); // ]
    for (let i = value.length - 1; i >= 0; i--) writeValue(w, value[i]);
    w.byte(COLON);
    w.uint(w.size - before - 2);
    return;
  }
  if (value instanceof Map) {
    w.byte(0x7d); // }
    const entries = [...value.entries()];
    for (let i = entries.length - 1; i >= 0; i--) {
      writeValue(w, entries[i][1]);
      writeValue(w, entries[i][0]);
    }
    w.byte(COLON);
    w.uint(w.size - before - 2);
    return;
  }
  if (isPlainObject(value)) {
    w.byte(0x7d);
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      writeValue(w, value[keys[i]]);
      writeValue(w, keys[i]);
    }
    w.byte(COLON);
    w.uint(w.size - before - 2);
    return;
  }
  throw new TypeError(`cannot serialize ${Object.prototype.toString.call(value)} as tnetstring`);
}

/** Write a float (Python's repr of it) in front of what `w` holds. */
export function writeFloat(w: ReverseWriter, x: number): void {
  const s = pyFloatRepr(x);
  w.byte(0x5e); // ^
  w.ascii(s);
  w.byte(COLON);
  w.uint(s.length);
}

/** Encode a value as one tnetstring. */
export function dumps(value: TNetValue): Uint8Array {
  // dumps is synchronous, so one scratch buffer can be reused (the result is a copy)
  const w = new ReverseWriter(scratch);
  scratch = EMPTY; // a nested call (from a toJSON-like hook) would get its own buffer
  try {
    writeValue(w, value);
    return w.result();
  } finally {
    scratch = w.buf.length <= SCRATCH_MAX ? w.buf : new Uint8Array(SCRATCH_MIN);
  }
}

/**
 * Like {@link dumps}, but returns a view into an internal buffer that the next `dumps`/`dumpsView` call
 * overwrites: write it out at once (this saves a copy per flow when streaming to a file).
 */
export function dumpsView(value: TNetValue): Uint8Array {
  return writeView((w) => writeValue(w, value));
}

/**
 * Run `write` on a writer over the internal scratch buffer and return a view of what it wrote, valid
 * until the next `dumps`/`dumpsView`/`writeView` call (see {@link dumpsView}).
 */
export function writeView(write: (w: ReverseWriter) => void): Uint8Array {
  const w = new ReverseWriter(scratch);
  scratch = EMPTY;
  try {
    write(w);
  } catch (e) {
    scratch = w.buf.length <= SCRATCH_MAX ? w.buf : new Uint8Array(SCRATCH_MIN);
    throw e;
  }
  // a buffer that grew past the limit is not kept; the view stays valid either way
  scratch = w.buf.length <= SCRATCH_MAX ? w.buf : new Uint8Array(SCRATCH_MIN);
  return w.buf.subarray(w.pos);
}

const SCRATCH_MIN = 64 * 1024;
const SCRATCH_MAX = 4 * 1024 * 1024;
const EMPTY = new Uint8Array(0);
let scratch: Uint8Array = new Uint8Array(SCRATCH_MIN);

// ---------------------------------------------------------------------------------------------------------
// Decoding

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A short ASCII string from bytes (no subarray, no apply: this runs for most values of a flow). */
function asciiShort(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
  return s;
}

function decodeUtf8(buf: Uint8Array, start: number, end: number, offset: number): string {
  // ASCII fast path for short strings
  if (end - start < 64) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (buf[i] > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) return end - start < 24 ? asciiShort(buf, start, end) : latin1(buf, start, end);
  }
  try {
    return utf8Strict.decode(buf.subarray(start, end));
  } catch {
    throw new TnetstringError("not a tnetstring: invalid UTF-8 in str value", offset);
  }
}

/**
 * Dict keys: a flow has the same few dozen keys every time, so their strings are kept (by length and a
 * hash of the bytes, checked byte by byte) instead of being made again for every flow.
 */
const KEY_CACHE_SIZE = 1024;
const keyCache: (string | undefined)[] = new Array(KEY_CACHE_SIZE);

function cachedKey(buf: Uint8Array, start: number, end: number, offset: number): string {
  const len = end - start;
  if (len > 32) return decodeUtf8(buf, start, end, offset);
  let h = len;
  for (let i = start; i < end; i++) h = (Math.imul(h, 31) + buf[i]) | 0;
  const slot = h & (KEY_CACHE_SIZE - 1);
  const k = keyCache[slot];
  if (k !== undefined && k.length === len) {
    let same = true;
    for (let i = 0; i < len; i++) {
      if (k.charCodeAt(i) !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return k;
  }
  for (let i = start; i < end; i++) if (buf[i] > 0x7f) return decodeUtf8(buf, start, end, offset);
  const s = asciiShort(buf, start, end);
  keyCache[slot] = s;
  return s;
}

/**
 * A copy of `buf[start, end)` (never a view: the value outlives the read buffer). Small ones (header names
 * and values, most of a flow's byte strings) come from node's shared Buffer pool: `slice` makes a new
 * backing store each time (~0.3 µs in Deno), a pool copy ~0.06 µs. Large ones (bodies) get their own.
 */
function copyBytes(buf: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n > 256) return buf.slice(start, end);
  const out = allocBytes(n);
  out.set(buf.subarray(start, end));
  return out;
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 8192)) as unknown as number[]);
  }
  return s;
}

function parseInt10(buf: Uint8Array, start: number, end: number, offset: number): number | bigint {
  // the common case: a plain non-negative integer that fits
  if (end > start && end - start < 16) {
    let n = 0;
    let i = start;
    for (; i < end; i++) {
      const c = buf[i];
      if (c < 0x30 || c > 0x39) break;
      n = n * 10 + (c - 0x30);
    }
    if (i === end) return n;
  }
  const s = latin1(buf, start, end).trim().replace(/_/g, "");
  if (!/^[+-]?\d+$/.test(s)) {
    throw new TnetstringError(`not a tnetstring: invalid integer literal: ${JSON.stringify(s)}`, offset);
  }
  if (s.length < 16) return Number(s);
  const b = BigInt(s);
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** A float as Python writes it ("1764000000.0003"): digits, one dot, more digits; else null. */
function plainFloat(buf: Uint8Array, start: number, end: number): number | null {
  if (end - start > 17 || end === start) return null;
  let dot = -1;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c === 0x2e && dot < 0) dot = i;
    else if (c < 0x30 || c > 0x39) return null;
  }
  if (dot === start || dot === end - 1) return null;
  return Number(asciiShort(buf, start, end));
}

/** Where the length prefix of a tnetstring at `pos` ends; result `{len, dataStart}` or a negative code. */
function readPrefix(
  buf: Uint8Array,
  pos: number,
  end: number,
  base: number,
): { len: number; dataStart: number } | null {
  let len = 0;
  let i = pos;
  for (; i < end; i++) {
    const c = buf[i];
    if (c >= 0x30 && c <= 0x39) {
      if (i - pos >= 12) {
        throw new TnetstringError("not a tnetstring: absurdly large length prefix", base + pos);
      }
      len = len * 10 + (c - 0x30);
    } else break;
  }
  if (i >= end) return null; // need more data
  if (buf[i] !== COLON || i === pos) {
    throw new TnetstringError("not a tnetstring: missing or invalid length prefix", base + pos);
  }
  return { len, dataStart: i + 1 };
}

/**
 * Decode the tnetstring starting at `pos` in `buf` (which must contain all of it).
 * `base` is added to offsets in error messages. Returns the value and the offset just after it.
 */
export function decodeAt(buf: Uint8Array, pos = 0, end = buf.length, base = 0): [TNetValue, number] {
  const d = new Decoder(buf, base);
  const v = d.value(pos, end, false);
  return [v, d.next];
}

/**
 * The decoder's state: the offset after the value just decoded is kept in `next` (no [value, offset]
 * pair allocated per value: a flow has ~130 of them).
 */
class Decoder {
  next = 0;
  constructor(readonly buf: Uint8Array, readonly base: number) {}

  value(pos: number, end: number, isKey: boolean): TNetValue {
    const buf = this.buf;
    const base = this.base;
    let len = 0;
    let i = pos;
    for (; i < end; i++) {
      const c = buf[i];
      if (c >= 0x30 && c <= 0x39) {
        if (i - pos >= 12) {
          throw new TnetstringError("not a tnetstring: absurdly large length prefix", base + pos);
        }
        len = len * 10 + (c - 0x30);
      } else break;
    }
    if (i >= end) throw new TnetstringError("not a tnetstring: truncated length prefix", base + pos);
    if (buf[i] !== COLON || i === pos) {
      throw new TnetstringError("not a tnetstring: missing or invalid length prefix", base + pos);
    }
    const dataStart = i + 1;
    const dataEnd = dataStart + len;
    if (dataEnd >= end) {
      throw new TnetstringError(
        `not a tnetstring: truncated value, length prefix says ${len} bytes but only ${
          Math.max(0, end - dataStart - 1)
        } follow`,
        base + pos,
      );
    }
    const tag = buf[dataEnd];
    const next = dataEnd + 1;
    switch (tag) {
      case 0x2c: // ,
        this.next = next;
        return isKey ? cachedKey(buf, dataStart, dataEnd, base + pos) : copyBytes(buf, dataStart, dataEnd);
      case 0x3b: // ;
        this.next = next;
        return isKey
          ? cachedKey(buf, dataStart, dataEnd, base + pos)
          : decodeUtf8(buf, dataStart, dataEnd, base + pos);
      case 0x23: // #
        this.next = next;
        return parseInt10(buf, dataStart, dataEnd, base + pos);
      case 0x5e: { // ^
        this.next = next;
        const plain = plainFloat(buf, dataStart, dataEnd);
        if (plain !== null) return plain;
        const s = latin1(buf, dataStart, dataEnd);
        const f = parsePyFloat(s);
        if (Number.isNaN(f) && s.trim().toLowerCase().replace(/^[+-]/, "") !== "nan") {
          throw new TnetstringError(
            `not a tnetstring: invalid float literal: ${JSON.stringify(s)}`,
            base + pos,
          );
        }
        return f;
      }
      case 0x21: { // !
        this.next = next;
        if (
          len === 4 && buf[dataStart] === 0x74 && buf[dataStart + 1] === 0x72 &&
          buf[dataStart + 2] === 0x75 && buf[dataStart + 3] === 0x65
        ) return true;
        if (len === 5 && buf[dataStart] === 0x66 && latin1(buf, dataStart, dataEnd) === "false") return false;
        const s = latin1(buf, dataStart, dataEnd);
        throw new TnetstringError(
          `not a tnetstring: invalid boolean literal: ${JSON.stringify(s)}`,
          base + pos,
        );
      }
      case 0x7e: // ~
        if (len !== 0) throw new TnetstringError("not a tnetstring: invalid null literal", base + pos);
        this.next = next;
        return null;
      case 0x5d: { // ]
        const out: TNetValue[] = [];
        let j = dataStart;
        while (j < dataEnd) {
          out.push(this.value(j, dataEnd, false));
          j = this.next;
        }
        this.next = next;
        return out;
      }
      case 0x7d: { // }
        const out: TNetDict = {};
        let j = dataStart;
        while (j < dataEnd) {
          const keyPos = j;
          const k = this.value(j, dataEnd, true);
          const n = this.next;
          if (n >= dataEnd) {
            throw new TnetstringError("not a tnetstring: dict key without value", base + keyPos);
          }
          const v = this.value(n, dataEnd, false);
          let key: string;
          if (typeof k === "string") key = k;
          else if (k instanceof Uint8Array) key = decodeUtf8(k, 0, k.length, base + keyPos);
          else if (typeof k === "number" || typeof k === "bigint" || typeof k === "boolean") key = String(k);
          else throw new TnetstringError("not a tnetstring: unsupported dict key type", base + keyPos);
          if (key === "__proto__") {
            Object.defineProperty(out, key, {
              value: v,
              enumerable: true,
              writable: true,
              configurable: true,
            });
          } else out[key] = v;
          j = this.next;
        }
        this.next = next;
        return out;
      }
      default:
        throw new TnetstringError(
          `not a tnetstring: unknown type tag ${JSON.stringify(String.fromCharCode(tag))}`,
          base + dataEnd,
        );
    }
  }
}

/** Decode one tnetstring; throws if there is trailing data. */
export function loads(data: Uint8Array): TNetValue {
  const [v, n] = decodeAt(data, 0, data.length, 0);
  if (n !== data.length) throw new TnetstringError("trailing data after tnetstring", n);
  return v;
}

/** Decode one tnetstring at the start of `data`, returning it and the rest (Python's `pop`). */
export function pop(data: Uint8Array): [TNetValue, Uint8Array] {
  const [v, n] = decodeAt(data, 0, data.length, 0);
  return [v, data.subarray(n)];
}

// ---------------------------------------------------------------------------------------------------------
// Streaming

/** One value read from a stream, with where it was. */
export interface TnetstringItem {
  value: TNetValue;
  /** Byte offset of the first byte of the item in the stream. */
  offset: number;
  /** Length of the item in bytes. */
  length: number;
}

/**
 * Incremental reader over a stream of byte chunks. It buffers only what the current item needs, so huge
 * files stream in constant memory (plus the largest single item).
 */
export class TnetstringReader {
  #it: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #start = 0;
  #end = 0;
  /** Absolute stream offset of `#buf[0]`. */
  #base = 0;
  #eof = false;
  /** Whether `#buf` is ours (else it is a chunk from the source, which we must not write into). */
  #owned = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  /** Absolute offset of the next unread byte. */
  get offset(): number {
    return this.#base + this.#start;
  }

  /** Pull one more chunk into the buffer; false at EOF. */
  async #fill(minTotal = 0): Promise<boolean> {
    if (this.#eof) return false;
    const r = await this.#it.next();
    if (r.done) {
      this.#eof = true;
      return false;
    }
    const chunk = r.value;
    if (chunk.length === 0) return true;
    const unread = this.#end - this.#start;
    if (unread === 0 && minTotal <= chunk.length) {
      // common fast path: work directly on the chunk
      this.#base += this.#end;
      this.#buf = chunk;
      this.#owned = false;
      this.#start = 0;
      this.#end = chunk.length;
      return true;
    }
    const need = unread + chunk.length;
    if (!this.#owned || this.#buf.length - this.#end < chunk.length) {
      const size = Math.max(need, minTotal, 65536, Math.min(need * 2, need + (16 << 20)));
      const nb = new Uint8Array(size);
      nb.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#base += this.#start;
      this.#buf = nb;
      this.#owned = true;
      this.#start = 0;
      this.#end = unread;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
    return true;
  }

  /** Bytes at the current position without consuming them (fewer at EOF). */
  async peek(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n && await this.#fill(n)) { /* keep reading */ }
    return this.#buf.subarray(this.#start, Math.min(this.#end, this.#start + n));
  }

  /** Consume `n` bytes (e.g. a BOM). */
  skip(n: number): void {
    this.#start = Math.min(this.#end, this.#start + n);
  }

  /** Read the rest of the stream (used for HAR). */
  async readAll(): Promise<Uint8Array> {
    while (await this.#fill()) { /* keep reading */ }
    const out = this.#buf.slice(this.#start, this.#end);
    this.#start = this.#end;
    return out;
  }

  /** The next item, or null at a clean end of stream. Throws {@link TnetstringError} on bad/truncated data. */
  async next(): Promise<TnetstringItem | null> {
    let p: { len: number; dataStart: number } | null;
    for (;;) {
      if (this.#start === this.#end && !(await this.#fill())) return null;
      p = readPrefix(this.#buf, this.#start, this.#end, this.#base);
      if (p) break;
      if (!(await this.#fill())) {
        throw new TnetstringError(
          `truncated data: incomplete length prefix, ${this.#end - this.#start} bytes before end of stream`,
          this.offset,
        );
      }
    }
    const total = p.dataStart - this.#start + p.len + 1;
    while (this.#end - this.#start < total) {
      if (!(await this.#fill(total))) {
        throw new TnetstringError(
          `truncated data: item needs ${total} bytes but the stream ends after ${this.#end - this.#start}`,
          this.offset,
        );
      }
    }
    const offset = this.offset;
    const [value] = decodeAt(this.#buf, this.#start, this.#start + total, this.#base);
    this.#start += total;
    return { value, offset, length: total };
  }
}

/** Read consecutive tnetstrings from a stream of chunks until a clean end; throws on bad/truncated data. */
export async function* readTnetstrings(reader: AsyncIterable<Uint8Array>): AsyncGenerator<TNetValue> {
  const r = new TnetstringReader(reader);
  for (;;) {
    const item = await r.next();
    if (!item) return;
    yield item.value;
  }
}
