/**
 * The global context addons use, as mitmproxy's `ctx`: `ctx.log`, `ctx.options`, `ctx.master`.
 * The master fills it in when it starts; tests get one from the test kit.
 */
import { Logger } from "./log.ts";
import type { Options } from "./options.ts";

/** The master's public surface as seen by addons (kept minimal to avoid import cycles). */
export interface MasterLike {
  /** The options of every addon. */
  options: Options;
  /** The log (`ctx.log`). */
  log: Logger;
  /** Call a command by path (`ctx.master.commands.call("replay.client", flows)`). */
  commands: { call(path: string, ...args: unknown[]): Promise<unknown> };
  /** Look an addon up by name (undefined if absent). */
  addons: { get(name: string): unknown };
  /** Stop the proxy (in a script: only with `--script-allow shutdown`). */
  shutdown(): void;
}

/** The context singleton. */
export const ctx: { master: MasterLike | null; options: Options; log: Logger } = {
  master: null,
  options: null as unknown as Options,
  log: new Logger((e) => console.error(`[${e.level}]${e.source ? ` ${e.source}:` : ""} ${e.msg}`)),
};
