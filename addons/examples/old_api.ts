/**
 * The old script API: `start()` returns the addon object, which takes the module's place in the chain.
 *
 *     mitmdeno -s addons/examples/old_api.ts
 */
import type { HTTPFlow } from "mitmdeno";

class AddHeader {
  num = 0;
  response(flow: HTTPFlow): void {
    this.num += 1;
    flow.response!.headers.set("count", String(this.num));
  }
}

export function start(): AddHeader {
  return new AddHeader();
}
