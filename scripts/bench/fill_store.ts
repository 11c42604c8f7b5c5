/**
 * Fill a flow store file with `n` generated flows (scripts/bench/flowgen.ts), straight through
 * {@link SqliteStore} (no proxy): the setup of the web benchmark's "1M flows in the store" step, where
 * writing a 2.8 GB flow file first would only cost time. Reuses a complete store from an earlier run.
 *
 * Usage: deno run -A scripts/bench/fill_store.ts N PATH
 *
 * @module
 */
import { SCHEMA_VERSION, SqliteStore } from "../../lib/store/sqlite.ts";
import { syntheticFlow } from "./flowgen.ts";

/** Make `path` hold exactly flows 0..n-1 (kept when an earlier run made the same). */
export function fillStore(path: string, n: number): void {
  try {
    if (Deno.readTextFileSync(`${path}.done`) === `${n} schema ${SCHEMA_VERSION}`) return;
  } catch { /* not made yet */ }
  for (const s of ["", "-wal", "-shm", "-seg", ".done"]) {
    try {
      Deno.removeSync(path + s);
    } catch { /* none */ }
  }
  const store = SqliteStore.open(path, { autoCommit: false });
  for (let i = 0; i < n; i++) {
    store.put(syntheticFlow(i));
    if (i % 10000 === 9999) store.commit();
  }
  store.close();
  Deno.writeTextFileSync(`${path}.done`, `${n} schema ${SCHEMA_VERSION}`);
}

if (import.meta.main) {
  const [n, path] = Deno.args;
  const t = performance.now();
  fillStore(path, Number(n));
  console.log(`FILLED ${n} ${((performance.now() - t) / 1000).toFixed(1)}`);
}
