/**
 * The readfile addon (`-r FILE`, mitmproxy's `readfile.py` with mitmdump's stdin support).
 *
 * At `running` it reads the flows of `rfile` (`-` = stdin; a flow file of any format version 7..21, or a
 * HAR file) and replays each flow's events through every addon in chain order, with no network: HTTP
 * flows get `requestheaders`, `request`, then `responseheaders`, `response` if they have a response, then
 * the WebSocket events if they have WebSocket data, else `error` if they have an error (§1.13). Each event
 * is followed by `update`. So `-r in -s script.ts -w out` transforms saved traffic.
 *
 * `readfile_filter` (also set by the positional filter) limits which flows are replayed. In reverse mode
 * with a single mode, each flow's destination is rewritten to the reverse target first.
 *
 * A truncated or corrupt file: every complete flow is processed, then one error naming the byte offset is
 * logged and the exit code becomes 1. Command `readfile.reading` tells whether a read is in progress.
 */
import { setImmediate } from "node:timers";
import { expandHome } from "../lib/paths.ts";
import type { Loader } from "../lib/addons/manager.ts";
import type { Flow, HTTPFlow } from "../lib/flow/flow.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { type Filter, parseFilterOrNull } from "../lib/addons/filter_option.ts";
import { type FlowSource, readAnyFlows } from "../lib/io/flowfile.ts";
import { TCPFlow } from "../lib/flow/tcp.ts";
import { parseMode } from "../lib/proxy/mode.ts";
import type { EventName } from "../lib/addons/manager.ts";

/** What replaying a flow needs from the master. */
export interface EventTarget {
  addons: { trigger(event: string, ...args: unknown[]): Promise<void>; has?(event: string): boolean };
}

/**
 * The events a saved flow would have seen live, in order (mitmproxy's `eventsequence.iterate`), as
 * `[event, flow]` pairs. WebSocket messages are re-appended one at a time while iterating.
 */
export function* eventSequence(flow: Flow): Generator<[EventName, Flow]> {
  if (flow instanceof TCPFlow) {
    const messages = flow.messages;
    flow.messages = [];
    yield ["tcp_start", flow];
    for (const m of messages) {
      flow.messages.push(m);
      yield ["tcp_message", flow];
    }
    yield [flow.error ? "tcp_error" : "tcp_end", flow];
    return;
  }
  if (flow.type !== "http") return;
  const f = flow as HTTPFlow;
  yield ["requestheaders", f];
  yield ["request", f];
  if (f.response) {
    yield ["responseheaders", f];
    yield ["response", f];
  }
  const ws = f.websocket as { messages?: unknown[] } | null;
  if (ws && Array.isArray(ws.messages)) {
    const messages = ws.messages;
    ws.messages = [];
    yield ["websocket_start", f];
    for (const m of messages) {
      ws.messages.push(m);
      yield ["websocket_message", f];
    }
    yield ["websocket_end", f];
  } else if (f.error) {
    yield ["error", f];
  }
}

/**
 * Replay a loaded flow's events through all addons (mitmproxy's `Master.load_flow`): each event, then
 * `update`. Loaded flows are not live, so interception does not pause them.
 */
export async function loadFlow(master: EventTarget, flow: Flow): Promise<void> {
  const o = ctx.options;
  const modes = o && o.has("mode") ? (o.mode as string[]) : [];
  if (flow.type === "http" && modes.length === 1 && modes[0].startsWith("reverse:")) {
    try {
      const t = parseMode(modes[0]).target;
      if (t) {
        const req = (flow as HTTPFlow).request;
        req.scheme = t.scheme;
        req.port = t.port;
        req.host = t.host;
      }
    } catch { /* an invalid mode is reported by the proxyserver addon */ }
  }
  const addons = master.addons;
  for (const [event, f] of eventSequence(flow)) {
    await addons.trigger(event, f);
    await addons.trigger("update", [f]);
  }
}

/** Flows replayed between two turns of the event loop. */
const YIELD_EVERY = 256;

/** Reads flows from `rfile` at startup and replays them through the addons. */
export class ReadFile {
  readonly name = "readfile";
  #filter: Filter | null = null;
  #reading = false;
  #task: Promise<void> | null = null;
  /** Flows replayed by the last read. */
  count = 0;
  /** Where `-` reads from (stdin by default; tests replace it). */
  stdin: () => FlowSource = () => Deno.stdin.readable;

  load(loader: Loader): void {
    loader.addOption("rfile", "optional str", null, "Read flows from file (- for stdin).");
    loader.addOption("readfile_filter", "optional str", null, "Read only matching flows.");
    loader.addCommand("readfile.reading", () => this.reading(), "Whether flows are still being read.");
  }

  configure(updated: Set<string>): void {
    if (updated.has("readfile_filter")) {
      this.#filter = parseFilterOrNull("readfile_filter", ctx.options.readfile_filter);
    }
  }

  running(): void {
    const rfile = ctx.options.rfile as string | null;
    if (!rfile) return;
    this.#reading = true;
    // Start after the other `running` handlers (the proxy, scripts) have had their turn.
    this.#task = new Promise<void>((r) => setTimeout(r, 0)).then(() => this.#read(rfile));
  }

  /** Whether a read is in progress. */
  reading(): boolean {
    return this.#reading;
  }

  /** Resolves when the current read (if any) is finished. */
  async finished(): Promise<void> {
    await this.#task;
  }

  async #read(rfile: string): Promise<void> {
    this.#reading = true;
    try {
      await this.loadFlowsFrom(rfile);
    } catch (e) {
      const m = ctx.master as unknown as { exitCode?: number } | null;
      if (m) m.exitCode = 1;
      void e; // already logged
    } finally {
      this.#reading = false;
    }
  }

  /**
   * Read `path` (`-` = stdin) and replay every flow; returns the number of flows replayed. Logs and
   * re-throws a read error after the complete flows were processed.
   */
  async loadFlowsFrom(path: string): Promise<number> {
    const master = ctx.master as unknown as EventTarget;
    const src: FlowSource = path === "-" ? this.stdin() : expandHome(path);
    const name = path === "-" ? "stdin" : path;
    let n = 0;
    const skipped = new Map<string, number>();
    try {
      for await (
        const flow of readAnyFlows(src, {
          filter: this.#filter,
          onSkip: (t) => skipped.set(t, (skipped.get(t) ?? 0) + 1),
        })
      ) {
        await loadFlow(master, flow);
        n++;
        this.count = n;
        // let the rest of the process (the web UI's server, its store writes) run now and then
        if (n % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      const msg = (e as Error).message;
      if (n) ctx.log.warn(`Flow file corrupted - loaded ${n} flows.`);
      ctx.log.error(`Error reading ${name}: ${msg}`);
      throw e;
    } finally {
      for (const [t, c] of skipped) {
        ctx.log.warn(
          `Skipped ${c} ${t} flow${c === 1 ? "" : "s"} in ${name}: ${t} flows are not supported yet.`,
        );
      }
    }
    ctx.log.debug(`Read ${n} flows from ${name}.`);
    return n;
  }
}
