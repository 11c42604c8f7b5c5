/**
 * The flow store's segment file (`<store>-seg`, beside the database): an append-only file holding every
 * version of a flow's record and every body, each written once. The database rows point into it by
 * offset, so SQLite writes only the small list rows (a record and a body in SQLite rows were written
 * twice, to the WAL and at the checkpoint, and were most of a recorded flow's cost).
 *
 * Layout: a 32-byte file header (magic), then entries, each a 32-byte header (payload length, kind, and
 * for a record the offsets of its request and response bodies, -1 for none) and its payload. Offsets
 * handed out are those of payloads, so 0 never names one (the store uses 0 for an empty body).
 * Appends are buffered and written by {@link Segment.flush} in one write; a torn last entry (the process
 * killed mid-write) is cut off when the file is opened again.
 *
 * @module
 */

/** Kind of a segment entry. */
export const BODY = 1;
/** Kind of a segment entry: a flow record (JSON) with its bodies' offsets. */
export const RECORD = 2;

const MAGIC = "mitmdeno flow segment 1\n";
/** Bytes before the first entry. */
export const FILE_HEADER = 32;
const HEADER = 32;
/** Appends up to this size are gathered in memory; a bigger body is written on its own. */
const BUFFER = 256 * 1024;
/** Bytes read ahead when a record is read (records of neighbouring flows are read in order by filters). */
const WINDOW = 64 * 1024;

/** One entry, as {@link Segment.entries} yields it. */
export interface SegmentEntry {
  kind: number;
  /** The payload's offset. */
  offset: number;
  length: number;
  /** For a record: its request and response body offsets (null: none). */
  request: number | null;
  response: number | null;
}

/** The append-only file of records and bodies a {@link SqliteStore} points into. */
export class Segment {
  readonly path: string;
  readonly #w: Deno.FsFile;
  readonly #r: Deno.FsFile;
  /** Bytes in the file. */
  #flushed: number;
  readonly #buf = new Uint8Array(BUFFER);
  readonly #view = new DataView(this.#buf.buffer);
  #used = 0;
  #window: Uint8Array = new Uint8Array(0);
  #windowAt = -1;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder();

  private constructor(path: string, w: Deno.FsFile, r: Deno.FsFile, size: number) {
    this.path = path;
    this.#w = w;
    this.#r = r;
    this.#flushed = size;
  }

  /** Open (or create) a segment file; `create: false` fails when there is none. */
  static open(path: string, create: boolean): Segment {
    const w = Deno.openSync(path, { append: true, create });
    let r: Deno.FsFile;
    try {
      r = Deno.openSync(path, { read: true });
    } catch (e) {
      w.close();
      throw e;
    }
    const seg = new Segment(path, w, r, w.statSync().size);
    try {
      if (seg.#flushed === 0) {
        const head = new Uint8Array(FILE_HEADER);
        seg.#encoder.encodeInto(MAGIC, head);
        seg.#writeAll(head);
        seg.#flushed = FILE_HEADER;
      } else if (seg.#flushed < FILE_HEADER || seg.#decoder.decode(seg.#pread(0, MAGIC.length)) !== MAGIC) {
        throw new Error(`${path} is not a flow segment file`);
      }
    } catch (e) {
      seg.close();
      throw e;
    }
    return seg;
  }

  /** The file's length including what is not flushed yet: where the next entry goes. */
  get size(): number {
    return this.#flushed + this.#used;
  }

  /** Make room for `n` bytes (at most BUFFER) in the buffer. */
  #room(n: number): void {
    if (this.#used + n > this.#buf.length) this.flush();
  }

