/**
 * blocklist: `block_list` rules `/filter/status` answer matching requests with an empty response of that
 * status (header `Server: mitmdeno <version>`); status 444 kills the flow without any response
 * (mitmproxy's `blocklist.py`). Matching flows get `metadata.blocklisted = true`.
 */
import {
  ctx,
  type Filter,
  type HTTPFlow,
  type Loader,
  parseFilter,
  reasonPhrase,
  Response,
  VERSION,
} from "../mod.ts";
import { parseSpecList, splitMax } from "../lib/addons/spec.ts";

/** One parsed `block_list` rule. */
export interface BlockSpec {
  filter: Filter;
  status: number;
}

/** Parse `/filter/status`; throws Error with the reason. */
export function parseBlockSpec(option: string): BlockSpec {
  if (!option) throw new Error("empty specification");
  const sep = option[0];
  const parts = splitMax(option.slice(1), sep, 2);
  if (parts.length !== 2) {
    throw new Error(`invalid number of parameters (2 are expected: ${sep}filter${sep}status)`);
  }
  const [expr, statusStr] = parts;
  const status = /^\d+$/.test(statusStr.trim()) ? Number(statusStr) : NaN;
  if (!Number.isInteger(status) || reasonPhrase(status) === "Unknown") {
    throw new Error(`invalid HTTP status code: ${statusStr}`);
  }
  let filter: Filter;
  try {
    filter = parseFilter(expr);
  } catch (e) {
    throw new Error(`invalid filter expression ${JSON.stringify(expr)}: ${(e as Error).message}`);
  }
  return { filter, status };
}

/** Blocks requests matching `block_list`. */
export class BlockList {
  readonly name = "blocklist";
  items: BlockSpec[] = [];

  load(loader: Loader): void {
    loader.addOption(
      "block_list",
      "strs",
      [],
      'Block matching requests and return an empty response with the specified HTTP status. Option syntax is "/flow-filter/status-code", where flow-filter describes which requests this rule should be applied to and status-code is the HTTP status code to return for blocked requests. The separator ("/" in the example) can be any character. Setting a non-standard status code of 444 will close the connection without sending a response.',
    );
  }

  configure(updated: Set<string>): void {
    if (!updated.has("block_list")) return;
    this.items = parseSpecList("block_list", ctx.options.block_list as string[], parseBlockSpec);
  }

  request(flow: HTTPFlow): void {
    if (flow.response || flow.error || !flow.live) return;
    for (const spec of this.items) {
      if (!spec.filter(flow)) continue;
      flow.metadata.blocklisted = true;
      if (spec.status === 444) flow.kill();
      else flow.response = Response.make(spec.status, "", { Server: `mitmdeno ${VERSION}` });
      return;
    }
  }
}
