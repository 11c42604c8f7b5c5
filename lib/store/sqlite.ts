/**
 * The flow store in an embedded SQLite database (`node:sqlite`, built into Deno; no server).
 *
 * - One row per flow: the list columns (method, host, URL, status, sizes, times, marker, ...) and where
 *   the flow's record (`record.ts`, JSON without bodies) and bodies are in the store's segment file
 *   (`segment.ts`, `<path>-seg`, append-only): each written once, read only when asked for. A flow updated
 *   later (a mark, a comment, its response) gets a new record and its row rewritten, never a body it
 *   already stored; the older versions stay in the file (a backup points at one), until `clear()`.
 * - Writes are batched: the first write opens a transaction that is committed right after the turn
 *   (`setImmediate`), or with `commitDelayMs` at most that long after the first write. Durability comes
 *   from the segment: {@link SqliteStore.sync} writes what was put (one write) and a killed process keeps
 *   it; when the store is opened again, records past the last commit are indexed again from the file (a
 *   torn last entry is cut off). So a commit is needed only for the list rows, in big batches.
 *   WAL journal, `synchronous=NORMAL`: a commit is one append to the WAL, no fsync (a checkpoint, every ~40 MiB
 *   of WAL, syncs; `durable: false`, for a store deleted at exit, never syncs).
 * - Filters: see `query.ts` (column conditions in SQL, the filter engine inside SQLite for the rest).
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import type { HTTPFlow } from "../flow/flow.ts";
import type { Filter } from "../flow/filter.ts";
import type { Message } from "../http/message.ts";
import { flowFromRecord, type FlowRecord, RecordEncoder } from "./record.ts";
import type { FlowStore, FlowSummary, Side, SortKey } from "./store.ts";
import { compileQuery, LIGHT_COLUMNS, lightFlow } from "./query.ts";
import { flowIdTime } from "../flow/id.ts";
import { FILE_HEADER, RECORD, Segment } from "./segment.ts";

/** Version of the database layout (a store of an older one is migrated when opened). */
export const SCHEMA_VERSION = "5";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS flows(
  seq INTEGER PRIMARY KEY,
  idh INTEGER NOT NULL,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  ts REAL NOT NULL,
  method TEXT NOT NULL,
  scheme TEXT NOT NULL,
  rhost TEXT NOT NULL,
  host TEXT NOT NULL,
  port INTEGER NOT NULL,
  path TEXT NOT NULL,
  url TEXT NOT NULL,
  http_version TEXT NOT NULL,
  status INTEGER,
  reason TEXT,
  req_len INTEGER,
  resp_len INTEGER,
  duration REAL,
  ctype TEXT,
  tls INTEGER NOT NULL,
  marked TEXT NOT NULL,
  comment TEXT NOT NULL,
  intercepted INTEGER NOT NULL,
  is_replay TEXT,
  error TEXT,
  ws INTEGER NOT NULL,
  live INTEGER NOT NULL,
  src TEXT,
  dst TEXT,
  req_body INTEGER,
  resp_body INTEGER,
  modified INTEGER NOT NULL DEFAULT 0,
  enc INTEGER NOT NULL DEFAULT 1,
  rec_off INTEGER NOT NULL DEFAULT 0,
  rec_len INTEGER NOT NULL DEFAULT 0,
  backup TEXT
);
CREATE INDEX IF NOT EXISTS flows_idh ON flows(idh);
`;

/** Tables of schemas 1-4 (records and bodies inside the database), which a migration reads. */
const LEGACY_TABLES = `
CREATE TABLE IF NOT EXISTS records(seq INTEGER PRIMARY KEY, rec TEXT NOT NULL, backup TEXT);
CREATE TABLE IF NOT EXISTS bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
`;

/** What a row says about where its record and bodies are (`req_body`/`resp_body`: 0 empty, null none). */
const REFS = "seq, rec_off, rec_len, req_body, req_len, resp_body, resp_len";

const SUMMARY_COLUMNS =
  "seq, id, type, method, scheme, host, port, path, url, http_version, status, reason, " +
  "req_len, resp_len, ts, duration, tls, marked, comment, intercepted, is_replay, error, ws, ctype, live, " +
  "modified";

const ORDER: Record<SortKey, string> = {
  time: "seq",
  method: "method",
  url: "url",
  host: "host",
  path: "path",
  status: "status",
  size: "coalesce(req_len, 0) + coalesce(resp_len, 0)",
  duration: "duration",
  type: "type",
  tls: "tls",
  marked: "marked",
  comment: "comment",
};

/**
 * The id index's key (ids are compared too): for a time-ordered id (UUIDv7, what the proxy makes, see
 * lib/flow/id.ts) its milliseconds and 4 random bits, so a recorded flow's index entry lands at the end of
 * the index (one page written per commit, not one per flow); for any other id its FNV-1a hash (32 bits,
 * never in the range of the first kind).
 */
export function idHash(id: string): number {
  const ms = flowIdTime(id);
  if (ms !== null) return ms * 16 + parseInt(id[15], 16);
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** What the store knows about a message's body: its offset in the segment and the bytes it holds. */
interface BodyRef {
  offset: number | null;
  /** The bytes written (identity compared), or LAZY when they were never read back. */
  bytes: Uint8Array | typeof LAZY;
}
const LAZY = Symbol("lazy");

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;

/** Options for {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** Commit by itself (default true; tests may commit by hand). */
  autoCommit?: boolean;
  /**
   * With autoCommit: commit at most this many ms after a transaction's first write (a timer) instead of
   * right after the turn (0, the default). The owner calls {@link SqliteStore.commit} when it needs a
   * write to be durable sooner.
   */
  commitDelayMs?: number;
  /** Called after each commit (also one by the timer). */
  onCommit?: () => void;
  /**
   * false for a store deleted at exit (`synchronous = OFF`): what is committed still survives the process
   * being killed (the OS has it), only not a crash of the OS, and a checkpoint does not wait for the disk
   * (its fsyncs stalled the proxy for 40-370 ms every ~7k flows on a busy disk). Default true.
   */
  durable?: boolean;
}

/** A row's backup column: where the flow's state before its first edit is in the segment. */
interface Backup {
  rec_off: number;
  rec_len: number;
  req_body: number | null;
  req_len: number | null;
  resp_body: number | null;
  resp_len: number | null;
}

/** {@link FlowStore} over one SQLite file and its segment file. */
export class SqliteStore implements FlowStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #seg: Segment;
  readonly #autoCommit: boolean;
  readonly #commitDelayMs: number;
  readonly #onCommit: (() => void) | null;
  #inTx = false;
  #commitScheduled = false;
  #commitTimer: ReturnType<typeof setTimeout> | null = null;
  /** Body rows of messages this store wrote or read. */
  #bodyRefs = new WeakMap<Message, BodyRef>();
  /** Filters registered for the SQL function, by slot. */
  #filters: (Filter | null)[] = [];
  /** Per filter slot: whether its engine reads bodies (see compileQuery). */
  #filterBodies: boolean[] = [];
  readonly #st: Record<string, StatementSync>;
  readonly #records = new RecordEncoder();

  private constructor(path: string, db: DatabaseSync, seg: Segment, options: SqliteStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#seg = seg;
    this.#autoCommit = options.autoCommit ?? true;
    this.#commitDelayMs = options.commitDelayMs ?? 0;
    this.#onCommit = options.onCommit ?? null;
    const p = (sql: string) => db.prepare(sql);
    this.#st = {
      seqOf: p("SELECT seq FROM flows WHERE idh = ? AND id = ?"),
      rowOf: p(`SELECT ${REFS}, backup FROM flows WHERE idh = ? AND id = ?`),
      recBySeq: p(`SELECT ${REFS} FROM flows WHERE seq = ?`),
      summaryOf: p(`SELECT ${SUMMARY_COLUMNS} FROM flows WHERE idh = ? AND id = ?`),
      insert: p(
        "INSERT INTO flows(idh, id, type, ts, method, scheme, rhost, host, port, path, url, http_version, " +
          "status, reason, req_len, resp_len, duration, ctype, tls, marked, comment, intercepted, is_replay, " +
          "error, ws, live, src, dst, req_body, resp_body, enc, rec_off, rec_len) " +
          "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      ),
      update: p(
        "UPDATE flows SET ts=?, method=?, scheme=?, rhost=?, host=?, port=?, path=?, url=?, http_version=?, " +
          "status=?, reason=?, req_len=?, resp_len=?, duration=?, ctype=?, tls=?, marked=?, comment=?, " +
          "intercepted=?, is_replay=?, error=?, ws=?, live=?, src=?, dst=?, req_body=?, resp_body=?, enc=?, " +
          "rec_off=?, rec_len=? WHERE seq=?",
      ),
      deleteFlow: p("DELETE FROM flows WHERE seq = ?"),
      count: p("SELECT count(*) AS n FROM flows"),
      setBackup: p("UPDATE flows SET backup = ?, modified = 1 WHERE seq = ? AND backup IS NULL"),
      dropBackup: p("UPDATE flows SET backup = NULL, modified = 0 WHERE seq = ?"),
      setEnd: p("INSERT OR REPLACE INTO meta(key, value) VALUES('seg_end', ?)"),
    };
    db.function("mitmdeno_match", { deterministic: false, varargs: true }, (slot, ...cols) => {
      const f = this.#filters[slot as number];
      if (!f) return 0;
      return f(lightFlow(...(cols as Parameters<typeof lightFlow>)) as HTTPFlow) ? 1 : 0;
    });
    db.function(
      "mitmdeno_match_record",
      { deterministic: false, varargs: true },
      (slot, recOff, recLen, reqBody, reqLen, respBody, respLen) => {
        const f = this.#filters[slot as number];
        if (!f) return 0;
        const row = {
          rec_off: recOff,
          rec_len: recLen,
          req_body: reqBody,
          req_len: reqLen,
          resp_body: respBody,
          resp_len: respLen,
        } as Row;
        // a filter that reads no body gets a flow without the lazy body machinery (a third of the cost)
        const flow = this.#filterBodies[slot as number]
          ? this.#flowOf(row)
          : flowFromRecord(this.#record(row), { request: null, response: null });
        return f(flow) ? 1 : 0;
      },
    );
    // for the SQL prefilters of query.ts: a row's record (its UTF-8 bytes: LIKE reads a blob as text, with
    // no decoding here), a stored body; SQLite copies a returned blob, so a view of the segment's buffer will do
    db.function(
      "mitmdeno_rec",
      { deterministic: true },
      (off, len) => seg.peek(off as number, len as number),
    );
    db.function("mitmdeno_body", { deterministic: true }, (off, len) => {
      if (off === null || len === null) return null;
      return off === 0 ? new Uint8Array(0) : seg.peek(off as number, len as number);
    });
  }

  /**
   * Open (or create) a store. An existing file is a saved session: its flows are kept, records written
   * after its last commit (a killed process) are indexed again, and flows that were live when it was last
   * written (a crash) are marked finished.
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
    } catch (e) {
      throw new Error(`cannot open flow store ${path}: ${(e as Error).message}`);
    }
    let seg: Segment | null = null;
    let store: SqliteStore;
    try {
      db.exec(
        `PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.durable === false ? "OFF" : "NORMAL"};` +
          " PRAGMA cache_size = -16384; PRAGMA foreign_keys = OFF;" +
          // a checkpoint (with its fsync) every ~40 MiB of WAL instead of every 4 MiB: writing 20k flows took
          // 0.85 s instead of 1.25-1.5 s; the WAL file is cut back to 64 MiB after a checkpoint
          " PRAGMA wal_autocheckpoint = 10000; PRAGMA journal_size_limit = 67108864;",
      );
      db.exec(SCHEMA);
      const v = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as Row | undefined;
      const rows = (db.prepare("SELECT count(*) AS n FROM flows").get() as Row).n as number;
      // a store with flows of this schema has its segment file; a new or older one gets one
      const fresh = !v || v.value !== SCHEMA_VERSION || rows === 0;
      try {
        seg = Segment.open(`${path}-seg`, fresh);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) throw new Error(`its segment file ${path}-seg is missing`);
        throw e;
      }
      if (!v) db.prepare("INSERT INTO meta(key, value) VALUES('schema', ?)").run(SCHEMA_VERSION);
      else if (["1", "2", "3", "4"].includes(v.value)) {
        db.exec(LEGACY_TABLES);
        if (v.value === "1") migrateV1(db);
        if (v.value === "1" || v.value === "2") migrateV2(db);
        if (v.value !== "4") migrateV3(db);
        migrateV4(db, seg);
      } else if (v.value !== SCHEMA_VERSION) {
        throw new Error(`schema version ${v.value}, this mitmdeno reads ${SCHEMA_VERSION}`);
      }
      store = new SqliteStore(path, db, seg, options);
      store.#recover();
      db.exec("UPDATE flows SET live = 0, intercepted = 0 WHERE live != 0 OR intercepted != 0");
    } catch (e) {
      seg?.close();
      db.close();
      throw new Error(`cannot open flow store ${path}: ${(e as Error).message}`);
    }
    return store;
  }

  /**
   * Bring the rows in line with the segment file: rows pointing past its end (a file cut short) go, the
   * records written after the last commit (the process was killed) are indexed again, a torn last entry
   * is cut off.
   */
  #recover(): void {
    const db = this.#db;
    const seg = this.#seg;
    const end = db.prepare("SELECT value FROM meta WHERE key = 'seg_end'").get() as Row | undefined;
    let from = end ? Number(end.value) : FILE_HEADER;
    const size = seg.size;
    db.exec("BEGIN");
    try {
      if (from > size) {
        db.prepare(
          "DELETE FROM flows WHERE rec_off + rec_len > ?1 OR coalesce(req_body + req_len, 0) > ?1 OR " +
            "coalesce(resp_body + resp_len, 0) > ?1",
        ).run(size);
        from = size;
      }
      const out = { torn: null as number | null };
      const len = (off: number | null) => off === null ? null : off === 0 ? 0 : seg.lengthAt(off);
      for (const e of seg.entries(from, out)) {
        if (e.kind !== RECORD) continue;
        let flow: HTTPFlow;
        try {
          flow = flowFromRecord(JSON.parse(seg.readText(e.offset, e.length)) as FlowRecord, {
            request: null,
            response: null,
          });
        } catch {
          continue; // not a record this version can read: skipped, as a flow file reader does
        }
        this.#index(flow, e.request, e.response, len(e.request), len(e.response), e.offset, e.length);
      }
      if (out.torn !== null) seg.truncate(out.torn);
      this.#st.setEnd.run(String(seg.size));
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
  }

  #begin(): void {
    if (this.#inTx) return;
    this.#db.exec("BEGIN");
    this.#inTx = true;
    if (!this.#autoCommit) return;
    if (this.#commitDelayMs > 0) {
      this.#commitTimer = setTimeout(() => {
        this.#commitTimer = null;
        this.commit();
      }, this.#commitDelayMs);
    } else if (!this.#commitScheduled) {
      this.#commitScheduled = true;
      setImmediate(() => {
        this.#commitScheduled = false;
        this.commit();
      });
    }
  }

  /** Whether writes are waiting for a commit. */
  get pending(): boolean {
    return this.#inTx;
  }

  commit(): void {
    if (this.#commitTimer !== null) {
      clearTimeout(this.#commitTimer);
      this.#commitTimer = null;
    }
    if (!this.#inTx) return;
    this.#inTx = false;
    this.#seg.flush();
    this.#st.setEnd.run(String(this.#seg.size));
    this.#db.exec("COMMIT");
    this.#onCommit?.();
  }

  /**
   * Make every flow put so far survive a kill of the process (not of the OS) without a commit: one write
   * of the segment's buffer. Reopening the store indexes it again.
   */
  sync(): void {
    this.#seg.flush();
  }

  /** The segment offset of a message's body (0: empty, null: none); reuses the stored one when unchanged. */
  #bodyId(m: Message | null): number | null {
    if (!m) return null;
    const ref = this.#bodyRefs.get(m);
    if (ref) {
      const desc = Object.getOwnPropertyDescriptor(m, "rawContent");
      // a lazily read body that was never touched is still what is stored
      if (ref.bytes === LAZY && desc?.get && !lazyTouched(m)) return ref.offset;
      if (ref.bytes !== LAZY && ref.bytes === m.rawContent) return ref.offset;
    }
    const raw = m.rawContent;
    if (raw === null) {
      this.#bodyRefs.delete(m);
      return null;
    }
    const offset = raw.length === 0 ? 0 : this.#seg.appendBody(raw);
    this.#bodyRefs.set(m, { offset, bytes: raw });
    return offset;
  }

  put(flow: HTTPFlow): number {
    this.#begin();
    const q = flow.request;
    const r = flow.response;
    const reqBody = this.#bodyId(q);
    const respBody = this.#bodyId(r);
    const [recOff, recLen] = this.#seg.appendRecord(this.#records.json(flow), reqBody, respBody);
    const qraw = q.rawContent;
    const rraw = r ? r.rawContent : null;
    return this.#index(
      flow,
      reqBody,
      respBody,
      qraw === null ? null : qraw.length,
      rraw === null ? null : rraw.length,
      recOff,
      recLen,
    );
  }

  /** Insert or update a flow's row (its record and bodies are in the segment at the given offsets). */
  #index(
    flow: HTTPFlow,
    reqBody: number | null,
    respBody: number | null,
    reqLen: number | null,
    respLen: number | null,
    recOff: number,
    recLen: number,
  ): number {
    const q = flow.request;
    const r = flow.response;
    const peer = flow.clientConn.peername;
    const addr = flow.serverConn.address;
    const end = r?.timestampEnd ?? null;
    const vals = [
      flow.timestampCreated,
      q.method,
      q.scheme,
      q.host,
      q.prettyHost,
      q.port,
      q.path,
      q.prettyUrl,
      q.httpVersion,
      r ? r.statusCode : null,
      r ? r.reason : null,
      reqLen,
      respLen,
      end === null ? null : end - q.timestampStart,
      r ? r.headers.get("content-type") ?? null : null,
      flow.clientConn.tls || q.scheme === "https" ? 1 : 0,
      flow.marked,
      flow.comment,
      flow.intercepted ? 1 : 0,
      flow.isReplay,
      flow.error ? flow.error.msg : null,
      flow.websocket ? 1 : 0,
      flow.live ? 1 : 0,
      peer ? `${peer[0]}:${peer[1]}` : null,
      addr ? `${addr[0]}:${addr[1]}` : null,
      reqBody,
      respBody,
      // a body stored encoded (gzip, br, ...): its bytes say nothing to a body filter's prefilter
      q.headers.has("content-encoding") || r?.headers.has("content-encoding") ? 1 : 0,
      recOff,
      recLen,
    ] as const;
    const h = idHash(flow.id);
    const old = this.#st.seqOf.get(h, flow.id) as Row | undefined;
    if (!old) return Number(this.#st.insert.run(h, flow.id, flow.type, ...vals).lastInsertRowid);
    this.#st.update.run(...vals, old.seq);
    return old.seq;
  }

  #record(row: Row): FlowRecord {
    return JSON.parse(this.#seg.readText(row.rec_off, row.rec_len)) as FlowRecord;
  }

  #flowOf(row: Row): HTTPFlow {
    const flow = flowFromRecord(this.#record(row), {
      request: () => this.#readBody(row.req_body, row.req_len),
      response: () => this.#readBody(row.resp_body, row.resp_len),
    });
    this.#bodyRefs.set(flow.request, { offset: row.req_body, bytes: LAZY });
    if (flow.response) this.#bodyRefs.set(flow.response, { offset: row.resp_body, bytes: LAZY });
    markLazy(flow.request);
    if (flow.response) markLazy(flow.response);
    return flow;
  }

  #readBody(off: number | null, len: number | null): Uint8Array | null {
    if (off === null || len === null) return null;
    if (off === 0) return new Uint8Array(0);
    return this.#seg.read(off, len);
  }

  get(id: string): HTTPFlow | null {
    const row = this.#st.rowOf.get(idHash(id), id) as Row | undefined;
    return row ? this.#flowOf(row) : null;
  }

  summary(id: string): FlowSummary | null {
    const row = this.#st.summaryOf.get(idHash(id), id) as Row | undefined;
    return row ? toSummary(row) : null;
  }

  summaries(seqs: ArrayLike<number>): FlowSummary[] {
    if (seqs.length === 0) return [];
    const list = Array.from(seqs, (s) => Math.trunc(s));
    const rows = this.#db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM flows WHERE seq IN (${list.join(",")})`)
      .all() as Row[];
    const bySeq = new Map<number, Row>();
    for (const r of rows) bySeq.set(r.seq, r);
    const out: FlowSummary[] = [];
    for (const s of list) {
      const r = bySeq.get(s);
      if (r) out.push(toSummary(r));
    }
    return out;
  }

  body(id: string, side: Side): Uint8Array | null {
    const row = this.#st.rowOf.get(idHash(id), id) as Row | undefined;
    if (!row) return null;
    return side === "request"
      ? this.#readBody(row.req_body, row.req_len)
      : this.#readBody(row.resp_body, row.resp_len);
  }

  backup(id: string): HTTPFlow | null {
    const row = this.#st.rowOf.get(idHash(id), id) as Row | undefined;
    if (!row?.backup) return null;
    return this.#flowOf(JSON.parse(row.backup) as Backup as Row);
  }

  setBackup(flow: HTTPFlow): void {
    const row = this.#st.rowOf.get(idHash(flow.id), flow.id) as Row | undefined;
    if (!row || row.backup) return;
    this.#begin();
    const b: Backup = {
      rec_off: row.rec_off,
      rec_len: row.rec_len,
      req_body: row.req_body,
      req_len: row.req_len,
      resp_body: row.resp_body,
      resp_len: row.resp_len,
    };
    this.#st.setBackup.run(JSON.stringify(b), row.seq);
  }

  dropBackup(id: string): void {
    const row = this.#st.rowOf.get(idHash(id), id) as Row | undefined;
    if (!row?.backup) return;
    this.#begin();
    this.#st.dropBackup.run(row.seq);
  }

  #withFilter<T>(filter: Filter | null, fn: (where: string, slot: number) => T): T {
    const q = compileQuery(filter);
    const slot = this.#filters.length;
    this.#filters.push(filter);
    this.#filterBodies.push(q.needsBodies);
    try {
      const where = [...q.where];
      if (q.needsEngine) {
        const engine = q.needsRecord
          ? `mitmdeno_match_record(${slot}, rec_off, rec_len, req_body, req_len, resp_body, resp_len)`
          : `mitmdeno_match(${slot}, ${LIGHT_COLUMNS})`;
        // CASE: the engine runs only on rows the SQL conditions let through (SQLite may evaluate the terms
        // of an AND in any order, and a record parse costs far more than any of them)
        const pass = where.length ? `CASE WHEN ${where.join(" AND ")} THEN ${engine} ELSE 0 END` : engine;
        return fn(`WHERE ${pass}`, slot);
      }
      return fn(where.length ? `WHERE ${where.join(" AND ")}` : "", slot);
    } finally {
      this.#filters.pop();
      this.#filterBodies.pop();
    }
  }

  select(filter: Filter | null, order: SortKey = "time", reverse = false): number[] {
    const dir = reverse ? "DESC" : "ASC";
    const by = order === "time" ? `seq ${dir}` : `${ORDER[order]} ${dir}, seq ${dir}`;
    return this.#withFilter(filter, (where) => {
      // iterate, not all(): all() of 1M rows left ~300 MiB of native memory behind (RSS 435 vs 140 MiB)
      const st = this.#db.prepare(`SELECT seq FROM flows ${where} ORDER BY ${by}`);
      const out: number[] = [];
      for (const r of st.iterate() as Iterable<Row>) out.push(r.seq);
      return out;
    });
  }

  *flows(which: { seqs?: ArrayLike<number>; filter?: Filter | null }): Iterable<HTTPFlow> {
    if (which.seqs) {
      for (let i = 0; i < which.seqs.length; i++) {
        const row = this.#st.recBySeq.get(which.seqs[i]) as Row | undefined;
        if (row) yield this.#flowOf(row);
      }
      return;
    }
    const seqs = this.select(which.filter ?? null);
    yield* this.flows({ seqs });
  }

  seqOf(id: string): number | null {
    const row = this.#st.seqOf.get(idHash(id), id) as Row | undefined;
    return row ? row.seq : null;
  }

  remove(ids: string[]): number {
    let n = 0;
    for (const id of ids) {
      const row = this.#st.seqOf.get(idHash(id), id) as Row | undefined;
      if (!row) continue;
      this.#begin();
      this.#st.deleteFlow.run(row.seq);
      n++;
    }
    return n;
  }

  clear(): void {
    this.commit();
    // the file first: killed in between, the rows left point past its end and go when it is reopened
    this.#seg.truncate(FILE_HEADER);
    this.#db.exec("BEGIN; DELETE FROM flows;");
    this.#st.setEnd.run(String(this.#seg.size));
    this.#db.exec("COMMIT");
    this.#bodyRefs = new WeakMap();
  }

  count(): number {
    return (this.#st.count.get() as Row).n;
  }

  close(): void {
    this.commit();
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch { /* best effort */ }
    this.#seg.close();
    this.#db.close();
  }
}

