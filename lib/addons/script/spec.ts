/**
 * Parsing the two script options: a `scripts` entry (`"path/script.ts arg1 'arg 2'"`) and a
 * `script_allow` grant (`"[SCRIPT:]PERM[=VALUE,...][,PERM...]"`), into what a script worker needs.
 *
 * Grant syntax (documented in docs/scripts.md):
 * - `read=./data` grants read access to `./data` (paths are resolved against the current directory);
 *   `net=127.0.0.1:8000,api.example.com:443` grants two hosts: a comma-separated item that is not
 *   `name=...` and not a permission name continues the previous permission's list.
 * - a bare name (`net`, `env`) grants everything of that kind; `all` grants every permission the proxy
 *   itself has (use only for scripts you trust).
 * - without a `SCRIPT:` prefix a grant applies to every script; with one it applies to scripts whose path
 *   (resolved) or file name matches, e.g. `counter.ts:net=127.0.0.1:8000`.
 */
import { OptionsError } from "../options.ts";

/** The permission kinds a Deno worker can be given. */
export const PERMISSION_NAMES = ["env", "ffi", "import", "net", "read", "run", "sys", "write"] as const;
/** One of {@link PERMISSION_NAMES}. */
export type PermissionName = typeof PERMISSION_NAMES[number];

/**
 * Grants beyond Deno's permissions, for what a script's commands do outside the script: `shutdown`
 * (`ctx.master.shutdown()`) and `replay` (`ctx.master.commands.call("replay.client", flows)`).
 * Refused unless granted (or `all`).
 */
export const CAPABILITY_NAMES = ["shutdown", "replay"] as const;

/** One of {@link CAPABILITY_NAMES}. */
export type Capability = typeof CAPABILITY_NAMES[number];

function isCapability(s: string): s is Capability {
  return (CAPABILITY_NAMES as readonly string[]).includes(s);
}

/** Kinds whose values are file paths (resolved against the cwd). */
const PATH_KINDS = new Set<PermissionName>(["read", "write", "ffi", "run"]);

/** What one kind is granted: nothing, everything, or a list. */
export type Grant = boolean | string[];

/** A worker's permissions: "inherit" (the `all` grant) or one entry per kind (never `{}`: that inherits). */
export type WorkerPermissions = "inherit" | Record<PermissionName, Grant>;

/** A parsed `--script-allow` entry. */
export interface AllowSpec {
  /** The script it applies to, or null for all scripts. */
  script: string | null;
  all: boolean;
  grants: Partial<Record<PermissionName, Grant>>;
  /** Grants beyond Deno's permissions (see {@link CAPABILITY_NAMES}). */
  caps?: Capability[];
}

/** A parsed `scripts` entry. */
export interface ScriptSpec {
  /** As given (after trimming), the key used for duplicate detection and logging. */
  spec: string;
  /** Absolute path of the script file. */
  path: string;
  /** Its arguments. */
  args: string[];
}

/** Split a command line the way a POSIX shell would (quotes and backslashes), like Python's shlex. */
export function shellSplit(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new OptionsError(`Unbalanced quote in script specification: ${s}`);
  if (inWord) out.push(cur);
  return out;
}

/** Expand `~` and make a path absolute against `cwd`. */
export function absolutePath(p: string, cwd: string = Deno.cwd()): string {
  if (p === "~" || p.startsWith("~/")) p = (Deno.env.get("HOME") ?? "") + p.slice(1);
  if (p.startsWith("/")) return normalize(p);
  return normalize(`${cwd.replace(/\/+$/, "")}/${p}`);
}

function normalize(p: string): string {
  const parts: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return "/" + parts.join("/");
}

/** Parse one `scripts` entry: `path arg...` (quotes honoured, `~` expanded, relative to `cwd`). */
export function parseScriptSpec(spec: string, cwd?: string): ScriptSpec {
  const trimmed = spec.trim();
  const words = shellSplit(trimmed);
  if (words.length === 0) throw new OptionsError("Empty script specification");
  return { spec: trimmed, path: absolutePath(words[0], cwd), args: words.slice(1) };
}

function isPermissionName(s: string): s is PermissionName {
  return (PERMISSION_NAMES as readonly string[]).includes(s);
}

