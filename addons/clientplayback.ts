/**
 * The client playback addon (`-C FILE` / `--client-replay FILE`, mitmproxy's `clientplayback.py`).
 *
 * Saved requests are sent again through the proxy core: each one is injected into an HTTP layer of a
 * connection without a client socket (lib/proxy/layers/replay.ts, mitmproxy's ReplayHandler), so every
 * hook fires as for live traffic
 * (`requestheaders`, `request`, `server_connect`..., `responseheaders`, `response` or `error`) and the
 * upstream connection is opened the usual way. The flow is marked `isReplay = "request"`; the dumper,
 * `-w` and HAR export record it with its new response.
 *
 * Only HTTP flows with their request body present can be replayed (not live, intercepted or WebSocket
 * flows). `client_replay_concurrency` is 1 (one request at a time, default) or -1 (all at once).
 *
 * Commands: `replay.client FLOWS`, `replay.client.file PATH`, `replay.client.stop`, `replay.client.count`.
 */
import type { Loader } from "../lib/addons/manager.ts";
import type { Master } from "../lib/master.ts";
import type { Flow, HTTPFlow } from "../lib/flow/flow.ts";
import { FlowError } from "../lib/flow/flow.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { OptionsError } from "../lib/addons/options.ts";
import { CommandError } from "../lib/addons/commands.ts";
import { describeError } from "../lib/addons/log.ts";
import { readFlowsToArray } from "../lib/io/flowfile.ts";
import { Driver } from "../lib/proxy/driver.ts";
import { ReplayLayer } from "../lib/proxy/layers/replay.ts";
import { type ModeSpec, parseMode } from "../lib/proxy/mode.ts";

interface Saved {
  isReplay: Flow["isReplay"];
  response: HTTPFlow["response"];
  error: HTTPFlow["error"];
}

/** Replays saved requests. */
export class ClientPlayback {
  readonly name = "clientplayback";
  #queue: HTTPFlow[] = [];
  #inflight = new Set<HTTPFlow>();
  #saved = new WeakMap<HTTPFlow, Saved>();
  #running = false;
  #pumping = false;
  #idle: (() => void)[] = [];
  #loaded = "";

  load(loader: Loader): void {
    loader.addOption("client_replay", "strs", [], "Replay client requests from a saved file.");
    loader.addOption(
      "client_replay_concurrency",
      "int",
      1,
      "Concurrency limit on in-flight client replay requests. Currently the only valid values are 1 and -1 (no limit).",
    );
    loader.addCommand(
      "replay.client",
      (flows: Flow[] | Flow) => this.startReplay(Array.isArray(flows) ? flows : [flows]),
      "Add flows to the replay queue, skipping flows that can't be replayed.",
    );
    loader.addCommand(
      "replay.client.file",
      (path: string) => this.loadFile(path),
      "Load flows from file, and add them to the replay queue.",
    );
    loader.addCommand("replay.client.stop", () => this.stopReplay(), "Clear the replay queue.");
    loader.addCommand(
      "replay.client.count",
      () => this.count(),
      "Approximate number of flows queued for replay.",
    );
  }

  async configure(updated: Set<string>): Promise<void> {
    const o = ctx.options;
    if (updated.has("client_replay_concurrency") && ![1, -1].includes(o.client_replay_concurrency)) {
      throw new OptionsError(
        `Option "client_replay_concurrency": currently the only valid values are -1 and 1, got ${o.client_replay_concurrency}`,
      );
    }
    // configure runs again with every option at startup: load each list of files once
    const files = JSON.stringify(o.client_replay);
    if (updated.has("client_replay") && o.client_replay.length && files !== this.#loaded) {
      this.#loaded = files;
      const flows: HTTPFlow[] = [];
      for (const p of o.client_replay as string[]) {
        try {
          flows.push(...await readFlowsToArray(p));
        } catch (e) {
          throw new OptionsError(`Option "client_replay": ${p}: ${(e as Error).message}`);
        }
      }
      this.startReplay(flows);
    }
  }

