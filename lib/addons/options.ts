/**
 * Typed options, declared by the addons that own them (mitmproxy's `optmanager.py`).
 *
 * Values change only through {@link Options.update} / {@link Options.set}; each change runs the
 * `configure` hook of every addon through `onChange`. If that throws {@link OptionsError}, the whole
 * update is rolled back and the error re-thrown.
 */

/** The option types mitmproxy has. "strs" is `Sequence[str]`. */
export type OptionType = "bool" | "str" | "int" | "optional str" | "optional int" | "strs";

/** Every {@link OptionType}. */
export const OPTION_TYPES: readonly OptionType[] = [
  "bool",
  "str",
  "int",
  "optional str",
  "optional int",
  "strs",
];

/** One declared option. */
export interface OptionSpec {
  /** The option's name (snake_case, as in mitmproxy). */
  name: string;
  /** Its value type. */
  type: OptionType;
  /** The value before anything sets it. */
  default: unknown;
  /** One line of help (shown by --help and --options). */
  help: string;
  /** The values allowed, for `str` options with a fixed set. */
  choices?: readonly string[];
  /** A credential (e.g. `proxyauth`): never shown to sandboxed scripts. */
  secret?: boolean;
}

/** Valid option names: letters, digits and underscores, starting with a letter. */
const OPTION_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** A bad option value, or an addon refusing a configuration. The message names the option. */
export class OptionsError extends Error {
  /** An error naming the option and what is allowed. */
  constructor(message: string) {
    super(message);
    this.name = "OptionsError";
  }
}

function describeType(spec: OptionSpec): string {
  if (spec.choices) return `one of ${spec.choices.join(", ")}`;
  switch (spec.type) {
    case "bool":
      return "true or false";
    case "int":
      return "an integer";
    case "optional int":
      return "an integer (or nothing to unset)";
    case "str":
      return "a string";
    case "optional str":
      return "a string (or nothing to unset)";
    case "strs":
      return "a list of strings";
  }
}

/** Check a JS value against an option's type; returns the value or throws OptionsError. */
export function typecheck(spec: OptionSpec, value: unknown): unknown {
  const bad = () =>
    new OptionsError(
      `Option "${spec.name}": expected ${describeType(spec)}, got ${JSON.stringify(value)}`,
    );
  switch (spec.type) {
    case "bool":
      if (typeof value !== "boolean") throw bad();
      break;
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value)) throw bad();
      break;
    case "optional int":
      if (value !== null && (typeof value !== "number" || !Number.isInteger(value))) throw bad();
      break;
    case "str":
      if (typeof value !== "string") throw bad();
      break;
    case "optional str":
      if (value !== null && typeof value !== "string") throw bad();
      break;
    case "strs":
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw bad();
      return [...value];
  }
  if (spec.choices && value !== null && !spec.choices.includes(value as string)) throw bad();
  return value;
}

/** Parse command-line strings for one option (all values given for it in one call). */
export function parseValues(spec: OptionSpec, values: (string | undefined)[]): unknown {
  const name = spec.name;
  if (spec.type === "strs") {
    const vs = values.filter((v): v is string => v !== undefined);
    return vs;
  }
  if (values.length > 1) throw new OptionsError(`Option "${name}": received multiple values, expected one`);
  const v = values[0];
  switch (spec.type) {
    case "bool": {
      if (v === undefined || v === "" || v === "true") return true;
      if (v === "false") return false;
      throw new OptionsError(`Option "${name}": expected true, false or toggle, got "${v}"`);
    }
    case "int":
    case "optional int": {
      if (v === undefined || v === "") {
        if (spec.type === "optional int") return null;
        throw new OptionsError(`Option "${name}" is required: expected an integer`);
      }
      if (!/^-?\d+$/.test(v.trim())) {
        throw new OptionsError(`Option "${name}": expected an integer, got "${v}"`);
      }
      return Number(v);
    }
    case "str":
    case "optional str": {
      if (v === undefined) {
        if (spec.type === "optional str") return null;
        throw new OptionsError(`Option "${name}" is required: expected a string`);
      }
      if (spec.choices && !spec.choices.includes(v)) {
        throw new OptionsError(
          `Option "${name}": "${v}" is not allowed, expected one of ${spec.choices.join(", ")}`,
        );
      }
      return v;
    }
  }
}

/** The option store. Declared options are also readable as properties: `options.anticache`. */
export class Options {
  #specs = new Map<string, OptionSpec>();
  /** Who declared each option (an addon name). */
  #owners = new Map<string, string>();
  #values = new Map<string, unknown>();
  #deferred = new Map<string, (string | undefined)[]>();
  /** Counts changes of values: anything derived from options may cache by it. */
  version = 0;
  /** Called with the names of changed options; may throw OptionsError to veto. */
  onChange: (updated: Set<string>) => void | Promise<void> = () => {};
  // Declared options appear as properties.
  /** Option values by name (also readable as properties). */
  [name: string]: any;