/**
 * Schema 1 kept each flow's record in its row of `flows`: every filter and list query then read ~1.5 KB
 * per flow. Schema 2 keeps records (and backups) in `records`, `flows` only what lists and filters need.
 */
function migrateV1(db: DatabaseSync): void {
  db.exec(`BEGIN;
    INSERT INTO records(seq, rec, backup) SELECT seq, rec, backup FROM flows;
    ALTER TABLE flows ADD COLUMN modified INTEGER NOT NULL DEFAULT 0;
    UPDATE flows SET modified = backup IS NOT NULL;
    ALTER TABLE flows DROP COLUMN rec;
    ALTER TABLE flows DROP COLUMN backup;
    UPDATE meta SET value = '2' WHERE key = 'schema';
    COMMIT;`);
}

/**
 * Schema 3 adds `enc`: whether a body of the flow may be stored encoded (a Content-Encoding field), so a
 * body filter's SQL prefilter need not read every flow's record to know (~bs over 100k flows: 400 -> 150 ms).
 */
function migrateV2(db: DatabaseSync): void {
  db.exec(`BEGIN;
    ALTER TABLE flows ADD COLUMN enc INTEGER NOT NULL DEFAULT 1;
    UPDATE flows SET enc = (SELECT rec LIKE '%content-encoding%' FROM records WHERE records.seq = flows.seq);
    UPDATE meta SET value = '3' WHERE key = 'schema';
    COMMIT;`);
}

