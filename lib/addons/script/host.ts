/**
 * One script worker: spawn it with its permissions, talk to it, enforce the hook timeout.
 *
 * The worker's entry is a generated `data:` module that statically imports, in order, the prelude (which
 * sets the script's argv), the runtime (`worker.ts`) and the user's script. Static imports matter: a
 * worker with no read permission cannot `import()` a file dynamically, but the modules of its entry's
 * static graph are loaded by the runtime before the worker starts. A script that fails to load (syntax
 * error, missing import, top-level throw) surfaces as an `error` event before `ready`.
 */
import type { Envelope, HostMessage, Sequenced, WorkerMessage } from "./protocol.ts";
import { Outbox, unpackEnvelope } from "./outbox.ts";
import type { WorkerPermissions } from "./spec.ts";
import { ConnRefs } from "./wire.ts";
import { RingWriter } from "./ring.ts";

const PRELUDE = new URL("./prelude.ts", import.meta.url).href;
const RUNTIME = new URL("./worker.ts", import.meta.url).href;

/** The source of the generated entry module for the script at `scriptUrl`. */
export function entrySource(scriptUrl: string, args: string[]): string {
  const init = `import { setup } from ${JSON.stringify(PRELUDE)}; setup(${
    JSON.stringify({ url: scriptUrl, args })
  });`;
  const initUrl = `data:application/javascript,${encodeURIComponent(init)}`;
  return [
    `import ${JSON.stringify(initUrl)};`,
    // the runtime before the script, so ctx.log works in the script's top-level code
    `import { run } from ${JSON.stringify(RUNTIME)};`,
    `import * as script from ${JSON.stringify(scriptUrl)};`,
    `await run(script);`,
  ].join("\n");
}

/** Remove terminal colour codes from Deno's error messages. */
export function stripAnsi(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, "");
}

/** How often call timeouts are checked. */
const WATCHDOG_TICK_MS = 100;

/** Why a call did not complete. */
export class ScriptCallError extends Error {
  constructor(readonly reason: "timeout" | "crash" | "stopped", message: string) {
    super(message);
    this.name = "ScriptCallError";
  }
}

/** A message that may take the ring: its JSON text and bodies, and how to send it otherwise. */
export interface FastLane {
  text: string;
  a: Uint8Array | null;
  b: Uint8Array | null;
  /** Prepare the message for postMessage (the ring had no room). */
  slow(): void;
}

/** A reply from the worker. */
export type Reply = Extract<WorkerMessage, { t: "reply" }>;

/** What the host needs from its owner. */
export interface WorkerHostEvents {
  log(level: "error" | "warn" | "info" | "alert" | "debug", msg: string): void;
  /** The script asks to change options. Resolve to an error message to refuse. */
  setOptions(values: Record<string, unknown>): Promise<string | undefined>;
  /** The worker died after it was ready (an error escaped, or it closed). */
  crashed(message: string): void;
}

interface Pending {
  resolve(r: Reply): void;
  reject(e: Error): void;
  started: number;
  what: string;
  timeoutMs: number;
}

/** A running script worker. */
export class WorkerHost {
  readonly worker: Worker;
  /** Hooks the script handles (after {@link ready}). */
  hooks = new Set<string>();
  /** Hooks the script defines that sandboxed scripts cannot handle. */
  unsupported: string[] = [];
  /** Resolves when the script module is loaded; rejects with the load error. */
  readonly ready: Promise<void>;
  /** The connection records this worker has. */
  readonly conns = new ConnRefs();
  /** The fast lane to this worker (see ring.ts). */
  readonly ring = new RingWriter();
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  /** performance.now() as of the watchdog's last tick: call start times need no finer precision. */
  #clock = 0;
  #dead = false;
  #isReady = false;
  #events: WorkerHostEvents;
  readonly #outbox: Outbox<Sequenced<HostMessage>>;
  /** The sequence number of the last message sent. */
  #seq = 0;