  /**
   * Declare an option, owned by `owner` (an addon name; the first declaration's owner stays). Re-declaring
   * with the same signature is a no-op. Throws OptionsError for a bad name, type or default.
   */
  add(spec: OptionSpec, owner?: string): void {
    if (typeof spec.name !== "string" || !OPTION_NAME.test(spec.name)) {
      throw new OptionsError(`Invalid option name ${JSON.stringify(spec.name)}`);
    }
    if (!OPTION_TYPES.includes(spec.type)) {
      throw new OptionsError(`Option "${spec.name}": unknown type ${JSON.stringify(spec.type)}`);
    }
    if (
      spec.choices !== undefined &&
      !(Array.isArray(spec.choices) && spec.choices.every((c) => typeof c === "string"))
    ) {
      throw new OptionsError(`Option "${spec.name}": choices must be a list of strings`);
    }
    const old = this.#specs.get(spec.name);
    if (old) {
      if (old.type === spec.type && JSON.stringify(old.default) === JSON.stringify(spec.default)) return;
    }
    typecheck(spec, spec.default);
    if (owner !== undefined && !this.#owners.has(spec.name)) this.#owners.set(spec.name, owner);
    this.#specs.set(spec.name, spec);
    this.#values.set(spec.name, Array.isArray(spec.default) ? [...spec.default] : spec.default);
    this.version++;
    if (!Object.prototype.hasOwnProperty.call(this, spec.name)) {
      Object.defineProperty(this, spec.name, {
        get: () => this.#values.get(spec.name),
        set: () => {
          throw new OptionsError(
            `Option "${spec.name}": use options.update({ ${spec.name}: ... }) to change it`,
          );
        },
        enumerable: true,
        configurable: true,
      });
    }
  }

  /** Whether an option is declared. */
  has(name: string): boolean {
    return this.#specs.has(name);
  }

  /** The addon that declared an option first (undefined for unknown or ownerless options). */
  owner(name: string): string | undefined {
    return this.#owners.get(name);
  }

  /** The declaration of an option. */
  spec(name: string): OptionSpec | undefined {
    return this.#specs.get(name);
  }

  /** All declarations, sorted by name. */
  specs(): OptionSpec[] {
    return [...this.#specs.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The current value of an option (throws for unknown names). */
  get<T = unknown>(name: string): T {
    if (!this.#specs.has(name)) throw new OptionsError(`Unknown option "${name}"`);
    return this.#values.get(name) as T;
  }

  /** The default of an option. */
  default(name: string): unknown {
    return this.#specs.get(name)?.default;
  }

  /** Set typed values; runs configure; rolls back and re-throws on OptionsError. */
  async update(values: Record<string, unknown>): Promise<void> {
    const updated = new Set<string>();
    const previous = new Map<string, unknown>();
    // validate every key first, so a bad one leaves all values untouched
    const checked = new Map<string, unknown>();
    for (const [k, v] of Object.entries(values)) {
      const spec = this.#specs.get(k);
      if (!spec) throw new OptionsError(`Unknown option "${k}"`);
      checked.set(k, typecheck(spec, v));
    }
    for (const [k, v] of checked) {
      previous.set(k, this.#values.get(k));
      updated.add(k);
      this.#values.set(k, v);
    }
    if (updated.size === 0) return;
    this.version++;
    try {
      await this.onChange(updated);
    } catch (e) {
      for (const [k, v] of previous) this.#values.set(k, v);
      this.version++;
      if (e instanceof OptionsError) {
        try {
          await this.onChange(new Set(previous.keys()));
        } catch { /* restoring the previous values must not fail twice */ }
      }
      throw e;
    }
  }

  /**
   * Apply `name=value` strings, as `--set` does: repeated names build a list, a bare name means
   * true / unset / empty list. Unknown names are kept and applied once an addon declares them.
   */
  async set(specs: string[], defer = true): Promise<void> {
    const grouped = new Map<string, (string | undefined)[]>();
    for (const s of specs) {
      const eq = s.indexOf("=");
      const name = (eq === -1 ? s : s.slice(0, eq)).trim().replaceAll("-", "_");
      const value = eq === -1 ? undefined : s.slice(eq + 1);
      if (!grouped.has(name)) grouped.set(name, []);
      grouped.get(name)!.push(value);
    }
    const typed: Record<string, unknown> = {};
    for (const [name, vals] of grouped) {
      const spec = this.#specs.get(name);
      if (!spec) {
        if (!defer) throw new OptionsError(`Unknown option "${name}"`);
        this.#deferred.set(name, vals);
        continue;
      }
      if (spec.type === "bool" && vals.length === 1 && vals[0] === "toggle") {
        typed[name] = !this.#values.get(name);
      } else typed[name] = parseValues(spec, vals);
    }
    await this.update(typed);
  }

  /** Apply deferred `--set` values for options that are now declared. */
  async processDeferred(): Promise<void> {
    const ready: string[] = [];
    for (const [name, vals] of this.#deferred) {
      if (!this.#specs.has(name)) continue;
      this.#deferred.delete(name);
      for (const v of vals) ready.push(v === undefined ? name : `${name}=${v}`);
    }
    if (ready.length) await this.set(ready, false);
  }

  /** Names given with --set that no addon declared (yet). */
  get deferredNames(): string[] {
    return [...this.#deferred.keys()];
  }

  /** All current values as a plain object. */
  toObject(): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    for (const s of this.specs()) o[s.name] = this.#values.get(s.name);
    return o;
  }
}
