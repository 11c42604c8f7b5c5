/**
 * The savehar addon (mitmproxy's `savehar.py`): `--set hardump=FILE` collects the HTTP flows that pass
 * `save_stream_filter` and writes them as a HAR 1.2 file at exit (`-` = stdout, a `.zhar` name is
 * zlib-compressed). Command `save.har FLOWS PATH` exports given flows at any time.
 * With hardump set, finished flows are kept in memory until exit.
 */
import { deflateSync } from "node:zlib";
import type { Loader } from "../lib/addons/manager.ts";
import type { Flow, HTTPFlow } from "../lib/flow/flow.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { type Filter, parseFilterOrNull } from "../lib/addons/filter_option.ts";
import { makeHar } from "../lib/io/har.ts";
import { prettySize } from "../lib/http/bytes.ts";

/** Collects flows and writes a HAR file. */
export class SaveHar {
  readonly name = "savehar";
  flows: Flow[] = [];
  #filter: Filter | null = null;

  load(loader: Loader): void {
    loader.addOption(
      "hardump",
      "str",
      "",
      "Save a HAR file with all flows on exit (- for stdout, .zhar for zlib compression). You may select " +
        "particular flows by setting save_stream_filter. Flows are kept in memory until exit.",
    );
    // declared by the save addon too (same signature), so savehar works on its own
    loader.addOption("save_stream_filter", "optional str", null, "Filter which flows are written to file.");
    loader.addCommand(
      "save.har",
      (flows: Flow[] | Flow, path: string) => this.exportHar(Array.isArray(flows) ? flows : [flows], path),
      "Export flows to an HAR (HTTP Archive) file.",
    );
  }

  configure(updated: Set<string>): void {
    if (updated.has("save_stream_filter")) {
      this.#filter = parseFilterOrNull("save_stream_filter", ctx.options.save_stream_filter);
    }
    if (updated.has("hardump") && !ctx.options.hardump) this.flows = [];
  }

  /** The HAR document for `flows`, as text. */
  harText(flows: Flow[]): string {
    const skipped = { count: 0 };
    const har = makeHar(flows, skipped);
    if (skipped.count) ctx.log.info(`Skipped ${skipped.count} flows that weren't HTTP flows.`);
    return JSON.stringify(har, null, 4);
  }

  /** Write `flows` to `path` as HAR (`.zhar`: zlib-compressed). Returns the bytes written. */
  async exportHar(flows: Flow[], path: string): Promise<number> {
    let data: Uint8Array = new TextEncoder().encode(this.harText(flows));
    if (path.endsWith(".zhar")) data = new Uint8Array(deflateSync(data, { level: 9 }));
    await Deno.writeFile(path, data);
    ctx.log.info(`HAR file saved (${prettySize(data.length)} bytes).`);
    return data.length;
  }

  #keep(flow: HTTPFlow): void {
    if (!ctx.options.hardump) return;
    if (this.#filter && !this.#filter(flow)) return;
    this.flows.push(flow);
  }

  response(flow: HTTPFlow): void {
    // WebSocket flows are kept at websocket_end.
    if (flow.websocket === null || flow.websocket === undefined) this.#keep(flow);
  }

  error(flow: HTTPFlow): void {
    this.response(flow);
  }

  websocket_end(flow: HTTPFlow): void {
    this.#keep(flow);
  }

  /** With `hardump` set, every message of a WebSocket stays in its flow (see `websocket_keep_messages`). */
  websocketHistory(): boolean {
    return !!ctx.options.hardump;
  }

  async done(): Promise<void> {
    const path = ctx.options.hardump as string;
    if (!path) return;
    if (path === "-") {
      const text = this.harText(this.flows) + "\n";
      const bytes = new TextEncoder().encode(text);
      let off = 0;
      while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
    } else {
      try {
        await this.exportHar(this.flows, path);
      } catch (e) {
        ctx.log.error(`Cannot write HAR file ${path}: ${(e as Error).message}`);
        const m = ctx.master as unknown as { exitCode?: number } | null;
        if (m) m.exitCode = 1;
      }
    }
  }
}
