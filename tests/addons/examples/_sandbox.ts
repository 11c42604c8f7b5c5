/** Run scripts through the real ScriptLoader (sandboxed workers) in a test context, without a proxy. */
import { context, type TestContext } from "../../../testing.ts";
import { ScriptLoader } from "../../../lib/addons/script/loader.ts";

/** A test context with a ScriptLoader running `scripts` (no file watching). */
export async function sandboxed(scripts: string[], sets: string[] = []): Promise<TestContext> {
  const tctx = await context();
  await tctx.master.addons.add(new ScriptLoader(tctx.master, { watch: false }));
  if (sets.length) await tctx.options.set(sets);
  await tctx.options.update({ scripts });
  return tctx;
}

/** Absolute path of an example. */
export function example(name: string): string {
  return new URL(`../../../addons/examples/${name}`, import.meta.url).pathname;
}
