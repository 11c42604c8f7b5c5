/**
 * `kill -9` of a recording `mitmdeno web` under keep-alive load: every response a client got must be in
 * the store when it is opened again, except at most the last one of each connection. The store commits in
 * batches on a timer and syncs its segment file before a connection's next answer while its last flow is
 * not durable (addons/web.ts); a store that only committed on its timer would lose every flow of the last
 * few dozen milliseconds.
 */
import assert from "node:assert/strict";
import { SqliteStore } from "../../lib/store/sqlite.ts";
import { dirname } from "node:path";
import { keepAliveClient } from "./helpers.ts";
import { startWeb } from "./web_helpers.ts";

const CONNECTIONS = 4;

Deno.test("web: kill -9 under keep-alive load loses at most the last flow of each connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-web-kill-" });
  const store = `${dir}/flows.sqlite`;
  const body = "x".repeat(1024);
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(body));
  try {
    // three kills (the store reopened each time): one could land just after a commit by luck; and one of
    // the default store, deleted at exit (not synced to disk: it only has to survive the process)
    for (let round = 0; round < 3; round++) await killOnce(store, origin.addr.port, round);
    await killOnce(null, origin.addr.port, 3, `${dir}/tmp`);
  } finally {
    await origin.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Load through `mitmdeno web`, kill -9, compare; `store` null: the default (temporary) store in `confdir`. */
async function killOnce(
  store: string | null,
  originPort: number,
  round: number,
  confdir = dirname(store ?? ""),
): Promise<void> {
  const w = await startWeb([
    "--set",
    `confdir=${confdir}`,
    ...(store ? ["--set", `web_store=${store}`] : []),
  ]);
  try {
    const clients = Array.from(
      { length: CONNECTIONS },
      (_, i) => keepAliveClient(w.port, originPort, round * CONNECTIONS + i),
    );
    // under load for a while (many store transactions), then a kill at any moment
    const deadline = Date.now() + 20_000;
    while (clients.some((c) => c.got.length < 300) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, Math.random() * 30));
    Deno.kill(w.pid, "SIGKILL");
    await w.stop();
    for (const c of clients) c.stop();
    store ??= [...Deno.readDirSync(confdir)].map((e) => `${confdir}/${e.name}`)
      .find((p) => /web-flows-.*\.sqlite$/.test(p))!;
    assert.ok(store, "the temporary store is left behind by the kill");
    // what the store holds when it is opened again (records written after its last commit indexed then)
    const stored = new Set<string>();
    const db = SqliteStore.open(store, { autoCommit: false });
    try {
      for (const row of db.summaries(db.select(null))) if (row.status !== null) stored.add(row.path);
    } finally {
      db.close();
    }
    for (const c of clients) {
      assert.ok(c.got.length >= 300, `only ${c.got.length} responses on a connection`);
      const lost = c.got.filter((p) => !stored.has(p));
      assert.ok(
        lost.length === 0 || (lost.length === 1 && lost[0] === c.got.at(-1)),
        `kill ${round + 1}: ${lost.length} of ${c.got.length} flows lost on one connection ` +
          `(${lost.slice(0, 5).join(" ")}...)`,
      );
    }
  } finally {
    await w.stop();
  }
}
