/**
 * HPACK (RFC 7541), header compression for HTTP/2: an {@link HpackEncoder} and an {@link HpackDecoder}, each
 * with its dynamic table, Huffman coding (decoded four bits at a time through a state table built once from
 * the code), integers with prefixes, and size updates. Names and values are latin1 strings (one char per
 * byte), as the rest of mitmdeno keeps header fields.
 *
 * Errors in a header block are {@link HpackError}s: the caller treats them as a connection error
 * (COMPRESSION_ERROR), since the decoder's table is then out of step with the peer's.
 *
 * @module
 */
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from "./hpack_tables.ts";

/** A malformed header block (a COMPRESSION_ERROR), or one over the header-list limit (`tooLarge`). */
export class HpackError extends Error {
  constructor(message: string, readonly tooLarge = false) {
    super(message);
    this.name = "HpackError";
  }
}

/** The size of an entry in the dynamic table (RFC 7541 §4.1); also how header-list sizes are counted. */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

// ---- Huffman ----

/**
 * The decoding state table: for internal trie node `s` (0..255) and a 4-bit nibble `n`, entry `s * 16 + n`
 * packs the next node (bits 0-7), the symbol emitted (bits 8-15) with a flag that one was (bit 16), a flag
 * that the input may end there (bit 17: only padding of ones, under 8 bits, since the last symbol) and a
 * flag that EOS was decoded (bit 18: an error).
 */
const EMITS = 1 << 16;
const ACCEPTS = 1 << 17;
const FAILS = 1 << 18;
const HUFF_DECODE = buildHuffmanDecoder();

function buildHuffmanDecoder(): Uint32Array {
  // the trie: internal nodes get ids 0..255 as they are made, leaves are stored as -(symbol + 1)
  const child: [number[], number[]] = [[0], [0]];
  const depth: number[] = [0];
  const ones: boolean[] = [true];
  const nodes = { count: 1 };
  for (let sym = 0; sym < 257; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      if (i === 0) {
        child[bit][node] = -(sym + 1);
        break;
      }
      let next = child[bit][node];
      if (!next) {
        next = nodes.count++;
        child[0][next] = child[1][next] = 0;
        depth[next] = depth[node] + 1;
        ones[next] = ones[node] && bit === 1;
        child[bit][node] = next;
      }
      node = next;
    }
  }
  const table = new Uint32Array(256 * 16);
  for (let s = 0; s < nodes.count; s++) {
    for (let n = 0; n < 16; n++) {
      let node = s;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const next = child[(n >>> i) & 1][node];
        if (next < 0) {
          const sym = -next - 1;
          if (sym === 256) {
            entry |= FAILS;
            break;
          }
          entry |= EMITS | (sym << 8);
          node = 0;
        } else node = next;
      }
      if (node === 0 || (ones[node] && depth[node] <= 7)) entry |= ACCEPTS;
      table[s * 16 + n] = entry | node;
    }
  }
  return table;
}

/** Decode Huffman-coded bytes to a latin1 string. */
export function huffmanDecode(b: Uint8Array, start = 0, end = b.length): string {
  let state = 0;
  let accept = true;
  let out = "";
  const parts: string[] = [];
  const codes: number[] = [];
  for (let i = start; i < end; i++) {
    const byte = b[i];
    let e = HUFF_DECODE[state * 16 + (byte >>> 4)];
    if (e & FAILS) throw new HpackError("Huffman string contains EOS");
    if (e & EMITS) codes.push((e >>> 8) & 0xff);
    state = e & 0xff;
    e = HUFF_DECODE[state * 16 + (byte & 15)];
    if (e & FAILS) throw new HpackError("Huffman string contains EOS");
    if (e & EMITS) codes.push((e >>> 8) & 0xff);
    state = e & 0xff;
    accept = (e & ACCEPTS) !== 0;
    if (codes.length >= 4096) {
      parts.push(String.fromCharCode(...codes));
      codes.length = 0;
    }
  }
  if (!accept) throw new HpackError("Huffman string has invalid padding");
  if (parts.length) out = parts.join("");
  return out + String.fromCharCode(...codes);
}

