/**
 * Write a flow file, as `-w` would, but choosing which flows (mitmproxy's examples/addons/io-write-flow-file.py):
 * every other response at random.
 *
 *     mitmdeno -s "addons/examples/io_write_flow_file.ts out.mitm" --script-allow "io_write_flow_file.ts:write=out.mitm"
 */
import { FlowWriter, type HTTPFlow } from "mitmdeno";

export class Writer {
  #w: Promise<FlowWriter>;

  constructor(filename: string) {
    this.#w = FlowWriter.open(filename);
  }

  async response(flow: HTTPFlow): Promise<void> {
    if (Math.random() < 0.5) await (await this.#w).add(flow);
  }

  async done(): Promise<void> {
    await (await this.#w).close();
  }
}

export const addons = [new Writer(Deno.args[0] ?? "out.mitm")];
