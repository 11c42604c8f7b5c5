/** A master with given addons for addon tests (no proxy server), plus a recorder of events. */
import { Master } from "../../../lib/master.ts";
import type { Flow } from "../../../lib/flow/flow.ts";

/** A master with `addons` loaded and `sets` applied (`--set` syntax), configured as at startup. */
export async function testMaster(
  addons: object[],
  sets: string[] = [],
): Promise<{ master: Master; logs: string[] }> {
  const master = new Master();
  const logs: string[] = [];
  master.onLog((e) => logs.push(`${e.level}: ${e.msg}`));
  await master.addAddons(...addons);
  await master.options.set(["server=false", ...sets]);
  await master.addons.trigger("configure", new Set(master.options.specs().map((s) => s.name)));
  return { master, logs };
}

/** Records `[event, flow id or url]` for every flow event it sees. */
export class Recorder {
  readonly name: string;
  events: [string, Flow][] = [];
  constructor(name = "recorder") {
    this.name = name;
    for (
      const e of [
        "requestheaders",
        "request",
        "responseheaders",
        "response",
        "error",
        "websocket_start",
        "websocket_message",
        "websocket_end",
        "server_connect",
      ]
    ) {
      (this as Record<string, unknown>)[e] = (f: Flow) => {
        this.events.push([e, f]);
      };
    }
  }
  /** Just the event names. */
  get names(): string[] {
    return this.events.map(([e]) => e);
  }
}

/** A temp dir removed after `fn`. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-io-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