/** The Huffman-coded length of a latin1 string, in bytes. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff];
  return (bits + 7) >>> 3;
}

// ---- bytes out ----

/** A growable byte buffer for header blocks. */
class Writer {
  buf = new Uint8Array(256);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  /** An integer with an N-bit prefix; `flags` are the bits above the prefix in the first byte. */
  int(value: number, prefix: number, flags: number): void {
    this.ensure(8);
    const max = (1 << prefix) - 1;
    if (value < max) {
      this.buf[this.pos++] = flags | value;
      return;
    }
    this.buf[this.pos++] = flags | max;
    value -= max;
    while (value >= 128) {
      this.buf[this.pos++] = (value % 128) | 128;
      value = Math.floor(value / 128);
    }
    this.buf[this.pos++] = value;
  }

  /** A string literal, Huffman-coded when that is shorter. */
  str(s: string): void {
    const hl = huffmanLength(s);
    if (hl <= s.length && s.length > 0) {
      this.int(hl, 7, 0x80);
      this.ensure(hl);
      const buf = this.buf;
      let pos = this.pos;
      let acc = 0;
      let bits = 0;
      for (let i = 0; i < s.length; i++) {
        const sym = s.charCodeAt(i) & 0xff;
        const len = HUFFMAN_LENGTHS[sym];
        const code = HUFFMAN_CODES[sym];
        // at most 7 bits wait in acc; codes are at most 30 bits: split to stay within 31-bit integers
        if (len > 24) {
          acc = (acc << (len - 16)) | (code >>> 16);
          bits += len - 16;
          while (bits >= 8) {
            bits -= 8;
            buf[pos++] = (acc >>> bits) & 0xff;
          }
          acc = (acc << 16) | (code & 0xffff);
          bits += 16;
        } else {
          acc = (acc << len) | code;
          bits += len;
        }
        while (bits >= 8) {
          bits -= 8;
          buf[pos++] = (acc >>> bits) & 0xff;
        }
        acc &= (1 << bits) - 1;
      }
      if (bits > 0) buf[pos++] = ((acc << (8 - bits)) | (0xff >>> bits)) & 0xff;
      this.pos = pos;
      return;
    }
    this.int(s.length, 7, 0);
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i) & 0xff;
  }

  take(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

// ---- the dynamic table ----

/** A dynamic table: newest entry first in index order (index 62 is the newest). */
class DynamicTable {
  /** Entries, oldest first (so inserting is a push). */
  names: string[] = [];
  values: string[] = [];
  size = 0;
  maxSize: number;
  /** How many entries were ever inserted (the encoder's absolute numbering). */
  inserted = 0;

  constructor(maxSize: number) {
    this.maxSize = maxSize;
  }

  get length(): number {
    return this.names.length;
  }

  /** The entry at HPACK index `i` (62 = newest), or undefined. */
  at(i: number): [string, string] | undefined {
    const k = this.names.length - 1 - (i - 62);
    if (k < 0 || k >= this.names.length) return undefined;
    return [this.names[k], this.values[k]];
  }

  add(name: string, value: string): void {
    const size = entrySize(name, value);
    this.inserted++;
    if (size > this.maxSize) {
      // an entry larger than the table empties it (RFC 7541 §4.4)
      this.names.length = this.values.length = 0;
      this.size = 0;
      return;
    }
    this.size += size;
    this.names.push(name);
    this.values.push(value);
    this.evict();
  }

  resize(max: number): void {
    this.maxSize = max;
    this.evict();
  }

  evict(): void {
    let n = 0;
    while (this.size > this.maxSize && n < this.names.length) {
      this.size -= entrySize(this.names[n], this.values[n]);
      n++;
    }
    if (n) {
      this.names.splice(0, n);
      this.values.splice(0, n);
    }
  }
}

// ---- decoder ----

/** Limits of a decoder. */
export interface DecoderOptions {
  /** The largest table the peer may use: our SETTINGS_HEADER_TABLE_SIZE (default 4096). */
  maxTableSize?: number;
  /** The largest decoded header list, counted as RFC 7540 §6.5.2 does (default: no limit). */
  maxHeaderListSize?: number;
}

/** Decodes the header blocks of one direction of a connection. */
export class HpackDecoder {
  readonly #table: DynamicTable;
  /** The limit our SETTINGS announce: size updates may not exceed it. */
  #maxAllowed: number;
  maxHeaderListSize: number;

  constructor(opts: DecoderOptions = {}) {
    this.#maxAllowed = opts.maxTableSize ?? 4096;
    this.#table = new DynamicTable(this.#maxAllowed);
    this.maxHeaderListSize = opts.maxHeaderListSize ?? Infinity;
  }

  /** The dynamic table's current size in bytes (for tests). */
  get tableSize(): number {
    return this.#table.size;
  }

  /** The dynamic table's entries, newest first (for tests). */
  get tableEntries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.#table.length; i++) out.push(this.#table.at(62 + i)!);
    return out;
  }

  /**
   * Decode one complete header block. Throws {@link HpackError}; one with `tooLarge` when the list exceeds
   * `maxHeaderListSize` (the table is still updated, so the connection can go on).
   */
  decode(b: Uint8Array): [string, string][] {
    const out: [string, string][] = [];
    const t = this.#table;
    let pos = 0;
    let listSize = 0;
    let tooLarge = false;
    let fieldSeen = false;
    const int = (prefix: number): number => {
      if (pos >= b.length) throw new HpackError("truncated integer");
      const max = (1 << prefix) - 1;
      let v = b[pos++] & max;
      if (v < max) return v;
      let m = 1;
      for (;;) {
        if (pos >= b.length) throw new HpackError("truncated integer");
        const c = b[pos++];
        v += (c & 127) * m;
        m *= 128;
        if (v > 0x7fffffff) throw new HpackError("integer too large");
        if ((c & 128) === 0) return v;
      }
    };
    const str = (): string => {
      if (pos >= b.length) throw new HpackError("truncated string");
      const huff = (b[pos] & 0x80) !== 0;
      const len = int(7);
      if (pos + len > b.length) throw new HpackError("truncated string");
      const start = pos;
      pos += len;
      if (huff) return huffmanDecode(b, start, pos);
      return latin1Of(b, start, pos);
    };
    const lookup = (i: number): [string, string] => {
      if (i === 0) throw new HpackError("index 0");
      if (i <= 61) return STATIC_TABLE[i - 1] as [string, string];
      const e = t.at(i);
      if (!e) throw new HpackError(`index ${i} out of range`);
      return e;
    };
    const emit = (name: string, value: string) => {
      fieldSeen = true;
      listSize += entrySize(name, value);
      if (listSize > this.maxHeaderListSize) tooLarge = true;
      else out.push([name, value]);
    };
    while (pos < b.length) {
      const c = b[pos];
      if (c & 0x80) {
        const [n, v] = lookup(int(7));
        emit(n, v);
      } else if (c & 0x40) {
        const i = int(6);
        const name = i ? lookup(i)[0] : str();
        const value = str();
        t.add(name, value);
        emit(name, value);
      } else if (c & 0x20) {
        if (fieldSeen) throw new HpackError("dynamic table size update after a field");
        const size = int(5);
        if (size > this.#maxAllowed) {
          throw new HpackError(`table size update to ${size} over the limit ${this.#maxAllowed}`);
        }
        t.resize(size);
      } else {
        // literal without indexing (0000) or never indexed (0001)
        const i = int(4);
        const name = i ? lookup(i)[0] : str();
        const value = str();
        emit(name, value);
      }
    }
    if (tooLarge) {
      throw new HpackError(
        `header list larger than ${this.maxHeaderListSize} bytes (${listSize})`,
        true,
      );
    }
    return out;
  }

  /** Our SETTINGS_HEADER_TABLE_SIZE changed (acknowledged by the peer). */
  setMaxTableSize(n: number): void {
    this.#maxAllowed = n;
    if (this.#table.maxSize > n) this.#table.resize(n);
  }
}

function latin1Of(b: Uint8Array, start: number, end: number): string {
  if (end - start < 64) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(b[i]);
    return s;
  }
  const parts: string[] = [];
  for (let i = start; i < end; i += 8192) {
    parts.push(String.fromCharCode(...b.subarray(i, Math.min(end, i + 8192))));
  }
  return parts.join("");
}

