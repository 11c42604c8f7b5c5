/** The termlog addon: prints log entries to the terminal, filtered by `termlog_verbosity`. */
import type { Loader } from "../lib/addons/manager.ts";
import { levelRank, LOG_LEVELS, type LogEntry } from "../lib/addons/log.ts";
import { ctx } from "../lib/addons/ctx.ts";

const COLORS: Record<string, string> = {
  error: "\x1b[31m",
  warn: "\x1b[33m",
  alert: "\x1b[35m",
  debug: "\x1b[2m",
};

/** Where output goes: one write per line (without the newline). */
export type LineWriter = (line: string, level: LogEntry["level"]) => void;

function defaultWriter(): LineWriter {
  const enc = new TextEncoder();
  return (line, level) => {
    const stream = level === "error" || level === "warn" ? Deno.stderr : Deno.stdout;
    stream.writeSync(enc.encode(line + "\n"));
  };
}

/** Prints log entries (`error`/`warn` to stderr, the rest to stdout). */
export class TermLog {
  readonly name = "termlog";
  #write: LineWriter;
  #color: boolean;

  constructor(write?: LineWriter, color?: boolean) {
    this.#write = write ?? defaultWriter();
    this.#color = color ?? (write ? false : Deno.stdout.isTerminal());
  }

  load(loader: Loader): void {
    loader.addOption("termlog_verbosity", "str", "info", "Log verbosity.", LOG_LEVELS);
  }

  /** Print one entry if the verbosity allows it. */
  log(e: LogEntry): void {
    const verbosity =
      (ctx.options?.has?.("termlog_verbosity") ? ctx.options.termlog_verbosity : "info") as LogEntry["level"];
    if (levelRank(e.level) > levelRank(verbosity)) return;
    const text = e.source ? `[${e.source}] ${e.msg}` : e.msg;
    const c = this.#color ? COLORS[e.level] : undefined;
    this.#write(c ? `${c}${text}\x1b[0m` : text, e.level);
  }
}
