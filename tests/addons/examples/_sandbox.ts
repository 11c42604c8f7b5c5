/** Run the examples through the real ScriptLoader (sandboxed workers), with the public test kit. */
import { sandboxed as kitSandboxed, type TestContext } from "../../../testing.ts";

/** A test context with `scripts` running sandboxed; `sets` are `--set` style options (script_allow too). */
export function sandboxed(scripts: string[], sets: string[] = []): Promise<TestContext> {
  return kitSandboxed(scripts, { set: sets });
}

/** Absolute path of an example. */
export function example(name: string): string {
  return new URL(`../../../addons/examples/${name}`, import.meta.url).pathname;
}
