/**
 * The flow store in an embedded SQLite database (`node:sqlite`, built into Deno; no server).
 *
 * - One row per flow: the list columns (method, host, URL, status, sizes, times, marker, ...) plus the
 *   flow's record (`record.ts`, JSON without bodies); bodies in their own table, each written once and
 *   read only when asked for. A flow updated later (a mark, a comment, its response) rewrites its row,
 *   never a body it already stored.
 * - Writes are batched: the first write opens a transaction that is committed right after the turn
 *   (`setImmediate`), so a killed process loses at most the flows written in its last turn; or, with
 *   `commitDelayMs`, at most that long after the first write (the owner commits sooner when it must, see
 *   addons/web.ts: a commit costs ~25-30 µs whatever it holds, so one per flow was a third of the time).
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

/** Version of the database layout (a store of an older one is migrated when opened). */
export const SCHEMA_VERSION = "4";

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
  enc INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS flows_idh ON flows(idh);
CREATE TABLE IF NOT EXISTS records(seq INTEGER PRIMARY KEY, rec TEXT NOT NULL, backup TEXT);
CREATE TABLE IF NOT EXISTS bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
`;

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

/** What the store knows about a message's body: its row in `bodies` and the bytes it holds. */
interface BodyRef {
  id: number | null;
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

/** {@link FlowStore} over one SQLite file (or ":memory:"). */
export class SqliteStore implements FlowStore {
  readonly path: string;
  readonly #db: DatabaseSync;
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

  private constructor(path: string, db: DatabaseSync, options: SqliteStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#autoCommit = options.autoCommit ?? true;
    this.#commitDelayMs = options.commitDelayMs ?? 0;
    this.#onCommit = options.onCommit ?? null;
    const p = (sql: string) => db.prepare(sql);
    this.#st = {
      seqOf: p("SELECT seq FROM flows WHERE idh = ? AND id = ?"),
      bodiesOf: p(
        "SELECT f.seq, f.req_body, f.resp_body, r.backup FROM flows f JOIN records r ON r.seq = f.seq " +
          "WHERE f.idh = ? AND f.id = ?",
      ),
      rowOf: p(
        "SELECT f.seq, r.rec, f.req_body, f.resp_body, r.backup FROM flows f JOIN records r ON r.seq = f.seq " +
          "WHERE f.idh = ? AND f.id = ?",
      ),
      recBySeq: p(
        "SELECT f.seq, r.rec, f.req_body, f.resp_body FROM flows f JOIN records r ON r.seq = f.seq WHERE f.seq = ?",
      ),
      summaryOf: p(`SELECT ${SUMMARY_COLUMNS} FROM flows WHERE idh = ? AND id = ?`),
      insert: p(
        "INSERT INTO flows(idh, id, type, ts, method, scheme, rhost, host, port, path, url, http_version, " +
          "status, reason, req_len, resp_len, duration, ctype, tls, marked, comment, intercepted, is_replay, " +
          "error, ws, live, src, dst, req_body, resp_body, enc) " +
          "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      ),
      insertRec: p("INSERT INTO records(seq, rec) VALUES(?, ?)"),
      updateRec: p("UPDATE records SET rec = ? WHERE seq = ?"),
      deleteRec: p("DELETE FROM records WHERE seq = ?"),
      update: p(
        "UPDATE flows SET ts=?, method=?, scheme=?, rhost=?, host=?, port=?, path=?, url=?, http_version=?, " +
          "status=?, reason=?, req_len=?, resp_len=?, duration=?, ctype=?, tls=?, marked=?, comment=?, " +
          "intercepted=?, is_replay=?, error=?, ws=?, live=?, src=?, dst=?, req_body=?, resp_body=?, enc=? " +
          "WHERE seq=?",
      ),
      insertBody: p("INSERT INTO bodies(data) VALUES(?)"),
      body: p("SELECT data FROM bodies WHERE id = ?"),
      deleteBody: p("DELETE FROM bodies WHERE id = ?"),
      deleteFlow: p("DELETE FROM flows WHERE seq = ?"),
      count: p("SELECT count(*) AS n FROM flows"),
      setBackup: p("UPDATE records SET backup = ? WHERE seq = ? AND backup IS NULL"),
      dropBackup: p("UPDATE records SET backup = NULL WHERE seq = ?"),
      setModified: p("UPDATE flows SET modified = ? WHERE seq = ?"),
    };
    db.function("mitmdeno_match", { deterministic: false, varargs: true }, (slot, ...cols) => {
      const f = this.#filters[slot as number];
      if (!f) return 0;
      return f(lightFlow(...(cols as Parameters<typeof lightFlow>)) as HTTPFlow) ? 1 : 0;
    });
    db.function("mitmdeno_match_record", { deterministic: false }, (slot, rec, reqBody, respBody) => {
      const f = this.#filters[slot as number];
      if (!f || typeof rec !== "string") return 0;
      const row = { rec, req_body: reqBody, resp_body: respBody } as Row;
      // a filter that reads no body gets a flow without the lazy body machinery (a third of the cost)
      const flow = this.#filterBodies[slot as number]
        ? this.#flowOf(row)
        : flowFromRecord(JSON.parse(rec) as FlowRecord, { request: null, response: null });
      return f(flow) ? 1 : 0;
    });
  }

  /**
   * Open (or create) a store. An existing file is a saved session: its flows are kept, and flows that
   * were live when it was last written (a crash) are marked finished.
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
    } catch (e) {
      throw new Error(`cannot open flow store ${path}: ${(e as Error).message}`);
    }
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
      if (!v) db.prepare("INSERT INTO meta(key, value) VALUES('schema', ?)").run(SCHEMA_VERSION);
      else if (v.value === "1" || v.value === "2" || v.value === "3") {
        if (v.value === "1") migrateV1(db);
        if (v.value !== "3") migrateV2(db);
        migrateV3(db);
      } else if (v.value !== SCHEMA_VERSION) {
        throw new Error(`schema version ${v.value}, this mitmdeno reads ${SCHEMA_VERSION}`);
      }
      db.exec("UPDATE flows SET live = 0, intercepted = 0 WHERE live != 0 OR intercepted != 0");
    } catch (e) {
      db.close();
      throw new Error(`cannot open flow store ${path}: ${(e as Error).message}`);
    }
    return new SqliteStore(path, db, options);
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
    this.#db.exec("COMMIT");
    this.#onCommit?.();
  }

  /** The body row for a message: reuse the stored one when the bytes are the same object. */
  #bodyId(m: Message | null): number | null {
    if (!m) return null;
    const ref = this.#bodyRefs.get(m);
    if (ref) {
      const desc = Object.getOwnPropertyDescriptor(m, "rawContent");
      // a lazily read body that was never touched is still what is stored
      if (ref.bytes === LAZY && desc?.get && !lazyTouched(m)) return ref.id;
      if (ref.bytes !== LAZY && ref.bytes === m.rawContent) return ref.id;
    }
    const raw = m.rawContent;
    if (raw === null) {
      this.#bodyRefs.delete(m);
      return null;
    }
    const id = raw.length === 0 ? 0 : Number(this.#st.insertBody.run(raw).lastInsertRowid);
    this.#bodyRefs.set(m, { id, bytes: raw });
    return id;
  }

  put(flow: HTTPFlow): number {
    this.#begin();
    const q = flow.request;
    const r = flow.response;
    const reqBody = this.#bodyId(q);
    const respBody = this.#bodyId(r);
    const rec = this.#records.json(flow);
    const qraw = q.rawContent;
    const rraw = r ? r.rawContent : null;
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
      qraw === null ? null : qraw.length,
      rraw === null ? null : rraw.length,
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
    ] as const;
    const h = idHash(flow.id);
    const old = this.#st.bodiesOf.get(h, flow.id) as Row | undefined;
    if (!old) {
      const seq = Number(this.#st.insert.run(h, flow.id, flow.type, ...vals).lastInsertRowid);
      this.#st.insertRec.run(seq, rec);
      return seq;
    }
    this.#st.update.run(...vals, old.seq);
    this.#st.updateRec.run(rec, old.seq);
    // a replaced body goes, unless the backup still refers to it
    for (const [was, now] of [[old.req_body, reqBody], [old.resp_body, respBody]]) {
      if (was && was !== now && !backupBodies(old.backup).includes(was)) this.#st.deleteBody.run(was);
    }
    return old.seq;
  }

  #flowOf(row: Row): HTTPFlow {
    const rec = JSON.parse(row.rec) as FlowRecord;
    const flow = flowFromRecord(rec, {
      request: () => this.#readBody(row.req_body),
      response: () => this.#readBody(row.resp_body),
    });
    this.#bodyRefs.set(flow.request, { id: row.req_body, bytes: LAZY });
    if (flow.response) this.#bodyRefs.set(flow.response, { id: row.resp_body, bytes: LAZY });
    markLazy(flow.request);
    if (flow.response) markLazy(flow.response);
    return flow;
  }

  #readBody(id: number | null): Uint8Array | null {
    if (id === null) return null;
    if (id === 0) return new Uint8Array(0);
    const row = this.#st.body.get(id) as Row | undefined;
    return row ? row.data as Uint8Array : null;
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
    return this.#readBody(side === "request" ? row.req_body : row.resp_body);
  }

  backup(id: string): HTTPFlow | null {
    const row = this.#st.rowOf.get(idHash(id), id) as Row | undefined;
    if (!row?.backup) return null;
    const b = JSON.parse(row.backup) as {
      rec: FlowRecord;
      req_body: number | null;
      resp_body: number | null;
    };
    return this.#flowOf({ rec: JSON.stringify(b.rec), req_body: b.req_body, resp_body: b.resp_body });
  }

  setBackup(flow: HTTPFlow): void {
    const row = this.#st.rowOf.get(idHash(flow.id), flow.id) as Row | undefined;
    if (!row || row.backup) return;
    this.#begin();
    this.#st.setBackup.run(
      JSON.stringify({ rec: JSON.parse(row.rec), req_body: row.req_body, resp_body: row.resp_body }),
      row.seq,
    );
    this.#st.setModified.run(1, row.seq);
  }

  dropBackup(id: string): void {
    const row = this.#st.bodiesOf.get(idHash(id), id) as Row | undefined;
    if (!row?.backup) return;
    this.#begin();
    for (const b of backupBodies(row.backup)) {
      if (b && b !== row.req_body && b !== row.resp_body) this.#st.deleteBody.run(b);
    }
    this.#st.dropBackup.run(row.seq);
    this.#st.setModified.run(0, row.seq);
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
          ? `mitmdeno_match_record(${slot}, (SELECT rec FROM records WHERE records.seq = flows.seq), req_body, resp_body)`
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
      const row = this.#st.rowOf.get(idHash(id), id) as Row | undefined;
      if (!row) continue;
      this.#begin();
      for (const b of new Set([row.req_body, row.resp_body, ...backupBodies(row.backup)])) {
        if (b) this.#st.deleteBody.run(b);
      }
      this.#st.deleteFlow.run(row.seq);
      this.#st.deleteRec.run(row.seq);
      n++;
    }
    return n;
  }

  clear(): void {
    this.commit();
    this.#db.exec("BEGIN; DELETE FROM flows; DELETE FROM records; DELETE FROM bodies; COMMIT;");
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

/** The body rows a backup refers to. */
function backupBodies(backup: string | null): number[] {
  if (!backup) return [];
  const b = JSON.parse(backup);
  return [b.req_body, b.resp_body].filter((x) => typeof x === "number" && x > 0);
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
