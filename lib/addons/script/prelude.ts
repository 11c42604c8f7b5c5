/**
 * Runs in a script worker before the script module is evaluated (the generated entry imports it first):
 * makes the script's own arguments visible the way a program sees its argv, as `Deno.args` and as
 * `process.argv` (so `node:util` `parseArgs()` without `args` parses them too).
 */
import process from "node:process";

/** The script's file URL and arguments, given by the host. */
export interface PreludeConfig {
  url: string;
  args: string[];
}

/** The config given to {@link setup} (read by the worker runtime). */
export let config: PreludeConfig = { url: "", args: [] };

/** Install `Deno.args` and `process.argv` for the script. */
export function setup(c: PreludeConfig): void {
  config = c;
  Object.defineProperty(Deno, "args", {
    value: Object.freeze([...c.args]),
    configurable: true,
    enumerable: true,
  });
  // mutate in place: node:util's parseArgs reads the array it imported, not a replaced property
  process.argv.splice(0, process.argv.length, process.argv[0], new URL(c.url).pathname, ...c.args);
}
