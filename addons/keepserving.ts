/**
 * The keepserving addon (mitmproxy's `keepserving.py`): with `-r`, `--client-replay` or
 * `--server-replay` and without `--set keepserving`, the tool exits once the work is done: the file is
 * read (`readfile.reading`), the client replay queue is empty (`replay.client.count`), every server
 * replay response was served (`replay.server.count`) and no client connection is open
 * (`proxyserver.active_connections`). Checked every 100 ms.
 */
import type { Loader } from "../lib/addons/manager.ts";
import { ctx } from "../lib/addons/ctx.ts";

const CHECKS = [
  "readfile.reading",
  "replay.client.count",
  "replay.server.count",
  "proxyserver.active_connections",
];

/** Shuts the tool down once reading and replaying are finished. */
export class KeepServing {
  readonly name = "keepserving";
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;
  /** Poll interval in ms. */
  interval = 100;

  load(loader: Loader): void {
    loader.addOption(
      "keepserving",
      "bool",
      false,
      "Continue serving after client playback, server playback or file read. This option is ignored by " +
        "interactive tools, which always keep serving.",
    );
  }

  /** Whether anything is still going on. */
  async keepgoing(): Promise<boolean> {
    const master = ctx.master;
    if (!master) return false;
    const cmds = (master as unknown as { commands: { has?(p: string): boolean } }).commands;
    for (const c of CHECKS) {
      if (cmds.has && !cmds.has(c)) continue;
      try {
        if (await master.commands.call(c)) return true;
      } catch { /* command missing: nothing to wait for */ }
    }
    return false;
  }

  running(): void {
    const o = ctx.options;
    const work = (o.client_replay?.length ?? 0) > 0 || (o.server_replay?.length ?? 0) > 0 || !!o.rfile;
    if (!work || o.keepserving) return;
    this.#stopped = false;
    const tick = async () => {
      this.#timer = null;
      if (this.#stopped) return;
      if (await this.keepgoing()) {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.interval);
      } else {
        this.#stopped = true;
        ctx.master?.shutdown();
      }
    };
    this.#timer = setTimeout(tick, this.interval);
  }

  done(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
