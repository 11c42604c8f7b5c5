/**
 * One script worker: spawn it with its permissions and heap limit, talk to it, enforce the hook timeout
 * and watch that it stays responsive.
 *
 * The proxy starts a web Worker (sandbox.ts) with the script's Deno permissions, which starts the script's
 * worker proper: a `node:worker_threads` Worker with a heap limit, running worker.ts. The proxy and that
 * worker talk over a MessageChannel (the shell relays nothing), plus the message ring (ring.ts) and a
 * heartbeat in shared memory. A script that fails to load (syntax error, missing or forbidden import,
 * top-level throw) reports a `loaderror` before `ready`.
 *
 * Everything the worker sends is untrusted: the script shares its isolate. Messages are checked for shape,
 * log lines have control characters escaped and are rate-limited.
 */
import type {
  Envelope,
  HostMessage,
  ReplayFlow,
  SandboxEvent,
  SandboxInit,
  Sequenced,
  WorkerMessage,
} from "./protocol.ts";
import { Outbox, unpackEnvelope } from "./outbox.ts";
import type { WorkerPermissions } from "./spec.ts";
import { ConnRefs } from "./wire.ts";
import { RingWriter } from "./ring.ts";
import { WsFlowRefs } from "./wsflows.ts";
import { describeError, escapeControl, LOG_LEVELS, type LogLevel } from "../log.ts";

const SANDBOX = new URL("./sandbox.ts", import.meta.url).href;
const RUNTIME = new URL("./worker.ts", import.meta.url).href;

/** The source of the script worker's entry module. */
export function entrySource(): string {
  return `import { boot } from ${JSON.stringify(RUNTIME)};\nawait boot();\n`;
}

/** Remove terminal colour codes from Deno's error messages. */
export function stripAnsi(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, "");
}

/** How often call timeouts and the heartbeat are checked. */
const WATCHDOG_TICK_MS = 100;
/** A blocked worker is stopped this long after `busyTimeoutMs`, so a hook's own timeout names it first. */
const BUSY_GRACE_MS = 600;

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
  /** A log line from the script (control characters already escaped). */
  log(level: LogLevel, msg: string): void;
  /** The script asks to change options. Resolve to an error message to refuse. */
  setOptions(values: Record<string, unknown>): Promise<string | undefined>;
  /** The worker died or was stopped after it was ready (crash, exit, out of memory, busy too long). */
  crashed(message: string): void;
  /** The script acts beyond itself (shutdown, replay). Resolve to an error message to refuse. */
  act?(action: string, flows: ReplayFlow[]): Promise<string | undefined>;
  /** The script injects into the TCP flow with id `flow` outside a hook (shape checked, nothing else). */
  inject?(flow: string, toClient: boolean, content: Uint8Array): void;
}

/** How a script worker is started and watched. */
export interface WorkerLimits {
  /** How long loading (module graph and top-level code) may take. */
  loadTimeoutMs: number;
  /** How long the worker's event loop may be blocked (a busy hook, timer, load...) before it is stopped. */
  busyTimeoutMs: number;
  /** Heap limit (V8 old generation) in MiB. */
  heapMb: number;
  /** Grants beyond Deno's permissions, told to the worker (see spec.ts CAPABILITY_NAMES). */
  caps?: string[];
}

interface Pending {
  resolve(r: Reply): void;
  reject(e: Error): void;
  started: number;
  what: string;
  timeoutMs: number;
}

/** Longest log line kept from a script (longer ones are cut). */
const MAX_LOG_LINE = 16 * 1024;
/** Log lines a script may write per second; the rest are dropped and counted. */
const MAX_LOG_LINES_PER_SECOND = 1000;

/** A running script worker. */
export class WorkerHost {
  /** The sandbox shell (sandbox.ts); the script's worker runs inside it. */
  readonly worker: Worker;
  /** Hooks the script handles (after {@link ready}). */
  hooks = new Set<string>();
  /** Hooks the script defines that sandboxed scripts cannot handle. */
  unsupported: string[] = [];
  /** Resolves when the script module is loaded; rejects with the load error. */
  readonly ready: Promise<void>;
  /** The connection records this worker has. */
  readonly conns = new ConnRefs();
  /** The WebSocket flows this worker keeps between hooks (see wsflows.ts). */
  readonly wsFlows = new WsFlowRefs();
  /** The fast lane to this worker (see ring.ts). */
  readonly ring = new RingWriter();
  readonly #port: MessagePort;
  readonly #beat = new Int32Array(new SharedArrayBuffer(16));
  #lastBeat = -1;
  #lastBeatAt = 0;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  /** performance.now() as of the watchdog's last tick: call start times need no finer precision. */
  #clock = 0;
  #dead = false;
  #isReady = false;
  #events: WorkerHostEvents;
  readonly #limits: WorkerLimits;
  readonly #outbox: Outbox<Sequenced<HostMessage>>;
  /** The sequence number of the last message sent. */
  #seq = 0;
  #logWindow = 0;
  #logCount = 0;
  #logDropped = 0;

