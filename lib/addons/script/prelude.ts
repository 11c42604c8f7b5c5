/**
 * Runs in a script worker before the script module is imported (worker.ts `boot`): makes the script's own arguments visible the way a program sees its argv, as `Deno.args` and as
 * `process.argv` (so `node:util` `parseArgs()` without `args` parses them too).
 */
import process from "node:process";
import * as processModule from "node:process";

/** The script's file URL and arguments, given by the host. */
export interface PreludeConfig {
  url: string;
  args: string[];
}

/** Install `Deno.args` and `process.argv` for the script. */
export function setup(c: PreludeConfig): void {
  Object.defineProperty(Deno, "args", {
    value: Object.freeze([...c.args]),
    configurable: true,
    enumerable: true,
  });
  // mutate in place: node:util's parseArgs reads the array it imported, not a replaced property. In a node
  // Worker the module's named export `argv` is another array than `process.argv` (Deno 2.9.6): set both.
  const argv = [process.argv[0], new URL(c.url).pathname, ...c.args];
  for (const a of new Set([process.argv, processModule.argv])) a.splice(0, a.length, ...argv);
}
