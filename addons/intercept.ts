/**
 * intercept: pause flows matching the `intercept` filter until they are resumed (mitmproxy's
 * `intercept.py`, loaded by the web tool). Setting `intercept` turns `intercept_active` on, clearing it
 * turns it off. Replayed flows are not intercepted.
 */
import type { Loader } from "../lib/addons/manager.ts";
import type { Flow } from "../lib/flow/flow.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { type Filter, parseFilterOrNull } from "../lib/addons/filter_option.ts";

/** Intercepts matching flows at request and response. */
export class Intercept {
  readonly name = "intercept";
  #filter: Filter | null = null;

  load(loader: Loader): void {
    loader.addOption("intercept_active", "bool", false, "Intercept toggle.");
    loader.addOption("intercept", "optional str", null, "Intercept filter expression.");
  }

  async configure(updated: Set<string>): Promise<void> {
    if (!updated.has("intercept")) return;
    const expr = ctx.options.intercept as string | null;
    this.#filter = parseFilterOrNull("intercept", expr);
    const active = this.#filter !== null;
    if (ctx.options.intercept_active !== active) await ctx.options.update({ intercept_active: active });
  }

  #process(f: Flow): void {
    if (ctx.options.intercept_active && this.#filter && !f.isReplay && this.#filter(f)) f.intercept();
  }

  request(f: Flow): void {
    this.#process(f);
  }

  response(f: Flow): void {
    this.#process(f);
  }

  websocket_message(f: Flow): void {
    this.#process(f);
  }
}