// ---- encoder ----

/** Fields never put in the dynamic table and sent as never-indexed (RFC 7541 §7.1.3). */
const SENSITIVE = new Set(["authorization", "proxy-authorization"]);
/** Values larger than this are sent literally without indexing (they would evict everything). */
const MAX_INDEXED_VALUE = 512;

const STATIC_EXACT = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  const key = n + "\0" + v;
  if (!STATIC_EXACT.has(key)) STATIC_EXACT.set(key, i + 1);
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
});

/** Encodes the header blocks of one direction of a connection. */
export class HpackEncoder {
  readonly #table: DynamicTable;
  /** name\0value -> absolute insertion number of its newest entry. */
  readonly #exact = new Map<string, number>();
  /** name -> absolute insertion number of its newest entry. */
  readonly #names = new Map<string, number>();
  /** A size update to emit at the start of the next block (the smallest and the last, RFC 7541 §4.2). */
  #pendingResize: number[] = [];
  /** Our own cap on the table (we never use more than this, whatever the peer allows). */
  readonly #cap: number;

  constructor(maxTableSize = 4096) {
    this.#cap = maxTableSize;
    // the peer starts with 4096: a smaller table of ours is announced in the first block
    this.#table = new DynamicTable(Math.min(4096, maxTableSize));
    if (maxTableSize < 4096) this.#pendingResize.push(maxTableSize);
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE: the table shrinks (or may grow up to our cap). */
  setMaxTableSize(n: number): void {
    const size = Math.min(n, this.#cap);
    if (size === this.#table.maxSize) return;
    this.#pendingResize.push(size);
    this.#table.resize(size);
  }

  /** The index of an absolute insertion number, if the entry is still in the table. */
  #indexOf(abs: number | undefined): number {
    if (abs === undefined) return 0;
    const t = this.#table;
    const age = t.inserted - abs; // 0 = newest
    return age < t.length ? 62 + age : 0;
  }

  /** Encode a header list (names must already be lowercase for HTTP/2). */
  encode(fields: readonly (readonly [string, string])[]): Uint8Array {
    const w = new Writer();
    if (this.#pendingResize.length) {
      const sizes = this.#pendingResize;
      const min = Math.min(...sizes);
      const last = sizes[sizes.length - 1];
      if (min < last) w.int(min, 5, 0x20);
      w.int(last, 5, 0x20);
      this.#pendingResize = [];
    }
    for (const [name, value] of fields) {
      const key = name + "\0" + value;
      const st = STATIC_EXACT.get(key);
      if (st !== undefined) {
        w.int(st, 7, 0x80);
        continue;
      }
      const dyn = this.#indexOf(this.#exact.get(key));
      if (dyn) {
        w.int(dyn, 7, 0x80);
        continue;
      }
      const nameIndex = STATIC_NAME.get(name) ?? this.#indexOf(this.#names.get(name));
      if (SENSITIVE.has(name)) {
        w.int(nameIndex, 4, 0x10);
        if (!nameIndex) w.str(name);
        w.str(value);
        continue;
      }
      if (value.length > MAX_INDEXED_VALUE || entrySize(name, value) > this.#table.maxSize) {
        w.int(nameIndex, 4, 0);
        if (!nameIndex) w.str(name);
        w.str(value);
        continue;
      }
      w.int(nameIndex, 6, 0x40);
      if (!nameIndex) w.str(name);
      w.str(value);
      this.#table.add(name, value);
      this.#exact.set(key, this.#table.inserted);
      this.#names.set(name, this.#table.inserted);
      if (this.#exact.size > 4 * 1024) this.#prune();
    }
    return w.take();
  }

  /** Forget lookups of evicted entries (keeps the maps bounded). */
  #prune(): void {
    for (const [k, abs] of this.#exact) if (!this.#indexOf(abs)) this.#exact.delete(k);
    for (const [k, abs] of this.#names) if (!this.#indexOf(abs)) this.#names.delete(k);
  }
}