/**
 * Schema 4 keys time-ordered ids (UUIDv7) in the id index by their time instead of a hash (see idHash):
 * rows of such ids written before (loaded from a file) get their new key.
 */
function migrateV3(db: DatabaseSync): void {
  db.function("mitmdeno_idh", { deterministic: true }, (id) => idHash(String(id)));
  db.exec(`BEGIN;
    UPDATE flows SET idh = mitmdeno_idh(id) WHERE substr(id, 15, 1) = '7';
    UPDATE meta SET value = '4' WHERE key = 'schema';
    COMMIT;`);
}

/**
 * Schema 5 moves records and bodies out of the database into the segment file (see the module doc):
 * every record, backup and body of a schema 4 store is appended once, the rows point at them.
 */
function migrateV4(db: DatabaseSync, seg: Segment): void {
  db.exec(`BEGIN;
    ALTER TABLE flows ADD COLUMN rec_off INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE flows ADD COLUMN rec_len INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE flows ADD COLUMN backup TEXT;`);
  const bodyRow = db.prepare("SELECT data FROM bodies WHERE id = ?");
  const moved = new Map<number, [number, number]>();
  const body = (id: number | null): [number | null, number | null] => {
    if (id === null) return [null, null];
    if (id === 0) return [0, 0];
    let m = moved.get(id);
    if (!m) {
      const r = bodyRow.get(id) as Row | undefined;
      if (!r) return [null, null];
      const data = r.data as Uint8Array;
      m = [data.length === 0 ? 0 : seg.appendBody(data), data.length];
      moved.set(id, m);
    }
    return m;
  };
  const batch = db.prepare(
    "SELECT f.seq, f.req_body, f.resp_body, r.rec, r.backup FROM flows f JOIN records r ON r.seq = f.seq " +
      "WHERE f.seq > ? ORDER BY f.seq LIMIT 1000",
  );
  const update = db.prepare(
    "UPDATE flows SET rec_off = ?, rec_len = ?, req_body = ?, resp_body = ?, backup = ? WHERE seq = ?",
  );
  let last = -1;
  for (;;) {
    const rows = batch.all(last) as Row[];
    if (rows.length === 0) break;
    for (const row of rows) {
      const [q] = body(row.req_body);
      const [s] = body(row.resp_body);
      const [off, len] = seg.appendRecord(row.rec, q, s);
      let backup: string | null = null;
      if (row.backup) {
        const b = JSON.parse(row.backup) as {
          rec: FlowRecord;
          req_body: number | null;
          resp_body: number | null;
        };
        const [bq, bql] = body(b.req_body);
        const [bs, bsl] = body(b.resp_body);
        const [boff, blen] = seg.appendRecord(JSON.stringify(b.rec), bq, bs);
        const ref: Backup = {
          rec_off: boff,
          rec_len: blen,
          req_body: bq,
          req_len: bql,
          resp_body: bs,
          resp_len: bsl,
        };
        backup = JSON.stringify(ref);
      }
      update.run(off, len, q, s, backup, row.seq);
      last = row.seq;
    }
  }
  seg.flush();
  db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('seg_end', ?)").run(String(seg.size));
  db.exec(`DROP TABLE records; DROP TABLE bodies;
    UPDATE meta SET value = '5' WHERE key = 'schema';
    COMMIT;`);
}

