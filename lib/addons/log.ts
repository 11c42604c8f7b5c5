/** Log entries and the logger addons use through `ctx.log` (levels as mitmproxy: error warn info alert debug). */

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "alert", "debug"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** One logged line. */
export interface LogEntry {
  /** Severity, as mitmproxy's log levels. */
  level: LogLevel;
  /** The message (one line, control characters escaped). */
  msg: string;
  /** Who logged it, e.g. a script's name. */
  source?: string;
  /** Seconds since the epoch. */
  timestamp: number;
}

/** Severity rank: lower is more severe. "alert" ranks with info for filtering, as in mitmproxy. */
export function levelRank(level: LogLevel): number {
  return { error: 0, warn: 1, alert: 2, info: 2, debug: 3 }[level];
}

function format(args: unknown[]): string {
  return args.map((a) => (typeof a === "string" ? a : a instanceof Error ? a.message : Deno.inspect(a))).join(
    " ",
  );
}

/** Where log entries go. The master installs one; without it entries go to stderr. */
export type LogSink = (entry: LogEntry) => void;

/** A logger bound to a sink and an optional source tag. */
export class Logger {
  /** Where entries go. */
  sink: LogSink;
  /** The tag entries carry (a script's file name, ...). */
  source?: string;
  /** A logger writing to `sink`, tagging entries with `source`. */
  constructor(sink: LogSink, source?: string) {
    this.sink = sink;
    this.source = source;
  }
  /** Log the arguments (formatted like console.log) at `level`. */
  log(level: LogLevel, ...args: unknown[]): void {
    this.sink({ level, msg: format(args), source: this.source, timestamp: Date.now() / 1000 });
  }
  /** Log at level error. */
  error(...args: unknown[]): void {
    this.log("error", ...args);
  }
  /** Log at level warn. */
  warn(...args: unknown[]): void {
    this.log("warn", ...args);
  }
  /** Log at level info. */
  info(...args: unknown[]): void {
    this.log("info", ...args);
  }
  /** Log at level alert (shown even with -q). */
  alert(...args: unknown[]): void {
    this.log("alert", ...args);
  }
  /** Log at level debug (shown with -v). */
  debug(...args: unknown[]): void {
    this.log("debug", ...args);
  }
  /** A logger whose entries carry `source`. */
  child(source: string): Logger {
    return new Logger(this.sink, source);
  }
}

/** The URL of mitmdeno's `lib/` directory: frames under it are core, not user code. */
const CORE_ROOT = new URL("../", import.meta.url).href;

/** Where in user code an error happened: "file:line:col" of the first stack frame outside mitmdeno's core. */
export function errorLocation(e: unknown): string | undefined {
  const stack = e instanceof Error ? e.stack ?? "" : "";
  const frames = stack.split("\n").slice(1);
  const locs = frames.map((f) => /\(?((?:file|https?|ext):\/\/[^\s)]+?:\d+:\d+)\)?\s*$/.exec(f)?.[1]).filter(
    (x): x is string => !!x,
  );
  const user = locs.find((l) => !l.startsWith(CORE_ROOT)) ?? locs[0];
  return user?.replace(/^file:\/\//, "");
}

/** Format an error for the log: message plus its location. */
export function describeError(e: unknown): string {
  const msg = e instanceof Error ? `${e.name === "Error" ? "" : e.name + ": "}${e.message}` : String(e);
  const loc = errorLocation(e);
  return loc ? `${msg} (at ${loc})` : msg;
}

/**
 * Escape what could change how a log line looks on a terminal or in a log file: C0 and C1 control
 * characters (CR, LF and ESC included; tab is kept), DEL, and the Unicode bidirectional overrides. Used for
 * text from sandboxed scripts, which must not forge log lines or send terminal escapes.
 *
 * @example
 * ```ts
 * escapeControl("a\nb\u001b[31m"); // "a\\nb\\x1b[31m"
 * ```
 */
export function escapeControl(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}
