/**
 * Validate an option in `configure` (mitmproxy's examples/addons/options-configure.py).
 *
 *     mitmdeno -s addons/examples/options_configure.ts --set addheader=42
 */
import { ctx, type HTTPFlow, type Loader, OptionsError } from "mitmdeno";

export class AddHeader {
  load(loader: Loader): void {
    loader.addOption("addheader", "optional int", null, "Add a header to responses");
  }

  configure(updates: Set<string>): void {
    if (updates.has("addheader")) {
      if (ctx.options.addheader !== null && ctx.options.addheader > 100) {
        throw new OptionsError("addheader must be <= 100");
      }
    }
  }

  response(flow: HTTPFlow): void {
    if (ctx.options.addheader !== null) {
      flow.response!.headers.set("addheader", String(ctx.options.addheader));
    }
  }
}

export const addons = [new AddHeader()];
