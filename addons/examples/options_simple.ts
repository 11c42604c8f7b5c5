/**
 * Add a new option (mitmproxy's examples/addons/options-simple.py).
 *
 *     mitmdeno -s addons/examples/options_simple.ts --set addheader=true
 */
import { ctx, type HTTPFlow, type Loader } from "mitmdeno";

export class AddHeader {
  num = 0;

  load(loader: Loader): void {
    loader.addOption("addheader", "bool", false, "Add a count header to responses");
  }

  response(flow: HTTPFlow): void {
    if (ctx.options.addheader) {
      this.num = this.num + 1;
      flow.response!.headers.set("count", String(this.num));
    }
  }
}

export const addons = [new AddHeader()];
