/**
 * Use mitmproxy's filter expressions in a script (mitmproxy's examples/addons/filter-flows.py).
 *
 *     mitmdeno -s addons/examples/filter_flows.ts --set flowfilter='~d example.com & ~s'
 */
import {
  ctx,
  type Filter,
  type HTTPFlow,
  type Loader,
  matchFilter,
  OptionsError,
  parseFilter,
} from "mitmdeno";

export class FilterFlows {
  filter: Filter = parseFilter(".");

  load(loader: Loader): void {
    loader.addOption("flowfilter", "str", "", "Check that flow matches filter.");
  }

  configure(updated: Set<string>): void {
    if (!updated.has("flowfilter")) return;
    try {
      this.filter = parseFilter(ctx.options.flowfilter || ".");
    } catch (e) {
      // an OptionsError refuses the option change (it is rolled back) with this message
      throw new OptionsError(`flowfilter: ${(e as Error).message}`);
    }
  }

  response(flow: HTTPFlow): void {
    if (matchFilter(this.filter, flow)) {
      ctx.log.info("Flow matches filter:");
      ctx.log.info(String(flow));
    }
  }
}

export const addons = [new FilterFlows()];
