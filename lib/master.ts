/**
 * The master: owns options, the addon chain, commands and the log, and runs the event loop's lifecycle
 * (`running` once servers are up, `done` at shutdown).
 */
import { AddonManager } from "./addons/manager.ts";
import type { Addon } from "./addons/manager.ts";
import { CommandManager } from "./addons/commands.ts";
import { Options } from "./addons/options.ts";
import { type LogEntry, Logger } from "./addons/log.ts";
import { ctx } from "./addons/ctx.ts";
import { declareCoreOptions } from "./proxy/core_options.ts";
import { ProxyCore } from "./proxy/core.ts";
import { registerBuiltinModes } from "./proxy/layers/modes.ts";

/** The core of a running mitmdeno. */
export class Master {
  /** The options of every addon. */
  readonly options: Options = new Options();
  /** The commands addons declared. */
  readonly commands: CommandManager = new CommandManager();
  /** The addon chain. */
  readonly addons: AddonManager;
  /** The log every addon writes to (`ctx.log`). */
  readonly log: Logger;
  /** The proxy core's per-master services: modes, layers from addons, connections, timers.
   * @ignore */
  readonly proxy: ProxyCore;
  /** Log entries are delivered to these (the termlog addon, tests). */
  readonly logListeners: ((e: LogEntry) => void)[] = [];
  /** Entries logged before anyone listened, replayed to the first listener. */
  #early: LogEntry[] = [];
  #shutdown: () => void = () => {};
  readonly #stopped: Promise<void>;
  #running = false;
  #errorsAtStartup = 0;

  constructor() {
    this.log = new Logger((e) => this.#emit(e));
    this.addons = new AddonManager(this);
    this.proxy = new ProxyCore(this);
    registerBuiltinModes(this.proxy);
    declareCoreOptions(this.options);
    this.options.onChange = (updated) => this.addons.trigger("configure", updated);
    this.#stopped = new Promise((r) => (this.#shutdown = r));
    ctx.master = this;
    ctx.options = this.options;
    ctx.log = this.log;
  }

  #emit(e: LogEntry): void {
    if (e.level === "error" && !this.#running) this.#errorsAtStartup++;
    if (this.logListeners.length === 0) {
      this.#early.push(e);
      return;
    }
    for (const l of this.logListeners) l(e);
  }

  /** Start receiving log entries (gets the ones logged so far first). */
  onLog(listener: (e: LogEntry) => void): void {
    this.logListeners.push(listener);
    const early = this.#early;
    this.#early = [];
    for (const e of early) listener(e);
  }

  /** Errors logged before `running`. */
  get errorsAtStartup(): number {
    return this.#errorsAtStartup;
  }

  /** Whether `running` has fired. */
  get isRunning(): boolean {
    return this.#running;
  }

  /** Add addons to the chain (fires load). */
  async addAddons(...addons: Addon[]): Promise<void> {
    await this.addons.add(...addons);
  }

  /** Fire `configure` with every option name (startup), then `running`. Returns once shut down. */
  async run(): Promise<void> {
    await this.addons.trigger("configure", new Set(this.options.specs().map((s) => s.name)));
    await this.addons.trigger("running");
    this.#running = true;
    if (this.#errorsAtStartup > 0 && this.exitOnStartupError) {
      this.log.error("Error logged during startup, exiting...");
      this.exitCode = 1;
      this.#shutdown();
    }
    await this.#stopped;
    await this.addons.trigger("done");
  }

  /** Exit (code 1) if an error was logged before the proxy was up, as mitmdump's errorcheck does. */
  exitOnStartupError = true;
  /** The process exit code the CLI should use. */
  exitCode = 0;

  /** Ask the master to stop; `run()` then fires `done` and returns. */
  shutdown(): void {
    this.#shutdown();
  }
}
