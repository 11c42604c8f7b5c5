/**
 * A command (mitmproxy's examples/addons/commands-simple.py).
 *
 *     mitmdeno -s addons/examples/commands_simple.ts
 *
 * then call `myaddon.inc` (from the web UI's command bar, or another addon's `ctx.master.commands.call`).
 */
import { ctx, type Loader } from "mitmdeno";

export class MyAddon {
  num = 0;

  load(loader: Loader): void {
    loader.addCommand("myaddon.inc", () => this.inc(), "Increment the counter.");
  }

  inc(): void {
    this.num += 1;
    ctx.log.info(`num = ${this.num}`);
  }
}

export const addons = [new MyAddon()];
