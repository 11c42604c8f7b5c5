/**
 * The global context addons use, as mitmproxy's `ctx`: `ctx.log`, `ctx.options`, `ctx.master`.
 * The master fills it in when it starts; tests get one from the test kit.
 */
import { Logger } from "./log.ts";
import type { Options } from "./options.ts";

/** The master's public surface as seen by addons (kept minimal to avoid import cycles). */
export interface MasterLike {
  options: Options;
  log: Logger;
  commands: { call(path: string, ...args: unknown[]): Promise<unknown> };
  addons: { get(name: string): unknown };
  shutdown(): void;
}

/** The context singleton. */
export const ctx: { master: MasterLike | null; options: Options; log: Logger } = {
  master: null,
  options: null as unknown as Options,
  log: new Logger((e) => console.error(`[${e.level}]${e.source ? ` ${e.source}:` : ""} ${e.msg}`)),
};
