/**
 * A command that takes flows (mitmproxy's examples/addons/commands-flows.py).
 *
 *     mitmdeno web -s addons/examples/commands_flows.ts
 *
 * then run `myaddon.addheader @focus` (or any flow selection) in the web UI.
 */
import { ctx, type Flow, HTTPFlow, type Loader } from "mitmdeno";

export class MyAddon {
  load(loader: Loader): void {
    loader.addCommand(
      "myaddon.addheader",
      (flows: Flow[]) => this.addheader(flows),
      "Add a header to the requests of these flows.",
    );
  }

  addheader(flows: Flow[]): void {
    for (const f of flows) {
      if (f instanceof HTTPFlow) f.request.headers.set("myheader", "value");
    }
    ctx.log.alert("done");
  }
}

export const addons = [new MyAddon()];
