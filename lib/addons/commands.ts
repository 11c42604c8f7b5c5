/** Commands addons expose (mitmproxy's `command.py`), called by path with arguments. */
import type { CommandFn } from "./manager.ts";

/** Raised for unknown commands or bad calls. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandError";
  }
}

/** A registered command. */
export interface Command {
  /** The command's path (`replay.client`, ...). */
  path: string;
  /** What runs. */
  fn: CommandFn;
  /** One line of help (`--commands`). */
  help: string;
}

/** The command registry. */
export class CommandManager {
  /** Every command, by path. */
  readonly commands: Map<string, Command> = new Map();

  /** Register (or replace) a command. */
  add(path: string, fn: CommandFn, help = ""): void {
    this.commands.set(path, { path, fn, help });
  }

  /** Whether `path` is registered. */
  has(path: string): boolean {
    return this.commands.has(path);
  }

  /** Call a command; its result is awaited. */
  async call(path: string, ...args: unknown[]): Promise<unknown> {
    const c = this.commands.get(path);
    if (!c) throw new CommandError(`Unknown command: ${path}`);
    return await c.fn(...args);
  }

  /** All commands, sorted by path. */
  list(): Command[] {
    return [...this.commands.values()].sort((a, b) => a.path.localeCompare(b.path));
  }
}