const touched = new WeakSet<Message>();

/** Wrap a lazily read body so the store can tell whether anyone read or replaced it since. */
function markLazy(m: Message): void {
  const desc = Object.getOwnPropertyDescriptor(m, "rawContent");
  if (!desc?.get || !desc.set) return;
  const get = desc.get;
  const set = desc.set;
  Object.defineProperty(m, "rawContent", {
    configurable: true,
    enumerable: true,
    get: () => get(),
    set: (v) => {
      touched.add(m);
      set(v);
    },
  });
}

function lazyTouched(m: Message): boolean {
  return touched.has(m);
}

function toSummary(r: Row): FlowSummary {
  return {
    seq: r.seq,
    id: r.id,
    type: r.type,
    method: r.method,
    scheme: r.scheme,
    host: r.host,
    port: r.port,
    path: r.path,
    url: r.url,
    httpVersion: r.http_version,
    status: r.status,
    reason: r.reason,
    reqLen: r.req_len,
    respLen: r.resp_len,
    timestamp: r.ts,
    duration: r.duration,
    tls: r.tls === 1,
    marked: r.marked,
    comment: r.comment,
    intercepted: r.intercepted === 1,
    isReplay: r.is_replay,
    error: r.error,
    websocket: r.ws === 1,
    contentType: r.ctype,
    live: r.live === 1,
    modified: r.modified === 1,
  };
}
