/** Test helper: turn a store written by this version into the schema 4 layout (records and bodies in tables). */
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "../../../lib/store/sqlite.ts";
import { flowRecord } from "../../../lib/store/record.ts";

/** Rewrite the store at `path` as schema 4 wrote it (and delete its segment file). */
export function toSchema4(path: string): void {
  const store = SqliteStore.open(path, { autoCommit: false });
  const rows: {
    seq: number;
    rec: string;
    backup: string | null;
    q: Uint8Array | null;
    s: Uint8Array | null;
  }[] = [];
  const bodyOf = (f: { rawContent: Uint8Array | null } | null) => f ? f.rawContent : null;
  const ids = store.select(null).map((seq) => [seq, store.summaries([seq])[0].id] as const);
  const backups: { b: Uint8Array | null; c: Uint8Array | null }[] = [];
  for (const [seq, id] of ids) {
    const f = store.get(id)!;
    const b = store.backup(id);
    let backup: string | null = null;
    if (b) {
      backups.push({ b: bodyOf(b.request), c: bodyOf(b.response) });
      backup = JSON.stringify({ rec: flowRecord(b), req_body: -backups.length, resp_body: -backups.length });
    }
    rows.push({
      seq,
      rec: JSON.stringify(flowRecord(f)),
      backup,
      q: bodyOf(f.request),
      s: bodyOf(f.response),
    });
  }
  store.close();
  const db = new DatabaseSync(path);
  db.exec(`BEGIN;
    CREATE TABLE records(seq INTEGER PRIMARY KEY, rec TEXT NOT NULL, backup TEXT);
    CREATE TABLE bodies(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
    ALTER TABLE flows DROP COLUMN rec_off;
    ALTER TABLE flows DROP COLUMN rec_len;
    ALTER TABLE flows DROP COLUMN backup;
    DELETE FROM meta WHERE key = 'seg_end';
    UPDATE meta SET value = '4' WHERE key = 'schema';`);
  const ins = db.prepare("INSERT INTO bodies(data) VALUES(?)");
  const id = (b: Uint8Array | null) =>
    b === null ? null : b.length === 0 ? 0 : Number(ins.run(b).lastInsertRowid);
  const setBodies = db.prepare("UPDATE flows SET req_body = ?, resp_body = ? WHERE seq = ?");
  const rec = db.prepare("INSERT INTO records(seq, rec, backup) VALUES(?, ?, ?)");
  for (const r of rows) {
    setBodies.run(id(r.q), id(r.s), r.seq);
    let backup = r.backup;
    if (backup) {
      const b = JSON.parse(backup);
      const kept = backups[-b.req_body - 1];
      backup = JSON.stringify({ rec: b.rec, req_body: id(kept.b), resp_body: id(kept.c) });
    }
    rec.run(r.seq, r.rec, backup);
  }
  db.exec("COMMIT");
  db.close();
  Deno.removeSync(`${path}-seg`);
}
