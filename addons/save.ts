/**
 * The save addon (`-w FILE`, mitmproxy's `save.py`): streams flows to a flow file as they finish.
 *
 * - `save_stream_file`: the path; `+path` appends. strftime patterns (`%Y %m %d %H %M %S %j %%`) rotate to
 *   a new file whenever the formatted name changes; missing parent directories are created.
 * - `save_stream_filter`: only matching flows are written (the positional filter sets it too).
 * - `flow_format_version`: 21 (default, current mitmproxy) or down to 17 (what mitmproxy 8.x reads).
 * - HTTP flows are written at `response` or `error` (WebSocket flows at `websocket_end`), each with one
 *   write of the whole flow that is awaited before the hook returns: a crash loses at most the flows in
 *   progress. Flows still in progress at shutdown are written at `done`.
 * - A failed write (disk full, I/O error, the directory gone when a new file is due) logs one error and
 *   stops recording; the file keeps every flow written before (it is cut back to the last complete flow)
 *   and the proxy keeps serving. Setting `save_stream_file` again starts recording again.
 * - Command `save.file FLOWS PATH` writes the given flows to a file (`+PATH` appends).
 */
import { expandHome } from "../lib/paths.ts";
import { dirname } from "node:path";
import type { Loader } from "../lib/addons/manager.ts";
import type { Flow, HTTPFlow } from "../lib/flow/flow.ts";
import type { TCPFlow } from "../lib/flow/tcp.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { OptionsError } from "../lib/addons/options.ts";
import { type Filter, parseFilterOrNull } from "../lib/addons/filter_option.ts";
import { FlowWriter } from "../lib/io/flowfile.ts";
import { FLOW_FORMAT_VERSION, MIN_WRITE_VERSION } from "../lib/io/compat.ts";

/** The common strftime directives, local time, as Python's `datetime.strftime`. */
export function strftime(pattern: string, d: Date = new Date()): string {
  if (!pattern.includes("%")) return pattern;
  const p2 = (n: number) => String(n).padStart(2, "0");
  const start = new Date(d.getFullYear(), 0, 1);
  const doy = Math.floor((d.getTime() - start.getTime()) / 86400000) + 1;
  const map: Record<string, string> = {
    Y: String(d.getFullYear()),
    y: p2(d.getFullYear() % 100),
    m: p2(d.getMonth() + 1),
    d: p2(d.getDate()),
    H: p2(d.getHours()),
    M: p2(d.getMinutes()),
    S: p2(d.getSeconds()),
    j: String(doy).padStart(3, "0"),
    "%": "%",
  };
  return pattern.replace(/%(.)/g, (m, c: string) => map[c] ?? m);
}

/** Split a `-w` spec into its path and whether to append. */
export function parseSaveSpec(spec: string): { path: string; append: boolean } {
  return spec.startsWith("+")
    ? { path: expandHome(spec.slice(1)), append: true }
    : { path: expandHome(spec), append: false };
}

/** Streams finished flows to `save_stream_file`. */
export class Save {
  readonly name = "save";
  #writer: FlowWriter | null = null;
  #filter: Filter | null = null;
  #currentPath: string | null = null;
  #active = new Set<Flow>();
  #failed = false;
  #opened = "";

  load(loader: Loader): void {
    loader.addOption(
      "save_stream_file",
      "optional str",
      null,
      "Stream flows to file as they arrive. Prefix path with + to append. The path can use strftime " +
        "patterns (a new file is opened when the formatted name changes); missing directories are created.",
    );
    loader.addOption("save_stream_filter", "optional str", null, "Filter which flows are written to file.");
    loader.addOption(
      "flow_format_version",
      "int",
      FLOW_FORMAT_VERSION,
      `Flow file format version written by -w and save.file: ${FLOW_FORMAT_VERSION} (current mitmproxy) ` +
        `down to ${MIN_WRITE_VERSION} (mitmproxy 8.x).`,
    );
    loader.addCommand(
      "save.file",
      (flows: Flow[] | Flow, path: string) => this.saveFile(flows, path),
      "Save flows to a file. If the path starts with a +, flows are appended to the file.",
    );
  }

  async configure(updated: Set<string>): Promise<void> {
    const o = ctx.options;
    if (updated.has("flow_format_version")) {
      const v = o.flow_format_version as number;
      if (v < MIN_WRITE_VERSION || v > FLOW_FORMAT_VERSION) {
        throw new OptionsError(
          `Option "flow_format_version": ${v} cannot be written, expected ${MIN_WRITE_VERSION} to ${FLOW_FORMAT_VERSION}`,
        );
      }
    }
    if (updated.has("save_stream_filter")) {
      this.#filter = parseFilterOrNull("save_stream_filter", o.save_stream_filter);
    }
    if (
      updated.has("save_stream_file") || updated.has("save_stream_filter") ||
      updated.has("flow_format_version")
    ) {
      if (o.save_stream_file) {
        // configure runs again with every option at startup: reopen (and truncate) only on a real change
        const opened = `${o.save_stream_file}\0${o.flow_format_version}`;
        if (opened !== this.#opened) {
          await this.#close();
          this.#failed = false;
        }
        this.#opened = opened;
        try {
          await this.#rotate();
        } catch (e) {
          throw new OptionsError(
            `Option "save_stream_file": cannot open ${o.save_stream_file}: ${(e as Error).message}`,
          );
        }
      } else {
        this.#opened = "";
        await this.#close();
      }
    }
  }