  running(): void {
    this.#running = true;
    this.#pump();
  }

  done(): void {
    this.#running = false;
    this.#queue = [];
  }

  /** Why `f` cannot be replayed, or null. */
  check(f: Flow): string | null {
    if (f.live || this.#inflight.has(f as HTTPFlow)) return "Can't replay live flow.";
    if (f.intercepted) return "Can't replay intercepted flow.";
    if (f.type !== "http") return "Can only replay HTTP flows.";
    const h = f as HTTPFlow;
    if (!h.request) return "Can't replay flow with missing request.";
    if (h.request.rawContent === null) return "Can't replay flow with missing content.";
    if (h.websocket !== null && h.websocket !== undefined) return "Can't replay WebSocket flows.";
    return null;
  }

  /** Queue flows for replay (`replay.client`). Returns the number queued. */
  startReplay(flows: Flow[]): number {
    let n = 0;
    for (const f of flows) {
      const err = this.check(f);
      if (err) {
        ctx.log.warn(err);
        continue;
      }
      const h = f as HTTPFlow;
      this.#saved.set(h, { isReplay: h.isReplay, response: h.response, error: h.error });
      h.isReplay = "request";
      h.response = null;
      h.error = null;
      this.#queue.push(h);
      n++;
    }
    this.#pump();
    return n;
  }

  /** `replay.client.file PATH`. */
  async loadFile(path: string): Promise<number> {
    let flows: HTTPFlow[];
    try {
      flows = await readFlowsToArray(path);
    } catch (e) {
      throw new CommandError((e as Error).message);
    }
    return this.startReplay(flows);
  }

  /** Clear the queue (`replay.client.stop`); queued flows get their previous state back. */
  stopReplay(): void {
    for (const f of this.#queue) {
      const s = this.#saved.get(f);
      if (s) Object.assign(f, s);
    }
    this.#queue = [];
    ctx.log.alert("Client replay queue cleared.");
    this.#notifyIdle();
  }

  /** Flows queued or in flight. */
  count(): number {
    return this.#queue.length + this.#inflight.size;
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.count() === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  #notifyIdle(): void {
    if (this.count() !== 0) return;
    for (const r of this.#idle.splice(0)) r();
  }

  #pump(): void {
    if (!this.#running || this.#pumping) return;
    this.#pumping = true;
    (async () => {
      try {
        while (this.#running && this.#queue.length) {
          const f = this.#queue.shift()!;
          this.#inflight.add(f);
          const p = this.replay(f).finally(() => {
            this.#inflight.delete(f);
            this.#notifyIdle();
          });
          if (ctx.options.client_replay_concurrency !== -1) await p;
        }
      } finally {
        this.#pumping = false;
        this.#notifyIdle();
      }
    })();
  }

  /** The proxy's first mode when it is `upstream:` (replays go through that proxy, as in mitmproxy). */
  #upstreamMode(): ModeSpec | null {
    const first = (ctx.options.mode as string[] | undefined)?.[0];
    if (!first?.startsWith("upstream")) return null;
    try {
      return parseMode(first);
    } catch {
      return null; // refused at start-up already
    }
  }

  /** Send one saved request through the proxy core and wait for its response or error. */
  async replay(f: HTTPFlow): Promise<void> {
    const master = ctx.master as unknown as Master;
    const req = f.request;
    req.timestampStart = req.timestampEnd = Date.now() / 1000;
    f.live = true;
    try {
      // a connection without a client socket: the flow's request is injected into an HTTP layer
      const driver = new Driver(master.proxy, f.clientConn, null);
      await driver.run(new ReplayLayer(driver.context, f, this.#upstreamMode()), { clientHooks: false });
    } catch (e) {
      master.log.error(`Client replay has crashed: ${describeError(e)}`);
      if (!f.error) f.error = new FlowError(String((e as Error)?.message ?? e));
    } finally {
      f.live = false;
    }
  }
}
