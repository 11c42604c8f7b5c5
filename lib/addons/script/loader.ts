/**
 * The ScriptLoader addon (mitmproxy's `addons/script.py`): owns the `scripts` (`-s`), `script_allow` and
 * `script_timeout` options, and keeps one {@link Script} child addon per script, in option order.
 */
import type { Master } from "../../master.ts";
import type { Loader } from "../manager.ts";
import { describeError } from "../log.ts";
import { OptionsError } from "../options.ts";
import { Script } from "./script.ts";
import {
  type AllowSpec,
  capabilitiesFor,
  parseAllowSpec,
  parseScriptSpec,
  permissionsFor,
  type ScriptSpec,
} from "./spec.ts";

/** Loads, orders, reloads and unloads the scripts given with `-s`. */
export class ScriptLoader {
  readonly name = "scriptloader";
  /** The loaded scripts (child addons: their hooks run in this order). */
  addons: Script[] = [];
  readonly #master: Master;
  /** Watch scripts for changes (tests may turn it off). */
  watch: boolean;

  constructor(master: Master, opts: { watch?: boolean } = {}) {
    this.#master = master;
    this.watch = opts.watch ?? true;
  }

  load(loader: Loader): void {
    loader.addOption(
      "scripts",
      "strs",
      [],
      'Execute a script (TypeScript or JavaScript) in a sandboxed worker. Arguments follow the path: -s "script.ts arg1 arg2".',
    );
    loader.addOption(
      "script_allow",
      "strs",
      [],
      'Grant permissions to scripts, e.g. "net=127.0.0.1:8000,read=./data", or for one script: "script.ts:net". ' +
        "Scripts get no permissions otherwise.",
    );
    loader.addOption(
      "script_timeout",
      "int",
      5,
      "Seconds a script hook may run before its worker is terminated and restarted.",
    );
    loader.addOption(
      "script_memory_limit",
      "int",
      512,
      "Heap limit of each script's worker in MiB. A script that reaches it is stopped and restarted " +
        "(the proxy lives on).",
    );
    loader.addOption(
      "script_typecheck",
      "bool",
      true,
      "Type-check scripts in the background when they (re)load and log type errors with file:line " +
        "(needs the deno CLI: from source only).",
    );
  }

  async configure(updated: Set<string>): Promise<void> {
    const opts = this.#master.options;
    if (updated.has("script_timeout") && opts.get<number>("script_timeout") < 1) {
      throw new OptionsError('Option "script_timeout": must be at least 1 second');
    }
    if (updated.has("script_memory_limit") && opts.get<number>("script_memory_limit") < 32) {
      throw new OptionsError('Option "script_memory_limit": must be at least 32 (MiB)');
    }
    if (!updated.has("scripts") && !updated.has("script_allow")) return;
    const specs: ScriptSpec[] = opts.get<string[]>("scripts").map((s) => parseScriptSpec(s));
    const seen = new Set<string>();
    for (const s of specs) {
      if (seen.has(s.path)) throw new OptionsError("Duplicate script");
      seen.add(s.path);
    }
    const allows: AllowSpec[] = opts.get<string[]>("script_allow").map((s) => parseAllowSpec(s));
    const existing = new Map(this.addons.map((s) => [s.spec.spec, s]));
    for (const s of specs) {
      if (existing.has(s.spec)) continue;
      if (/\.py$/i.test(s.path)) {
        throw new OptionsError(
          `Option "scripts": ${s.path} is a Python script; mitmdeno runs TypeScript or JavaScript addons with ` +
            'the same event names: port it (docs/scripts.md, "Porting a mitmproxy script")',
        );
      }
      try {
        if (!Deno.statSync(s.path).isFile) throw new Error();
      } catch {
        throw new OptionsError(`No such script: ${s.path}`);
      }
    }
    const wanted = new Set(specs.map((s) => s.spec));
    // removed scripts get done
    for (const old of this.addons) {
      if (!wanted.has(old.spec.spec)) {
        await old.done();
        this.#master.log.info(`Unloaded script ${old.spec.path}`);
      }
    }
    const next: Script[] = [];
    const fresh: Script[] = [];
    for (const s of specs) {
      const perms = permissionsFor(s.path, allows);
      const caps = capabilitiesFor(s.path, allows);
      const old = existing.get(s.spec);
      if (old) {
        next.push(old);
        if (
          JSON.stringify(old.permissions) !== JSON.stringify(perms) || old.caps.join() !== caps.join()
        ) {
          old.permissions = perms;
          old.caps = caps;
          await old.restart();
        }
        continue;
      }
      const script = new Script(this.#master, s, perms, this.watch);
      script.caps = caps;
      next.push(script);
      fresh.push(script);
    }
    this.addons = next;
    this.#master.addons.invalidate();
    for (const script of fresh) {
      try {
        await script.load(this.#master.addons.loader(script));
        await this.#master.options.processDeferred();
        await script.configure(new Set(opts.specs().map((s) => s.name)));
        if (this.#master.isRunning) await script.running();
      } catch (e) {
        // an OptionsError names the option (and, raised by the script, its own file:line): no host frame
        const why = e instanceof OptionsError ? e.message : describeError(e);
        this.#master.log.error(`error in script ${script.spec.path}: ${why}`);
      }
    }
  }
}
