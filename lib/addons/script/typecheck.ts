/**
 * Type-check a script in the background and report its errors with file:line. Scripts run whether or
 * not they type-check (Deno strips types at run time); this only tells the author what `deno check`
 * would say. It needs the `deno` CLI, so it runs from source and is skipped inside the compiled binary.
 */

const CONFIG = new URL("../../../deno.json", import.meta.url);

/** One type error: location and message. */
export interface TypeDiagnostic {
  /** "path:line:col" */
  location: string;
  /** "TS2322: Type 'string' is not assignable to type 'number'." */
  message: string;
}

/** Whether a `deno` CLI that can type-check is available (false inside a compiled binary). */
export function canTypecheck(): boolean {
  return CONFIG.protocol === "file:" && /(^|\/)deno(\.exe)?$/.test(Deno.execPath());
}

/** Parse `deno check` output into diagnostics. */
export function parseCheckOutput(text: string): TypeDiagnostic[] {
  // deno-lint-ignore no-control-regex
  const lines = text.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
  const out: TypeDiagnostic[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(TS\d+) \[ERROR\]: (.*)$/.exec(lines[i]);
    if (!m) continue;
    for (let j = i + 1; j < Math.min(lines.length, i + 12); j++) {
      const at = /^\s+at (?:file:\/\/)?(.+:\d+:\d+)\s*$/.exec(lines[j]);
      if (at) {
        out.push({ location: decodeURIComponent(at[1]), message: `${m[1]}: ${m[2]}` });
        break;
      }
    }
  }
  return out;
}

/**
 * Run `deno check` on `path` with mitmdeno's import map; resolves to its diagnostics (empty when clean). A
 * check that does not finish within `timeoutMs` is stopped and reported as one diagnostic saying so.
 */
export async function typecheckScript(path: string, timeoutMs = 60_000): Promise<TypeDiagnostic[]> {
  if (!canTypecheck()) return [];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", "--config", CONFIG.pathname, path],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill();
    } catch { /* already done */ }
  }, timeoutMs);
  try {
    const r = await child.output();
    if (r.success) return [];
    if (timedOut) {
      return [{ location: path, message: `type check stopped: not done within ${timeoutMs / 1000}s` }];
    }
    return parseCheckOutput(new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout));
  } finally {
    clearTimeout(timer);
  }
}
