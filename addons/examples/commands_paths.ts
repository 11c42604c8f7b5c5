/**
 * A command that takes flows and a file path (mitmproxy's examples/addons/commands-paths.py): writes how
 * many flows went to each host, fewest first.
 *
 *     mitmdeno web -s addons/examples/commands_paths.ts --script-allow "commands_paths.ts:write=./histogram.txt"
 *
 * then run `myaddon.histogram @all ./histogram.txt` in the web UI.
 */
import { ctx, type Flow, HTTPFlow, type Loader } from "mitmdeno";

export class MyAddon {
  load(loader: Loader): void {
    loader.addCommand(
      "myaddon.histogram",
      (flows: Flow[], path: string) => this.histogram(flows, path),
      "Write the number of flows per host to a file.",
    );
  }

  async histogram(flows: Flow[], path: string): Promise<void> {
    const totals = new Map<string, number>();
    for (const f of flows) {
      if (f instanceof HTTPFlow) totals.set(f.request.host, (totals.get(f.request.host) ?? 0) + 1);
    }
    const rows = [...totals].sort(([ha, a], [hb, b]) => a - b || (ha < hb ? -1 : ha > hb ? 1 : 0));
    await Deno.writeTextFile(path, rows.map(([dom, cnt]) => `${cnt}: ${dom}\n`).join(""));
    ctx.log.alert("done");
  }
}

export const addons = [new MyAddon()];
