/**
 * Watch a set of files and call back once per burst of changes.
 *
 * `Deno.watchFs` fires several events per save, and editors that save by writing a temporary file and
 * renaming it over the original replace the inode, which a watch on the file itself would lose. So this
 * watches the *directories* of the files (not recursively), filters events by path, debounces, and only
 * reports when a file's modification time or size (or existence) actually changed.
 */

/** A file's identity for change detection: "mtime:size", or "missing". */
function stamp(path: string): string {
  try {
    const s = Deno.statSync(path);
    return `${s.mtime?.getTime() ?? 0}:${s.size}`;
  } catch {
    return "missing";
  }
}

/** Watches files; call {@link setFiles} to change the set, {@link close} to stop. */
export class FileWatcher {
  #files = new Set<string>();
  #stamps = new Map<string, string>();
  #watchers = new Map<string, Deno.FsWatcher>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  readonly #onChange: (changed: string[]) => void;
  readonly #debounceMs: number;

  constructor(onChange: (changed: string[]) => void, debounceMs = 100) {
    this.#onChange = onChange;
    this.#debounceMs = debounceMs;
  }

  /** Watch exactly `files` (absolute paths). Their current state is the baseline. */
  setFiles(files: string[]): void {
    if (this.#closed) return;
    this.#files = new Set(files);
    this.#stamps = new Map(files.map((f) => [f, stamp(f)]));
    const dirs = new Set(files.map((f) => f.slice(0, f.lastIndexOf("/")) || "/"));
    for (const [d, w] of this.#watchers) {
      if (!dirs.has(d)) {
        this.#watchers.delete(d);
        try {
          w.close();
        } catch { /* closed */ }
      }
    }
    for (const d of dirs) if (!this.#watchers.has(d)) this.#watch(d);
  }

  #watch(dir: string): void {
    let w: Deno.FsWatcher;
    try {
      w = Deno.watchFs(dir, { recursive: false });
    } catch {
      return; // the directory is gone; the next setFiles retries
    }
    this.#watchers.set(dir, w);
    (async () => {
      try {
        for await (const ev of w) {
          if (ev.kind === "access") continue;
          if (ev.paths.some((p) => this.#files.has(p))) this.#schedule();
        }
      } catch { /* closed */ }
    })();
  }

  #schedule(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#closed) return;
      const changed: string[] = [];
      for (const f of this.#files) {
        const s = stamp(f);
        if (s !== this.#stamps.get(f)) {
          changed.push(f);
          this.#stamps.set(f, s);
        }
      }
      if (changed.length) this.#onChange(changed);
    }, this.#debounceMs);
  }

  /** Stop watching. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const w of this.#watchers.values()) {
      try {
        w.close();
      } catch { /* closed */ }
    }
    this.#watchers.clear();
  }
}