  /** Open the file for the current time's name if it changed. */
  async #rotate(): Promise<void> {
    const spec = ctx.options.save_stream_file as string;
    const { path: pattern, append } = parseSaveSpec(spec);
    const path = strftime(pattern);
    if (this.#writer && this.#currentPath === path) return;
    if (this.#writer) await this.#writer.close();
    this.#writer = null;
    await Deno.mkdir(dirname(path), { recursive: true });
    this.#writer = await FlowWriter.open(path, {
      append,
      version: ctx.options.flow_format_version as number,
      batch: true,
    });
    this.#currentPath = path;
  }

  async #close(): Promise<void> {
    const w = this.#writer;
    this.#writer = null;
    this.#currentPath = null;
    if (w) await w.close();
  }

  /** Whether a writer is open (for tests). */
  get active(): boolean {
    return this.#writer !== null;
  }

  /** Synchronous (no promise) when there is nothing to write: the common case without `save_stream_file`. */
  #save(flow: Flow): Promise<void> | void {
    this.#active.delete(flow);
    if (!this.#writer || this.#failed) return;
    if (this.#filter && !this.#filter(flow)) return;
    return this.#write(flow);
  }

  async #write(flow: Flow): Promise<void> {
    const path = this.#currentPath;
    try {
      await this.#rotate();
      // the writer gathers a turn's flows into one write (see FlowWriterOptions.batch): the hook does not
      // wait for it; a failed write stops recording below
      const w = this.#writer!;
      w.add(flow as HTTPFlow).catch((e) => this.#writeFailed(e, path, w));
    } catch (e) {
      await this.#writeFailed(e, path, this.#writer);
    }
  }

  async #writeFailed(e: unknown, path: string | null, failed: FlowWriter | null): Promise<void> {
    if (this.#failed) return;
    const where = (failed === this.#writer ? this.#currentPath : null) ?? path ??
      String(ctx.options.save_stream_file);
    if (failed !== null && failed !== this.#writer) {
      // a file rotated away since: its last flows are lost, the current file goes on
      ctx.log.error(`Error while writing to ${where}: ${(e as Error).message}; its last flows are lost`);
      return;
    }
    // a full disk stops this writer, not the proxy (mitmproxy exits here, failing every connection)
    this.#failed = true;
    const written = this.#writer?.count ?? 0;
    const w = this.#writer;
    this.#writer = null;
    this.#currentPath = null;
    this.#active.clear();
    await w?.close().catch(() => {});
    ctx.log.error(
      `Error while writing to ${where}: ${(e as Error).message}; recording stopped ` +
        `(${written} flows written there stay readable; the proxy goes on)`,
    );
  }

  requestheaders(flow: HTTPFlow): void {
    if (this.#writer) this.#active.add(flow);
  }

  request(flow: HTTPFlow): void {
    if (this.#writer) this.#active.add(flow);
  }

  response(flow: HTTPFlow): Promise<void> | void {
    // WebSocket flows are saved at websocket_end.
    if (flow.websocket === null || flow.websocket === undefined) return this.#save(flow);
  }

  async error(flow: HTTPFlow): Promise<void> {
    await this.response(flow);
  }

  async websocket_end(flow: HTTPFlow): Promise<void> {
    await this.#save(flow);
  }

  /** While recording, every message of a WebSocket stays in its flow (see `websocket_keep_messages`). */
  websocketHistory(): boolean {
    return this.#writer !== null && !this.#failed;
  }

  tcp_start(flow: TCPFlow): void {
    if (this.#writer) this.#active.add(flow);
  }

  async tcp_end(flow: TCPFlow): Promise<void> {
    await this.#save(flow);
  }

  async tcp_error(flow: TCPFlow): Promise<void> {
    await this.#save(flow);
  }

  async done(): Promise<void> {
    if (this.#writer && !this.#failed) {
      for (const f of [...this.#active]) {
        // gathered into the last batch, written by the close below
        if (!this.#filter || this.#filter(f)) this.#writer.add(f as HTTPFlow | TCPFlow).catch(() => {});
      }
    }
    this.#active.clear();
    await this.#close();
  }

  /** The `save.file` command. */
  async saveFile(flows: Flow[] | Flow, spec: string): Promise<number> {
    const list = Array.isArray(flows) ? flows : [flows];
    const { path, append } = parseSaveSpec(spec);
    const w = await FlowWriter.open(path, { append, version: ctx.options.flow_format_version as number });
    try {
      for (const f of list) await w.add(f as HTTPFlow);
    } finally {
      await w.close();
    }
    ctx.log.alert(`Saved ${list.length} flows.`);
    return list.length;
  }
}
