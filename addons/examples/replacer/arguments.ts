/**
 * A script with its own command-line arguments: replace every occurrence of SRC with DST in responses.
 *
 *     mitmdeno -s "addons/examples/replacer/arguments.ts html fakehtml"
 *
 * The script sees its arguments as a program sees its argv: `parseArgs()` from `node:util` parses them
 * without being told where they are (`Deno.args` holds them too).
 */
import { parseArgs } from "node:util";
import type { HTTPFlow } from "mitmdeno";

const { positionals } = parseArgs({ allowPositionals: true });
if (positionals.length !== 2) throw new Error("usage: arguments.ts SRC DST");
const [src, dst] = positionals;

export function response(flow: HTTPFlow): void {
  const text = flow.response?.text;
  if (text) flow.response!.text = text.replaceAll(src, dst);
}