  /**
   * Start the worker for the script at `scriptPath`. `permissions` are the script's Deno permissions, read
   * access to the modules it loads included (see imports.ts `sandboxReads`).
   */
  constructor(
    scriptPath: string,
    args: string[],
    permissions: WorkerPermissions,
    events: WorkerHostEvents,
    limits: WorkerLimits,
  ) {
    this.#events = events;
    this.#limits = limits;
    const channel = new MessageChannel();
    this.#port = channel.port1;
    this.#outbox = new Outbox<Sequenced<HostMessage>>(
      (m, transfer) => this.#port.postMessage(m, transfer),
      (m, e) => this.#sendFailed(m, e),
    );
    const name = scriptPath.slice(scriptPath.lastIndexOf("/") + 1);
    this.worker = new Worker(SANDBOX, {
      type: "module",
      name,
      // deno-lint-ignore no-explicit-any
      deno: { permissions: permissions as any },
    } as WorkerOptions);
    const init: SandboxInit = {
      entry: `data:application/javascript,${encodeURIComponent(entrySource())}`,
      name,
      heapMb: limits.heapMb,
      data: {
        port: channel.port2,
        url: new URL(`file://${scriptPath}`).href,
        args,
        beat: this.#beat.buffer as SharedArrayBuffer,
        heapMb: limits.heapMb,
        caps: limits.caps ?? [],
      },
    };
    this.worker.postMessage(init, [channel.port2]);
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
        new Error(`loading took longer than ${limits.loadTimeoutMs / 1000}s (top-level code still running)`),
      );
      this.terminate();
    }, limits.loadTimeoutMs);
    /** The worker is gone or must go: before ready a load error, after it a crash. */
    const ended = (message: string) => {
      if (this.#dead) return;
      if (!this.#isReady) {
        clearTimeout(loadTimer);
        readyReject(new Error(message));
        this.terminate();
        return;
      }
      this.terminate(new ScriptCallError("crash", `worker crashed: ${message}`));
      this.#events.crashed(message);
    };
    this.#ended = ended;
    const receive = (m: WorkerMessage) => {
      if (m === null || typeof m !== "object") return;
      switch (m.t) {
        case "ready":
          if (this.#isReady || !Array.isArray(m.hooks) || !Array.isArray(m.unsupported)) return;
          this.hooks = new Set(m.hooks.filter((h) => typeof h === "string"));
          this.unsupported = m.unsupported.filter((h) => typeof h === "string").map(escapeControl);
          this.#isReady = true;
          // the heartbeat counts from now: loading may have blocked it
          this.#lastBeatAt = performance.now();
          clearTimeout(loadTimer);
          // before any flow (the worker listens from now on)
          this.#outbox.send({ t: "ring", sab: this.ring.buffer }, [], false);
          readyResolve();
          return;
        case "loaderror":
          ended(escapeControl(stripAnsi(String(m.msg))));
          return;
        case "log":
          this.#log(m.level, m.msg);
          return;
        case "reply": {
          const p = this.#pending.get(m.id);
          if (!p) return;
          this.#pending.delete(m.id);
          p.resolve(m);
          return;
        }
        case "setoptions":
          if (typeof m.id !== "number" || m.values === null || typeof m.values !== "object") return;
          this.#events.setOptions(m.values).then(
            (error) => this.#post({ t: "reply", id: m.id, error }),
            (e) => this.#post({ t: "reply", id: m.id, error: String(e) }),
          );
          return;
        case "inject":
          if (typeof m.flow !== "string" || typeof m.toClient !== "boolean") return;
          if (!(m.content instanceof ArrayBuffer)) return;
          this.#events.inject?.(m.flow, m.toClient, new Uint8Array(m.content));
          return;
        case "act": {
          if (typeof m.id !== "number") return;
          const flows = Array.isArray(m.flows)
            ? m.flows.filter((f) => f !== null && typeof f === "object")
            : [];
          const act = this.#events.act;
          const reply = act
            ? act.call(this.#events, String(m.action), flows)
            : Promise.resolve(`${String(m.action)}: not available`);
          reply.then(
            (error) => this.#post({ t: "reply", id: m.id, error }),
            (e) => this.#post({ t: "reply", id: m.id, error: describeError(e) }),
          );
          return;
        }
      }
    };
    this.#port.onmessage = (e: MessageEvent<Envelope<WorkerMessage>>) => {
      let ms: WorkerMessage[];
      try {
        ms = unpackEnvelope(e.data);
        if (!Array.isArray(ms)) return;
      } catch {
        return; // not ours: the script posted it
      }
      for (const m of ms) receive(m);
    };
    this.worker.onmessage = (e: MessageEvent<SandboxEvent>) => {
      const m = e.data;
      if (m?.t !== "exit") return;
      ended(
        m.oom
          ? `ran out of memory (limit ${limits.heapMb} MiB, option script_memory_limit)`
          : escapeControl(stripAnsi(m.message)),
      );
    };
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      ended(stripAnsi(e.message ?? String(e)).replace(/^Uncaught (\(in promise\) )?/, ""));
    };
    this.#startWatchdog();
  }

  #ended: (message: string) => void;

  /** A log line from the worker: checked, escaped, rate-limited. */
  #log(level: unknown, msg: unknown): void {
    const lvl: LogLevel = (LOG_LEVELS as readonly unknown[]).includes(level) ? level as LogLevel : "info";
    const now = this.#clock;
    if (now - this.#logWindow >= 1000) {
      if (this.#logDropped > 0) {
        this.#events.log(
          "warn",
          `${this.#logDropped} log lines dropped (more than ${MAX_LOG_LINES_PER_SECOND}/s)`,
        );
      }
      this.#logWindow = now;
      this.#logCount = 0;
      this.#logDropped = 0;
    }
    if (++this.#logCount > MAX_LOG_LINES_PER_SECOND) {
      this.#logDropped++;
      return;
    }
    let text = typeof msg === "string" ? msg : String(msg);
    if (text.length > MAX_LOG_LINE) {
      text = text.slice(0, MAX_LOG_LINE) + ` ... (${text.length - MAX_LOG_LINE} more characters)`;
    }
    this.#events.log(lvl, escapeControl(text));
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
    if (m.q !== undefined && !this.#dead) this.#port.postMessage({ t: "skip", q: m.q });
    if (m.t === "flow" || m.t === "wsm" || m.t === "update" || m.t === "conn") this.conns.clear();
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
    this.#clock = this.#lastBeatAt = performance.now();
    // one coarse timer per worker, kept while the worker lives: a timer per call (or re-arming it whenever
    // the pending set empties) costs measurable throughput
    this.#watchdog = setInterval(() => {
      const now = this.#clock = performance.now();
      for (const [id, p] of this.#pending) {
        // `started` may be up to one tick early
        if (now - p.started > p.timeoutMs + WATCHDOG_TICK_MS) {
          this.#pending.delete(id);
          p.reject(new ScriptCallError("timeout", `${p.what} took longer than ${p.timeoutMs / 1000}s`));
        }
      }
      if (this.#dead) return;
      // the heartbeat: a worker whose event loop is blocked (a busy timer, load or hook) stops ticking. A hook
      // that blocks is usually caught by its own timeout first (above): this catches code outside hooks.
      if (Atomics.load(this.#beat, 1) === 1) {
        this.#ended(
          `ran out of memory (${Atomics.load(this.#beat, 2)} MiB used, limit ${this.#limits.heapMb} MiB, ` +
            "option script_memory_limit)",
        );
        return;
      }
      const beat = Atomics.load(this.#beat, 0);
      if (beat !== this.#lastBeat) {
        this.#lastBeat = beat;
        this.#lastBeatAt = now;
      } else if (this.#isReady && now - this.#lastBeatAt > this.#limits.busyTimeoutMs + BUSY_GRACE_MS) {
        this.#ended(
          `busy for more than ${this.#limits.busyTimeoutMs / 1000}s without returning to its event loop ` +
            "(a loop in a timer, hook or load; option script_timeout)",
        );
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
    this.#port.close();
    this.worker.terminate();
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
  }
}