/** Parse one `--script-allow` entry. Throws OptionsError naming the problem. */
export function parseAllowSpec(spec: string, cwd?: string): AllowSpec {
  let rest = spec.trim();
  let script: string | null = null;
  const colon = rest.indexOf(":");
  if (colon > 0) {
    const head = rest.slice(0, colon);
    if (
      !head.includes("=") && !head.includes(",") && !isPermissionName(head) && !isCapability(head) &&
      head !== "all"
    ) {
      script = head;
      rest = rest.slice(colon + 1);
    }
  }
  const out: AllowSpec = { script, all: false, grants: {}, caps: [] };
  let current: PermissionName | null = null;
  for (const rawItem of rest.split(",")) {
    const item = rawItem.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    const name = eq === -1 ? item : item.slice(0, eq).trim();
    if (name === "all" && eq === -1) {
      out.all = true;
      current = null;
      continue;
    }
    if (isCapability(name) && eq === -1) {
      if (!out.caps!.includes(name)) out.caps!.push(name);
      current = null;
      continue;
    }
    if (isPermissionName(name)) {
      current = name;
      if (eq === -1) {
        out.grants[name] = true;
        continue;
      }
      const value = item.slice(eq + 1).trim();
      addValue(out, name, value, cwd);
      continue;
    }
    if (eq !== -1 || current === null) {
      throw new OptionsError(
        `script_allow: unknown permission "${name}" in "${spec}" (expected ${
          [...PERMISSION_NAMES, ...CAPABILITY_NAMES].join(", ")
        } or all)`,
      );
    }
    addValue(out, current, item, cwd);
  }
  if (!out.all && Object.keys(out.grants).length === 0 && out.caps!.length === 0) {
    throw new OptionsError(`script_allow: no permission in "${spec}"`);
  }
  return out;
}

function addValue(out: AllowSpec, name: PermissionName, value: string, cwd?: string): void {
  if (!value) throw new OptionsError(`script_allow: empty value for "${name}"`);
  const prev = out.grants[name];
  if (prev === true) return;
  const v =
    PATH_KINDS.has(name) && (value.startsWith(".") || value.startsWith("/") || value.startsWith("~") ||
        value.includes("/"))
      ? absolutePath(value, cwd)
      : value;
  out.grants[name] = [...(Array.isArray(prev) ? prev : []), v];
}

/** Whether `allow` applies to the script at absolute `path`. */
export function allowMatches(allow: AllowSpec, path: string, cwd?: string): boolean {
  if (allow.script === null) return true;
  const base = path.slice(path.lastIndexOf("/") + 1);
  if (allow.script === base) return true;
  return absolutePath(allow.script, cwd) === path;
}

/** The worker permissions for the script at `path`: nothing, plus every matching grant. */
export function permissionsFor(path: string, allows: AllowSpec[], cwd?: string): WorkerPermissions {
  const perms = Object.fromEntries(PERMISSION_NAMES.map((n) => [n, false])) as Record<PermissionName, Grant>;
  for (const a of allows) {
    if (!allowMatches(a, path, cwd)) continue;
    if (a.all) return "inherit";
    for (const [k, v] of Object.entries(a.grants) as [PermissionName, Grant][]) {
      const prev = perms[k];
      if (prev === true || v === true) perms[k] = true;
      else perms[k] = [...new Set([...(Array.isArray(prev) ? prev : []), ...(v as string[])])];
    }
  }
  return perms;
}

/** The grants beyond Deno's permissions for the script at `path` (all of them with `all`). */
export function capabilitiesFor(path: string, allows: AllowSpec[], cwd?: string): Capability[] {
  const caps = new Set<Capability>();
  for (const a of allows) {
    if (!allowMatches(a, path, cwd)) continue;
    if (a.all) return [...CAPABILITY_NAMES];
    for (const c of a.caps ?? []) caps.add(c);
  }
  return CAPABILITY_NAMES.filter((c) => caps.has(c));
}

/** A short human description of permissions for the log, e.g. "none" or "net=127.0.0.1:8000 read=/data". */
export function describePermissions(p: WorkerPermissions): string {
  if (p === "inherit") return "all (inherited)";
  const parts: string[] = [];
  for (const n of PERMISSION_NAMES) {
    const g = p[n];
    if (g === true) parts.push(n);
    else if (Array.isArray(g) && g.length) parts.push(`${n}=${g.join(",")}`);
  }
  return parts.length ? parts.join(" ") : "none";
}