  constructor(
    scriptPath: string,
    args: string[],
    permissions: WorkerPermissions,
    events: WorkerHostEvents,
    loadTimeoutMs: number,
  ) {
    this.#events = events;
    this.#outbox = new Outbox<Sequenced<HostMessage>>(
      (m, transfer) => this.worker.postMessage(m, transfer),
      (m, e) => this.#sendFailed(m, e),
    );
    const scriptUrl = new URL(`file://${scriptPath}`).href;
    const entry = `data:application/javascript,${encodeURIComponent(entrySource(scriptUrl, args))}`;
    const name = scriptPath.slice(scriptPath.lastIndexOf("/") + 1);
    this.worker = new Worker(entry, {
      type: "module",
      name,
      // deno-lint-ignore no-explicit-any
      deno: { permissions: permissions as any },
    } as WorkerOptions);
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.ready.catch(() => {});
    const loadTimer = setTimeout(() => {
      if (this.#isReady || this.#dead) return;
      readyReject(
        new Error(`loading took longer than ${loadTimeoutMs / 1000}s (top-level code still running)`),
      );
      this.terminate();
    }, loadTimeoutMs);
    const receive = (m: WorkerMessage) => {
      switch (m.t) {
        case "ready":
          this.hooks = new Set(m.hooks);
          this.unsupported = m.unsupported;
          this.#isReady = true;
          clearTimeout(loadTimer);
          // before any flow (the worker listens from now on)
          this.#outbox.send({ t: "ring", sab: this.ring.buffer }, [], false);
          readyResolve();
          return;
        case "log":
          this.#events.log(m.level, m.msg);
          return;
        case "reply": {
          const p = this.#pending.get(m.id);
          if (!p) return;
          this.#pending.delete(m.id);
          p.resolve(m);
          return;
        }
        case "setoptions":
          this.#events.setOptions(m.values).then(
            (error) => this.#post({ t: "reply", id: m.id, error }),
            (e) => this.#post({ t: "reply", id: m.id, error: String(e) }),
          );
          return;
      }
    };
    this.worker.onmessage = (e: MessageEvent<Envelope<WorkerMessage>>) => {
      for (const m of unpackEnvelope(e.data)) receive(m);
    };
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const loc = e.filename ? ` (at ${e.filename.replace(/^file:\/\//, "")}:${e.lineno}:${e.colno})` : "";
      const msg = stripAnsi(e.message ?? String(e)).replace(/^Uncaught (\(in promise\) )?/, "") + loc;
      if (!this.#isReady) {
        clearTimeout(loadTimer);
        readyReject(new Error(msg));
        this.terminate();
        return;
      }
      this.terminate(new ScriptCallError("crash", `worker crashed: ${msg}`));
      this.#events.crashed(msg);
    };
  }

  /** Whether the worker was terminated. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Calls in flight. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  #post(m: HostMessage): void {
    if (!this.#dead) this.#send(m, [], true);
  }

  /** Send by postMessage, in sequence. */
  #send(m: Sequenced<HostMessage>, transfer: Transferable[], batchable: boolean): void {
    m.q = ++this.#seq;
    this.#outbox.send(m, transfer, batchable);
  }

  /** A message could not be sent (it does not clone): its call fails. */
  #sendFailed(m: Sequenced<HostMessage>, e: unknown): void {
    // the worker handles messages in sequence: it must not wait for this one forever
    if (m.q !== undefined && !this.#dead) this.worker.postMessage({ t: "skip", q: m.q });
    if (m.t === "flow" || m.t === "update" || m.t === "conn") this.conns.clear();
    if (m.t === "reply" || m.t === "ring" || m.t === "skip") return; // not calls of ours
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    p.reject(e instanceof Error ? e : new Error(String(e)));
  }

  /**
   * Send a request and wait for the reply. Rejects with ScriptCallError("timeout") after `timeoutMs`
   * (the caller terminates and restarts the worker), or ("crash"/"stopped") if the worker goes away.
   * With `fast`, the message goes through the ring as that JSON text (it must encode `m`) and bodies;
   * if it does not fit, `fast.slow()` prepares `m` (and `transfer`) for postMessage instead.
   */
  call(
    m: HostMessage & { id: number },
    transfer: Transferable[],
    what: string,
    timeoutMs: number,
    fast?: FastLane,
  ): Promise<Reply> {
    if (this.#dead) return Promise.reject(new ScriptCallError("stopped", "script worker stopped"));
    return new Promise<Reply>((resolve, reject) => {
      this.#startWatchdog();
      this.#pending.set(m.id, { resolve, reject, started: this.#clock, what, timeoutMs });
      if (fast) {
        if (this.ring.post(this.#seq + 1, fast.text, fast.a, fast.b)) {
          this.#seq++;
          return;
        }
        fast.slow();
      }
      // flows and lifecycle messages are built to clone; command arguments and option values may not
      this.#send(m, transfer, m.t !== "command" && m.t !== "configure" && m.t !== "load");
    });
  }

  /** A fresh request id. */
  nextId(): number {
    return this.#nextId++;
  }

  #startWatchdog(): void {
    if (this.#watchdog !== null) return;
    this.#clock = performance.now();
    // one coarse timer per worker, kept while the worker lives: a timer per call (or re-arming it whenever
    // the pending set empties) costs measurable throughput
    this.#watchdog = setInterval(() => {
      const now = this.#clock = performance.now();
      if (this.#pending.size === 0) return;
      for (const [id, p] of this.#pending) {
        // `started` may be up to one tick early
        if (now - p.started > p.timeoutMs + WATCHDOG_TICK_MS) {
          this.#pending.delete(id);
          p.reject(new ScriptCallError("timeout", `${p.what} took longer than ${p.timeoutMs / 1000}s`));
        }
      }
    }, WATCHDOG_TICK_MS);
    Deno.unrefTimer(this.#watchdog as unknown as number);
  }

  #stopWatchdog(): void {
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    this.#watchdog = null;
  }

  /** Stop the worker; pending calls fail with `reason`. */
  terminate(reason: Error = new ScriptCallError("stopped", "script worker stopped")): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#stopWatchdog();
    this.#outbox.clear();
    this.worker.terminate();
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
  }
}
