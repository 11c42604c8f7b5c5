/**
 * Child-process helpers for the benchmark harness: spawn a long-running process in its own process
 * group, capture (a bounded tail of) its output, wait for a TCP port or a stdout line with a timeout,
 * and stop it (SIGTERM, then SIGKILL) including any grandchildren.
 *
 * Every process spawned through {@linkcode spawnManaged} is tracked in a registry so that
 * {@linkcode stopAll} (called from `finally` blocks and signal handlers) can reap everything.
 *
 * @module
 */

/** Maximum number of bytes of stdout/stderr kept per process (for error messages). */
const TAIL_BYTES = 16 * 1024;

/** Options for {@linkcode spawnManaged}. */
export interface SpawnOptions {
  /** Human readable name used in error messages. */
  name: string;
  /** Working directory of the child. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * Keep the child's stdin as an open pipe (default true). Children that exit on stdin EOF (such as
   * `origin.ts`) then die together with the benchmark even if it is killed with SIGKILL.
   */
  pipeStdin?: boolean;
}

/** A spawned child process with captured output. */
export interface ManagedProcess {
  /** Name given at spawn time. */
  readonly name: string;
  /** Full argv. */
  readonly cmd: readonly string[];
  /** PID of the direct child (also its process group id). */
  readonly pid: number;
  /** Resolves when the child exits. */
  readonly status: Promise<Deno.CommandStatus>;
  /** True once the child has exited. */
  exited(): boolean;
  /** Last bytes of stdout, decoded. */
  stdoutTail(): string;
  /** Last bytes of stderr, decoded. */
  stderrTail(): string;
  /**
   * Resolves with the first stdout line matching `re` (its match array), rejects on timeout or if
   * the process exits first.
   */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM the process group, SIGKILL after `graceMs`; resolves once the child is gone. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const registry = new Set<ManagedProcess>();

/** Stop every process started by {@linkcode spawnManaged} that is still registered. */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...registry].map((p) => p.stop(graceMs)));
}

/**
 * Install SIGINT/SIGTERM handlers that stop all managed children and exit with 130/143.
 * Returns a function removing the handlers.
 */
export function installSignalCleanup(): () => void {
  const handlers: [Deno.Signal, () => void][] = [];
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    const h = () => {
      console.error(`\nbench: got ${sig}, stopping child processes...`);
      stopAll(1000).finally(() => Deno.exit(code));
    };
    Deno.addSignalListener(sig, h);
    handlers.push([sig, h]);
  }
  return () => {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  };
}

