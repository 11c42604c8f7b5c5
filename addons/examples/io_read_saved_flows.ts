/**
 * Read a flow file (mitmproxy's examples/addons/io-read-saved-flows.py): a program, not an addon.
 *
 *     deno run --allow-read addons/examples/io_read_saved_flows.ts out.mitm
 */
import { FlowReadError, HTTPFlow, readFlows } from "mitmdeno";

/** Print each flow, its host and its fields; a damaged file is reported, not thrown. */
export async function printFlows(path: string, print: (s: string) => void = console.log): Promise<void> {
  try {
    for await (const f of readFlows(path)) {
      print(String(f));
      if (f instanceof HTTPFlow) print(f.request.host);
      print(Deno.inspect(f.request.toJSON(), { depth: 4 }));
      print("");
    }
  } catch (e) {
    if (!(e instanceof FlowReadError)) throw e;
    print(`Flow file corrupted: ${e.message}`);
  }
}

if (import.meta.main) {
  if (Deno.args.length !== 1) {
    console.error("usage: io_read_saved_flows.ts FILE");
    Deno.exit(2);
  }
  await printFlows(Deno.args[0]);
}