  /** Write an entry too big for the buffer on its own. */
  #appendLarge(kind: number, bytes: Uint8Array, request: number | null, response: number | null): number {
    this.#room(HEADER);
    this.#header(kind, bytes.length, request, response);
    this.flush();
    const at = this.#flushed;
    this.#writeAll(bytes);
    this.#flushed += bytes.length;
    return at;
  }

  #header(kind: number, length: number, request: number | null, response: number | null): void {
    const v = this.#view;
    const at = this.#used;
    v.setFloat64(at, length, true);
    v.setFloat64(at + 8, kind, true);
    v.setFloat64(at + 16, request ?? -1, true);
    v.setFloat64(at + 24, response ?? -1, true);
    this.#used += HEADER;
  }

  /** Append a body; returns its offset. */
  appendBody(bytes: Uint8Array): number {
    if (HEADER + bytes.length > BUFFER) return this.#appendLarge(BODY, bytes, null, null);
    this.#room(HEADER + bytes.length);
    this.#header(BODY, bytes.length, null, null);
    const at = this.size;
    this.#buf.set(bytes, this.#used);
    this.#used += bytes.length;
    return at;
  }

  /** Append a record (JSON text) and its bodies' offsets; returns its offset and byte length. */
  appendRecord(json: string, request: number | null, response: number | null): [number, number] {
    // UTF-8 of a JS string is at most 3 bytes per UTF-16 unit
    if (HEADER + json.length * 3 > BUFFER) {
      const bytes = this.#encoder.encode(json);
      return [this.#appendLarge(RECORD, bytes, request, response), bytes.length];
    }
    this.#room(HEADER + json.length * 3);
    const headAt = this.#used;
    const at = this.size + HEADER;
    const { written } = this.#encoder.encodeInto(json, this.#buf.subarray(headAt + HEADER));
    this.#header(RECORD, written, request, response);
    this.#used += written;
    return [at, written];
  }

  /** Write what was appended (one write); after it, a killed process keeps it. */
  flush(): void {
    if (this.#used === 0) return;
    const n = this.#used;
    this.#used = 0;
    this.#writeAll(this.#buf.subarray(0, n));
    this.#flushed += n;
  }

  #writeAll(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) off += this.#w.writeSync(bytes.subarray(off));
  }

  #pread(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.#r.seekSync(offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < length) {
      const n = this.#r.readSync(out.subarray(got));
      if (n === null) throw new Error(`${this.path}: ${length} bytes at ${offset} are past its end`);
      got += n;
    }
    return out;
  }

  /** `length` bytes at `offset`, valid until the next read (a view of the read-ahead window or the buffer). */
  #bytes(offset: number, length: number): Uint8Array {
    if (offset + length > this.size) {
      throw new Error(`${this.path}: ${length} bytes at ${offset} are past its end`);
    }
    // an entry is wholly in the file or wholly in the buffer (a flush writes all of it)
    if (offset >= this.#flushed) {
      const at = offset - this.#flushed;
      return this.#buf.subarray(at, at + length);
    }
    const w = this.#windowAt;
    if (w >= 0 && offset >= w && offset + length <= w + this.#window.length) {
      return this.#window.subarray(offset - w, offset - w + length);
    }
    if (length >= WINDOW) return this.#pread(offset, length);
    this.#window = this.#pread(offset, Math.min(WINDOW, this.#flushed - offset));
    this.#windowAt = offset;
    return this.#window.subarray(0, length);
  }

  /** A record's JSON text. */
  readText(offset: number, length: number): string {
    return this.#decoder.decode(this.#bytes(offset, length));
  }

  /** A body's bytes (a copy of its own). */
  read(offset: number, length: number): Uint8Array {
    return this.#bytes(offset, length).slice();
  }

  /** A view of an entry's bytes, valid until the next read (for a filter that only looks). */
  peek(offset: number, length: number): Uint8Array {
    return this.#bytes(offset, length);
  }

  /**
   * The entries from `offset` (an entry's header) to the end. A last entry cut short is not yielded and
   * `torn` is set to where it starts (cut the file there with {@link truncate}).
   */
  *entries(offset: number, out: { torn: number | null }): Iterable<SegmentEntry> {
    this.flush();
    out.torn = null;
    let at = offset;
    while (at < this.#flushed) {
      if (at + HEADER > this.#flushed) {
        out.torn = at;
        return;
      }
      const h = new DataView(this.#pread(at, HEADER).buffer);
      const length = h.getFloat64(0, true);
      const kind = h.getFloat64(8, true);
      const end = at + HEADER + length;
      if (
        (kind !== BODY && kind !== RECORD) || !Number.isInteger(length) || length < 0 || end > this.#flushed
      ) {
        out.torn = at;
        return;
      }
      const q = h.getFloat64(16, true);
      const r = h.getFloat64(24, true);
      yield { kind, offset: at + HEADER, length, request: q < 0 ? null : q, response: r < 0 ? null : r };
      at = end;
    }
  }

  /** The payload length of the entry whose payload is at `offset`. */
  lengthAt(offset: number): number {
    const h = this.#bytes(offset - HEADER, HEADER);
    return new DataView(h.buffer, h.byteOffset, HEADER).getFloat64(0, true);
  }

  /** Cut the file to `size` bytes (at least its header), dropping what was not flushed. */
  truncate(size: number): void {
    this.#used = 0;
    this.#window = new Uint8Array(0);
    this.#windowAt = -1;
    const keep = Math.max(size, FILE_HEADER);
    this.#w.truncateSync(keep);
    this.#flushed = keep;
  }

  /** Flush and close. */
  close(): void {
    try {
      this.flush();
    } finally {
      this.#w.close();
      this.#r.close();
    }
  }
}
