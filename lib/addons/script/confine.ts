/**
 * Locks down a script worker's globals before the script module is imported: what Deno permissions do not
 * cover. Runs inside the worker (see worker.ts).
 *
 * - Starting workers is refused. A worker started by the script would have no heap limit, and a V8 isolate
 *   that reaches its heap limit without one aborts the whole process. Both `Worker` classes (the web one and
 *   `node:worker_threads`') are derived classes: their `super()` call goes through the class's prototype,
 *   which is replaced by a function that throws; the classes are then frozen so the script cannot undo it.
 * - Signalling the proxy's own process is refused: Deno lets any code send a signal to its own pid without
 *   the `run` permission (`Deno.kill(Deno.pid, "SIGTERM")` ends the proxy).
 * - Console and standard output go to the script's log instead of the terminal (the host escapes control
 *   characters there, so a script cannot write terminal escapes or forge log lines); standard input reads
 *   nothing.
 * - `self` and `close()` exist as in a web worker (`close()` ends the worker, which is then restarted).
 */
import process from "node:process";
import { Worker as NodeWorker } from "node:worker_threads";

/** Where confined output goes: one call per line group, at the level it was written with. */
export type ConfinedLog = (level: "error" | "warn" | "info" | "debug", msg: string) => void;

function refuse(what: string): never {
  throw new Deno.errors.NotCapable(`${what} is not available to sandboxed scripts`);
}

function lock(obj: object, prop: string, value: unknown): void {
  Object.defineProperty(obj, prop, { value, writable: false, configurable: false, enumerable: true });
}

/** Make `new C()` throw for a derived class `C`, for good. */
function disableConstructor(C: unknown, what: string): void {
  if (typeof C !== "function") return;
  Object.setPrototypeOf(C, function () {
    refuse(what);
  });
  Object.freeze(C);
}

function formatArgs(args: unknown[]): string {
  return args.map((a) => (typeof a === "string" ? a : Deno.inspect(a))).join(" ");
}

/** A console whose every method writes to `log`. */
function confinedConsole(log: ConfinedLog): Console {
  const counts = new Map<string, number>();
  const timers = new Map<string, number>();
  const c = {
    log: (...a: unknown[]) => log("info", formatArgs(a)),
    info: (...a: unknown[]) => log("info", formatArgs(a)),
    debug: (...a: unknown[]) => log("debug", formatArgs(a)),
    warn: (...a: unknown[]) => log("warn", formatArgs(a)),
    error: (...a: unknown[]) => log("error", formatArgs(a)),
    trace: (...a: unknown[]) => log("debug", formatArgs(a) + "\n" + (new Error().stack ?? "")),
    dir: (o: unknown) => log("info", Deno.inspect(o)),
    dirxml: (...a: unknown[]) => log("info", formatArgs(a)),
    table: (o: unknown) => log("info", Deno.inspect(o)),
    assert: (cond: unknown, ...a: unknown[]) => {
      if (!cond) log("error", "Assertion failed" + (a.length ? ": " + formatArgs(a) : ""));
    },
    count: (label = "default") => {
      const n = (counts.get(label) ?? 0) + 1;
      counts.set(label, n);
      log("info", `${label}: ${n}`);
    },
    countReset: (label = "default") => void counts.delete(label),
    time: (label = "default") => void timers.set(label, performance.now()),
    timeLog: (label = "default", ...a: unknown[]) => {
      const t = timers.get(label);
      if (t !== undefined) log("info", `${label}: ${(performance.now() - t).toFixed(3)}ms ${formatArgs(a)}`);
    },
    timeEnd: (label = "default") => {
      const t = timers.get(label);
      timers.delete(label);
      if (t !== undefined) log("info", `${label}: ${(performance.now() - t).toFixed(3)}ms`);
    },
    group: (...a: unknown[]) => a.length && log("info", formatArgs(a)),
    groupCollapsed: (...a: unknown[]) => a.length && log("info", formatArgs(a)),
    groupEnd: () => {},
    clear: () => {},
    profile: () => {},
    profileEnd: () => {},
    timeStamp: () => {},
  };
  return c as unknown as Console;
}

/** A stand-in for `Deno.stdout`/`Deno.stderr`: bytes become log lines. */
function confinedWriter(log: ConfinedLog, level: "info" | "error") {
  const dec = new TextDecoder();
  const write = (p: Uint8Array) => {
    const s = dec.decode(p).replace(/\n$/, "");
    if (s) log(level, s);
    return p.byteLength;
  };
  return {
    write: (p: Uint8Array) => Promise.resolve(write(p)),
    writeSync: write,
    close() {},
    isTerminal: () => false,
    writable: new WritableStream<Uint8Array>({ write: (p) => void write(p) }),
    get rid(): number {
      return refuse("the terminal");
    },
  };
}

/** A stand-in for node's `process.stdout`/`process.stderr`. */
function confinedNodeStream(log: ConfinedLog, level: "info" | "error") {
  const w = confinedWriter(log, level);
  return {
    write(chunk: string | Uint8Array, ...rest: unknown[]) {
      w.writeSync(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      if (cb) queueMicrotask(cb);
      return true;
    },
    end() {},
    on() {
      return this;
    },
    once() {
      return this;
    },
    isTTY: false,
    columns: 80,
    writable: true,
  };
}

/** Lock the worker down (see the module doc). Call once, before the script is imported. */
export function confine(log: ConfinedLog): void {
  disableConstructor(NodeWorker, "starting a worker");
  disableConstructor((globalThis as { Worker?: unknown }).Worker, "starting a worker");

  const ownPid = Deno.pid;
  const realKill = Deno.kill.bind(Deno);
  const isSelf = (pid: number) => pid === ownPid || pid === 0 || pid === -ownPid || pid === -1;
  lock(Deno, "kill", (pid: number, signal?: Deno.Signal) => {
    if (isSelf(pid)) refuse("signalling the proxy's own process");
    return realKill(pid, signal);
  });
  const realProcessKill = process.kill.bind(process);
  lock(process, "kill", (pid: number, signal?: string | number) => {
    if (isSelf(pid)) refuse("signalling the proxy's own process");
    return realProcessKill(pid, signal);
  });

  lock(globalThis, "console", confinedConsole(log));
  lock(Deno, "stdout", confinedWriter(log, "info"));
  lock(Deno, "stderr", confinedWriter(log, "error"));
  lock(Deno, "stdin", {
    read: () => Promise.resolve(null),
    readSync: () => null,
    close() {},
    isTerminal: () => false,
    setRaw: () => refuse("the terminal"),
    readable: new ReadableStream<Uint8Array>({ start: (c) => c.close() }),
    get rid(): number {
      return refuse("the terminal");
    },
  });
  lock(process, "stdout", confinedNodeStream(log, "info"));
  lock(process, "stderr", confinedNodeStream(log, "error"));

  const g = globalThis as Record<string, unknown>;
  if (g.self === undefined) lock(globalThis, "self", globalThis);
  if (typeof g.close !== "function") lock(globalThis, "close", () => Deno.exit(0));
}