/** Returns the absolute path of `name` if it is an executable on PATH (or an existing path). */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "").split(":").filter(Boolean).map((d) => `${d}/${name}`);
  for (const c of candidates) {
    try {
      const st = Deno.statSync(c);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return c;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Ask the kernel for a currently free TCP port on `hostname` (tiny race window, fine for benchmarks). */
export function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

class Tail {
  #chunks: Uint8Array[] = [];
  #size = 0;
  push(c: Uint8Array) {
    this.#chunks.push(c);
    this.#size += c.length;
    while (this.#size - this.#chunks[0].length >= TAIL_BYTES) this.#size -= this.#chunks.shift()!.length;
  }
  text(): string {
    const all = new Uint8Array(this.#size);
    let o = 0;
    for (const c of this.#chunks) {
      all.set(c, o);
      o += c.length;
    }
    return new TextDecoder().decode(all.subarray(Math.max(0, all.length - TAIL_BYTES)));
  }
}

/**
 * Spawn `cmd` as a detached process (own process group, so `stop()` also reaches grandchildren such
 * as wrapper scripts) with stdout/stderr piped and continuously drained into bounded tails.
 */
export function spawnManaged(cmd: readonly string[], opts: SpawnOptions): ManagedProcess {
  if (cmd.length === 0) throw new Error(`${opts.name}: empty command`);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: opts.cwd,
      env: opts.env,
      stdin: opts.pipeStdin === false ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (e) {
    throw new Error(`${opts.name}: failed to spawn ${JSON.stringify(cmd)}: ${(e as Error).message}`);
  }
  const outTail = new Tail();
  const errTail = new Tail();
  let exited = false;
  let stdoutClosed = false;
  let lineBuf = "";
  const recentLines: string[] = [];
  const lineWaiters = new Set<(line: string | null) => void>();
  const decoder = new TextDecoder();

  const drainOut = (async () => {
    try {
      for await (const chunk of child.stdout) {
        outTail.push(chunk);
        lineBuf += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = lineBuf.indexOf("\n")) >= 0) {
          const line = lineBuf.slice(0, nl).replace(/\r$/, "");
          lineBuf = lineBuf.slice(nl + 1);
          recentLines.push(line);
          if (recentLines.length > 200) recentLines.shift();
          for (const w of [...lineWaiters]) w(line);
        }
        if (lineBuf.length > TAIL_BYTES) lineBuf = lineBuf.slice(-TAIL_BYTES);
      }
    } catch { /* stream closed */ }
    stdoutClosed = true;
    for (const w of [...lineWaiters]) w(null);
  })();
  const drainErr = (async () => {
    try {
      for await (const chunk of child.stderr) errTail.push(chunk);
    } catch { /* stream closed */ }
  })();

  const status = child.status.then(async (s) => {
    exited = true;
    registry.delete(proc);
    await Promise.allSettled([drainOut, drainErr]);
    return s;
  });

  let stopping: Promise<void> | undefined;
  const signalGroup = (sig: Deno.Signal) => {
    try {
      Deno.kill(-child.pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch { /* already gone */ }
    }
  };

  const proc: ManagedProcess = {
    name: opts.name,
    cmd,
    pid: child.pid,
    status,
    exited: () => exited,
    stdoutTail: () => outTail.text(),
    stderrTail: () => errTail.text(),
    waitForLine(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined = undefined;
        const waiter = (line: string | null) => {
          if (line === null) {
            finish();
            reject(new Error(`${opts.name} exited before printing ${re}\n${describeOutput(proc)}`));
            return;
          }
          const m = line.match(re);
          if (m) {
            finish();
            resolve(m);
          }
        };
        const finish = () => {
          clearTimeout(timer);
          lineWaiters.delete(waiter);
        };
        timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `${opts.name}: timed out after ${timeoutMs} ms waiting for ${re}\n${describeOutput(proc)}`,
            ),
          );
        }, timeoutMs);
        for (const line of recentLines) {
          const m = line.match(re);
          if (m) {
            finish();
            return resolve(m);
          }
        }
        if (stdoutClosed) return waiter(null);
        lineWaiters.add(waiter);
      });
    },
    stop(graceMs = 3000) {
      if (stopping) return stopping;
      stopping = (async () => {
        try {
          await child.stdin?.close();
        } catch { /* not piped / already closed */ }
        if (!exited) {
          signalGroup("SIGTERM");
          let timer: ReturnType<typeof setTimeout> | undefined = undefined;
          const killed = await Promise.race([
            status.then(() => false),
            new Promise<boolean>((r) => timer = setTimeout(() => r(true), graceMs)),
          ]);
          clearTimeout(timer);
          if (killed) signalGroup("SIGKILL");
          await status;
        } else {
          // The direct child is gone; make sure nothing it left in its group survives.
          signalGroup("SIGKILL");
        }
        registry.delete(proc);
      })();
      return stopping;
    },
  };
  registry.add(proc);
  return proc;
}

/** Formats the captured output tails of `p` for error messages. */
export function describeOutput(p: ManagedProcess): string {
  const parts: string[] = [`  command: ${p.cmd.join(" ")}`];
  const out = p.stdoutTail().trim();
  const err = p.stderrTail().trim();
  if (out) parts.push(`  stdout (tail):\n${indent(out.slice(-2000))}`);
  if (err) parts.push(`  stderr (tail):\n${indent(err.slice(-2000))}`);
  return parts.join("\n");
}

function indent(s: string): string {
  return s.split("\n").map((l) => `    ${l}`).join("\n");
}

/**
 * Poll until `hostname:port` accepts a TCP connection. Rejects after `timeoutMs`, or immediately
 * (with the process's output) if `proc` exits first.
 */
export async function waitForPort(
  hostname: string,
  port: number,
  timeoutMs: number,
  proc?: ManagedProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = "";
  while (Date.now() < deadline) {
    if (proc?.exited()) {
      const s = await proc.status;
      throw new Error(
        `${proc.name} exited (code ${s.code}${s.signal ? `, ${s.signal}` : ""}) before listening on ` +
          `${hostname}:${port}\n${describeOutput(proc)}`,
      );
    }
    try {
      const conn = await Deno.connect({ hostname, port });
      conn.close();
      return;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `${proc?.name ?? "process"}: port ${hostname}:${port} not accepting connections after ${timeoutMs} ms ` +
      `(last error: ${lastErr})${proc ? `\n${describeOutput(proc)}` : ""}`,
  );
}

/**
 * Split a command line into argv, honouring single/double quotes and backslash escapes (no other
 * shell features). Used for `--proxy-cmd`.
 */
export function splitCommand(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let has = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (c === "\\" && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has) out.push(cur);
      cur = "";
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in command: ${s}`);
  if (has) out.push(cur);
  return out;
}
