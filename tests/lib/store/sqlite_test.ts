/** The SQLite flow store: round trips, bodies written once and read lazily, edits, filters, reopening. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { idHash, SCHEMA_VERSION, SqliteStore } from "../../../lib/store/sqlite.ts";
import { flowId } from "../../../lib/flow/id.ts";
import { requiredLiterals } from "../../../lib/store/query.ts";
import { parseFilter } from "../../../lib/flow/filter.ts";
import { flowToState } from "../../../lib/io/state.ts";
import { Response } from "../../../lib/http/message.ts";
import { tflow } from "../io/_tflow.ts";
import { treq } from "../../../testing.ts";
import { toSchema4 } from "./_schema4.ts";

const enc = new TextEncoder();

function tmpStore(): { store: SqliteStore; path: string; dir: string } {
  const dir = Deno.makeTempDirSync({ prefix: "mitmdeno-store-" });
  const path = `${dir}/flows.sqlite`;
  return { store: SqliteStore.open(path, { autoCommit: false }), path, dir };
}

Deno.test("store: a flow comes back with every field, as its flow file state shows", () => {
  const { store, dir } = tmpStore();
  try {
    const f = tflow({ resp: true, err: "boom", ws: true });
    f.marked = ":default:";
    f.comment = "note";
    f.metadata = { a: 1, b: "x" };
    f.request.rawContent = enc.encode("request body");
    f.response!.rawContent = enc.encode("response body");
    store.put(f);
    store.commit();
    const g = store.get(f.id)!;
    assert.ok(g);
    const a = flowToState(f);
    const b = flowToState(g);
    assert.deepEqual(b, a);
    assert.equal(g.live, false);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: bodies are read only when asked for, and written once across updates", () => {
  const { store, dir } = tmpStore();
  try {
    const f = tflow({ resp: true });
    f.request.rawContent = enc.encode("q".repeat(100));
    f.response!.rawContent = enc.encode("r".repeat(5000));
    store.put(f);
    f.marked = ":default:";
    store.put(f);
    f.comment = "c";
    store.put(f);
    store.commit();
    const g = store.get(f.id)!;
    // the getter is lazy: nothing read yet, then the stored bytes
    assert.equal(store.body(f.id, "response")!.length, 5000);
    assert.equal(g.response!.rawContent!.length, 5000);
    assert.equal(g.marked, ":default:");
    assert.equal(g.comment, "c");
    // a stored flow put back unchanged keeps its body rows
    g.comment = "d";
    store.put(g);
    assert.equal(store.body(f.id, "request")!.length, 100);
    // a replaced body is stored anew, the old row goes
    g.response!.rawContent = enc.encode("new");
    store.put(g);
    store.commit();
    assert.equal(new TextDecoder().decode(store.body(f.id, "response")!), "new");
    assert.equal(store.count(), 1);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: a streamed body (null) and an empty body stay apart", () => {
  const { store, dir } = tmpStore();
  try {
    const f = tflow({ resp: true });
    f.request.rawContent = new Uint8Array(0);
    f.response!.rawContent = null;
    store.put(f);
    const g = store.get(f.id)!;
    assert.equal(g.request.rawContent!.length, 0);
    assert.equal(g.response!.rawContent, null);
    const s = store.summary(f.id)!;
    assert.equal(s.reqLen, 0);
    assert.equal(s.respLen, null);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

function populate(store: SqliteStore) {
  const mk = (
    method: string,
    url: string,
    status: number | null,
    extra: (f: ReturnType<typeof tflow>) => void = () => {},
  ) => {
    const f = tflow({ resp: status !== null });
    f.request = treq({});
    f.request.method = method;
    f.request.url = url;
    if (status !== null) {
      f.response = Response.make(status, `body of ${url}`, { "content-type": "text/html" });
    }
    extra(f);
    store.put(f);
    return f;
  };
  return [
    mk("GET", "http://example.com/a", 200),
    mk("POST", "http://example.com/b", 404, (f) => (f.request.text = "secret=1")),
    mk("GET", "https://other.org/c", 200, (f) => (f.marked = ":default:")),
    mk("PUT", "http://other.org/d", null),
    mk("GET", "http://example.com/e", 500, (f) => (f.comment = "look here")),
  ];
}

Deno.test("store: filters give the filter engine's answers, with and without record reads", () => {
  const { store, dir } = tmpStore();
  try {
    const flows = populate(store);
    store.commit();
    const exprs = [
      "~c 200",
      "~m POST",
      "~d example",
      "~u /c$",
      "!~s",
      "~q",
      "~marked",
      "~comment look",
      "~c 200 & ~d other",
      "~d example | ~marked",
      "~bq secret",
      '~b "body of" & !~c 500',
      "~h content-type",
      "~t html & ~m GET",
      "~all",
      "!(~m GET)",
      // SQL LIKE prefilters (plain runs of the regex), confirmed by the engine
      "~d exam.le",
      "~d EXAMPLE",
      "~u ^http://.*/c$",
      "~u 100%_",
      '~u "it\'s"',
      "~m ^P.ST$",
      '~d "ex(am)?ple"',
      "~u a|/c",
    ];
    for (const e of exprs) {
      const filter = parseFilter(e);
      const want = flows.filter((f) => filter(f)).map((f) => f.id);
      const got = store.select(filter).map((s) => store.summaries([s])[0].id);
      assert.deepEqual(got, want, e);
    }
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: header, content-type and body prefilters drop rows in SQL, never a match", () => {
  const { store, dir } = tmpStore();
  try {
    const flows: ReturnType<typeof tflow>[] = [];
    const add = (url: string, body: Uint8Array | string, headers: Record<string, string> = {}) => {
      const f = tflow({ resp: true });
      f.request = treq({});
      f.request.url = url;
      f.request.headers.set("User-Agent", "curl/8.0 Agent");
      f.response = Response.make(200, "", { "content-type": "text/plain", ...headers });
      f.response.rawContent = typeof body === "string" ? enc.encode(body) : body;
      store.put(f);
      flows.push(f);
      return f;
    };
    add("http://a.test/1", "plain Needle-42 text", { "content-type": "application/JSON" });
    // binary: NUL bytes before the needle (a C-string search would stop at the first one)
    add("http://a.test/2", new Uint8Array([0, 1, 0, 0xff, ...enc.encode("xx needle-42 yy"), 0]));
    // encoded: the stored bytes do not contain the needle, the decoded body does
    const gz = add("http://a.test/3", "gzipped needle-42 body");
    gz.response!.encode("gzip");
    store.put(gz);
    add("http://a.test/4", "nothing here", { "X-Quote": 'say "hi"' });
    const ws = add("http://a.test/5", "");
    ws.websocket = tflow({ ws: true }).websocket;
    ws.websocket!.messages[0].content = enc.encode("needle-42 in a message");
    store.put(ws);
    const req = add("http://a.test/6", "");
    req.request.text = "form needle-42=1";
    store.put(req);
    store.commit();
    const exprs = [
      "~bs needle-42",
      "~bs NEEDLE-42",
      "~b needle-42",
      "~bq needle-42",
      "~bs needle-4[0-9]",
      "~bs absent-thing",
      "~t json",
      "~ts JSON & ~bs needle",
      "~tq json",
      "~t plain & !~bs needle",
      '~h "user-agent: curl"',
      "~hq agent",
      '~hs "say .hi"',
      '~hs "say \\"hi"',
      "~h x-quote",
    ];
    for (const e of exprs) {
      const filter = parseFilter(e);
      const want = flows.filter((f) => filter(f)).map((f) => f.id);
      const got = store.select(filter).map((s) => store.summaries([s])[0].id);
      assert.deepEqual(got, want, e);
    }
    // the prefilter really works in SQL: the engine sees only the rows that can match
    const seen: string[] = [];
    const needle = parseFilter("~bs needle-42");
    const spy = Object.assign((f: Parameters<typeof needle>[0]) => {
      seen.push(f.id);
      return needle(f);
    }, { ast: needle.ast });
    store.select(spy as unknown as typeof needle);
    assert.ok(seen.length < flows.length, `the engine ran on ${seen.length} of ${flows.length} rows`);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: sorting, summaries, removal, clear", () => {
  const { store, dir } = tmpStore();
  try {
    const flows = populate(store);
    const byStatus = store.summaries(store.select(null, "status", true)).map((s) => s.status);
    assert.deepEqual(byStatus, [500, 404, 200, 200, null]);
    const byMethod = store.summaries(store.select(null, "method")).map((s) => s.method);
    assert.deepEqual(byMethod, ["GET", "GET", "GET", "POST", "PUT"]);
    const s = store.summary(flows[2].id)!;
    assert.equal(s.tls, true);
    assert.equal(s.host, "other.org");
    assert.equal(s.marked, ":default:");
    assert.equal(store.remove([flows[0].id, "nope"]), 1);
    assert.equal(store.count(), 4);
    assert.equal(store.get(flows[0].id), null);
    store.clear();
    assert.equal(store.count(), 0);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: backup and revert keep the original bodies", () => {
  const { store, dir } = tmpStore();
  try {
    const f = tflow({ resp: true });
    f.response!.rawContent = enc.encode("original");
    store.put(f);
    const g = store.get(f.id)!;
    store.setBackup(g);
    g.response!.text = "edited";
    g.request.method = "PATCH";
    store.put(g);
    assert.equal(store.summary(f.id)!.modified, true);
    assert.equal(new TextDecoder().decode(store.body(f.id, "response")!), "edited");
    const b = store.backup(f.id)!;
    assert.equal(b.request.method, f.request.method);
    store.put(b);
    store.dropBackup(f.id);
    assert.equal(new TextDecoder().decode(store.body(f.id, "response")!), "original");
    assert.equal(store.summary(f.id)!.modified, false);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: a saved session reopens; live flows of a crashed run come back finished", () => {
  const { store, path, dir } = tmpStore();
  try {
    const f = tflow({ resp: true });
    const live = tflow({ resp: false });
    live.live = true;
    store.put(f);
    store.put(live);
    store.close();
    const again = SqliteStore.open(path);
    try {
      assert.equal(again.count(), 2);
      assert.equal(again.summary(live.id)!.live, false);
      assert.deepEqual(flowToState(again.get(f.id)!), flowToState(f));
    } finally {
      again.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: a file that is not a store is refused with its name", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/x`, "not a database at all, just text ".repeat(200));
    assert.throws(() => SqliteStore.open(`${dir}/x`), /cannot open flow store .*\/x/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: a schema 1 store (records inside the flows rows) is migrated when opened", () => {
  const { store, path, dir } = tmpStore();
  try {
    const flows = populate(store);
    store.setBackup(flows[0]);
    store.close();
    toSchema4(path);
    // rebuild the schema 1 layout from what schema 2 wrote
    const db = new DatabaseSync(path);
    db.exec(`BEGIN;
      ALTER TABLE flows ADD COLUMN rec TEXT;
      ALTER TABLE flows ADD COLUMN backup TEXT;
      UPDATE flows SET rec = (SELECT rec FROM records r WHERE r.seq = flows.seq),
        backup = (SELECT backup FROM records r WHERE r.seq = flows.seq);
      ALTER TABLE flows DROP COLUMN modified;
      ALTER TABLE flows DROP COLUMN enc;
      DROP TABLE records;
      UPDATE meta SET value = '1' WHERE key = 'schema';
      COMMIT;`);
    db.close();
    const again = SqliteStore.open(path, { autoCommit: false });
    try {
      assert.equal(again.count(), flows.length);
      for (const f of flows) assert.equal(again.get(f.id)?.request.path, f.request.path);
      assert.equal(again.summary(flows[0].id)?.modified, true);
      assert.equal(again.summary(flows[1].id)?.modified, false);
      assert.ok(again.backup(flows[0].id));
    } finally {
      again.close();
    }
    const v = new DatabaseSync(path);
    assert.equal(
      (v.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value,
      SCHEMA_VERSION,
    );
    v.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: a schema 2 store gets the enc column from its records; body filters still see encoded bodies", () => {
  const { store, path, dir } = tmpStore();
  try {
    const plain = tflow({ resp: true });
    plain.response!.text = "plain needle-7";
    const gz = tflow({ resp: true });
    gz.response!.text = "zipped needle-7";
    gz.response!.encode("gzip");
    store.put(plain);
    store.put(gz);
    store.close();
    toSchema4(path);
    const db = new DatabaseSync(path);
    db.exec(
      `BEGIN; ALTER TABLE flows DROP COLUMN enc; UPDATE meta SET value = '2' WHERE key = 'schema'; COMMIT;`,
    );
    db.close();
    const again = SqliteStore.open(path, { autoCommit: false });
    try {
      const ids = again.select(parseFilter("~bs needle-7")).map((s) => again.summaries([s])[0].id).sort();
      assert.deepEqual(ids, [plain.id, gz.id].sort());
    } finally {
      again.close();
    }
    const v = new DatabaseSync(path);
    const rows = v.prepare("SELECT id, enc FROM flows ORDER BY seq").all() as { id: string; enc: number }[];
    assert.deepEqual(rows.map((r) => [r.id, r.enc]), [[plain.id, 0], [gz.id, 1]]);
    assert.equal(
      (v.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value,
      SCHEMA_VERSION,
    );
    v.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: requiredLiterals finds the plain runs every match contains, or says it cannot", () => {
  assert.deepEqual(requiredLiterals("host42.example"), ["host42", "example"]);
  assert.deepEqual(requiredLiterals("x\\.com"), ["x.com"]);
  assert.deepEqual(requiredLiterals("^/api/v[12]/users$"), ["/api/v"]);
  assert.deepEqual(requiredLiterals("abc?d"), ["ab"]);
  assert.equal(requiredLiterals("a|b"), null);
  assert.equal(requiredLiterals("(?i)abc"), null);
  assert.equal(requiredLiterals("(foo)bar"), null);
  assert.equal(requiredLiterals("caf\u00e9"), null);
  assert.equal(requiredLiterals("a.b"), null);
});

Deno.test("store: with commitDelayMs, writes are committed by a timer (or by commit()), onCommit after each", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "mitmdeno-store-" });
  const path = `${dir}/flows.sqlite`;
  let commits = 0;
  const store = SqliteStore.open(path, { commitDelayMs: 30, onCommit: () => commits++ });
  // what another process sees: committed rows only
  const reader = new DatabaseSync(path);
  const visible = () => (reader.prepare("SELECT count(*) AS n FROM flows").get() as { n: number }).n;
  try {
    store.put(tflow({ resp: true }));
    await new Promise((r) => setTimeout(r, 0));
    store.put(tflow({ resp: true }));
    assert.equal(store.pending, true);
    assert.equal(visible(), 0, "not committed after a turn");
    const t0 = Date.now();
    while (store.pending && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(store.pending, false);
    assert.equal(visible(), 2);
    assert.equal(commits, 1, "both writes in one commit");
    store.put(tflow({ resp: true }));
    store.commit();
    assert.equal(commits, 2);
    assert.equal(visible(), 3);
    store.commit(); // nothing pending: no callback
    assert.equal(commits, 2);
  } finally {
    reader.close();
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: a schema 3 store (every id keyed by its hash) finds time-ordered ids after migration", () => {
  const { store, path, dir } = tmpStore();
  try {
    const v7 = tflow({ resp: true });
    const v4 = tflow({ resp: true });
    v4.id = crypto.randomUUID();
    assert.equal(v7.id[14], "7");
    store.put(v7);
    store.put(v4);
    store.close();
    toSchema4(path);
    // schema 3 keyed every id by its FNV-1a hash
    const db = new DatabaseSync(path);
    db.function("fnv", (id) => {
      let h = 0x811c9dc5;
      for (const ch of String(id)) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
      return h | 0;
    });
    db.exec(
      `BEGIN; UPDATE flows SET idh = fnv(id); UPDATE meta SET value = '3' WHERE key = 'schema'; COMMIT;`,
    );
    db.close();
    const again = SqliteStore.open(path, { autoCommit: false });
    try {
      assert.equal(again.get(v7.id)?.id, v7.id);
      assert.equal(again.get(v4.id)?.id, v4.id);
      assert.equal(again.seqOf(v7.id), 1);
    } finally {
      again.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: the id index key of a time-ordered id grows with its time; other ids get a 32-bit hash", () => {
  const a = idHash(flowId(1_764_000_000_000));
  const b = idHash(flowId(1_764_000_000_001));
  assert.ok(b > a && a > 2 ** 32, `${a} ${b}`);
  const h = idHash(crypto.randomUUID());
  assert.ok(Number.isInteger(h) && h >= -(2 ** 31) && h < 2 ** 31);
  assert.ok(idHash("not-a-uuid") < 2 ** 31);
});

Deno.test("store: a schema 4 store (records and bodies in tables) moves them to the segment file, backups too", () => {
  const { store, path, dir } = tmpStore();
  try {
    const flows = populate(store);
    flows[1].response!.rawContent = enc.encode("first body");
    store.put(flows[1]);
    store.setBackup(flows[1]);
    flows[1].response!.rawContent = enc.encode("edited body");
    flows[1].request.headers.set("x-edit", "yes");
    store.put(flows[1]);
    store.close();
    toSchema4(path);
    const db = new DatabaseSync(path);
    const bodies = (db.prepare("SELECT count(*) AS n FROM bodies").get() as { n: number }).n;
    db.close();
    assert.ok(bodies >= 6, `the schema 4 layout holds the bodies (${bodies})`);
    const again = SqliteStore.open(path, { autoCommit: false });
    try {
      assert.equal(again.count(), flows.length);
      for (const f of flows) assert.deepEqual(flowToState(again.get(f.id)!), flowToState(f));
      assert.equal(new TextDecoder().decode(again.body(flows[1].id, "response")!), "edited body");
      const b = again.backup(flows[1].id)!;
      assert.equal(b.response!.text, "first body");
      assert.equal(b.request.headers.has("x-edit"), false);
      assert.equal(again.summary(flows[1].id)?.modified, true);
      const ids = (f: string) => again.select(parseFilter(f)).map((s) => again.summaries([s])[0].id);
      assert.deepEqual(ids("~bs edited"), [flows[1].id]);
      assert.deepEqual(ids("~hq x-edit"), [flows[1].id]);
      assert.deepEqual(ids("~bq secret"), [flows[1].id]);
    } finally {
      again.close();
    }
    const v = new DatabaseSync(path);
    const tables = (v.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[]).map((t) => t.name);
    v.close();
    assert.deepEqual(tables, ["flows", "meta"]);
    assert.ok(Deno.statSync(`${path}-seg`).size > 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: flows synced but never committed survive a kill -9; one put after the sync is lost", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "mitmdeno-store-" });
  const path = `${dir}/flows.sqlite`;
  try {
    const script = `${dir}/child.ts`;
    const lib = new URL("../../../lib/store/sqlite.ts", import.meta.url).href;
    const tf = new URL("../io/_tflow.ts", import.meta.url).href;
    Deno.writeTextFileSync(
      script,
      `import { SqliteStore } from "${lib}";
import { tflow } from "${tf}";
const store = SqliteStore.open(${JSON.stringify(path)}, { autoCommit: false });
const f0 = tflow({ resp: true });
f0.response.text = "committed";
store.put(f0);
store.commit();
const ids = [];
for (let i = 0; i < 40; i++) {
  const f = tflow({ resp: true });
  f.request.path = "/p" + i;
  f.response.text = "body " + i + " " + "z".repeat(i * 100);
  store.put(f);
  if (i === 10) { f.comment = "edited later"; store.put(f); }
  ids.push(f.id);
}
store.sync();
const lost = tflow({ resp: true });
store.put(lost);
console.log(JSON.stringify({ f0: f0.id, ids, lost: lost.id }));
Deno.kill(Deno.pid, "SIGKILL");
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.signal, "SIGKILL", new TextDecoder().decode(out.stderr));
    const got = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      f0: string;
      ids: string[];
      lost: string;
    };
    const store = SqliteStore.open(path, { autoCommit: false });
    try {
      assert.equal(store.count(), 41);
      assert.equal(store.get(got.f0)!.response!.text, "committed");
      got.ids.forEach((id, i) => {
        const f = store.get(id)!;
        assert.equal(f.request.path, `/p${i}`);
        assert.equal(f.response!.text, `body ${i} ${"z".repeat(i * 100)}`);
      });
      assert.equal(store.get(got.ids[10])!.comment, "edited later");
      assert.equal(store.get(got.lost), null);
      assert.deepEqual(store.select(parseFilter("~bs body.3")).length, 11);
    } finally {
      store.close();
    }
    // indexed once: a second reopen finds the same
    const again = SqliteStore.open(path, { autoCommit: false });
    assert.equal(again.count(), 41);
    again.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: a segment file cut short drops the rows pointing past its end; a missing one is named", () => {
  const { store, path, dir } = tmpStore();
  try {
    const flows = populate(store);
    store.commit();
    const keep = Deno.statSync(`${path}-seg`).size;
    const late = tflow({ resp: true });
    late.response!.text = "late";
    store.put(late);
    store.close();
    // the OS lost the file's tail (a crash), the database kept its commit
    Deno.truncateSync(`${path}-seg`, keep + 5);
    const again = SqliteStore.open(path, { autoCommit: false });
    try {
      assert.equal(again.count(), flows.length);
      assert.equal(again.get(late.id), null);
      for (const f of flows) assert.equal(again.get(f.id)!.request.url, f.request.url);
      again.put(late);
      assert.equal(again.get(late.id)!.response!.text, "late");
    } finally {
      again.close();
    }
    Deno.removeSync(`${path}-seg`);
    assert.throws(
      () => SqliteStore.open(path),
      /flows\.sqlite: its segment file .*flows\.sqlite-seg is missing/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("store: clear() empties the segment file, and a reopened store stays empty", () => {
  const { store, path, dir } = tmpStore();
  try {
    populate(store);
    store.commit();
    assert.ok(Deno.statSync(`${path}-seg`).size > 1000);
    store.clear();
    assert.equal(Deno.statSync(`${path}-seg`).size, 32);
    const f = tflow({ resp: true });
    store.put(f);
    store.close();
    const again = SqliteStore.open(path, { autoCommit: false });
    assert.equal(again.count(), 1);
    assert.equal(again.get(f.id)!.id, f.id);
    again.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
