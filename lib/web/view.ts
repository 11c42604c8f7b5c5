/**
 * One UI client's view of the store: its filter, highlight and order, and the store positions of the
 * matching flows in that order. The list in the browser asks only for the rows it shows, so 100k or 1M
 * flows cost the browser nothing and the server 4-8 bytes a flow.
 *
 * Time order (the default) is kept up to date flow by flow; other orders are recomputed from the store
 * when flows changed, at most once a second.
 */
import type { HTTPFlow } from "../flow/flow.ts";
import { type Filter, FilterError, parseFilter } from "../flow/filter.ts";
import type { FlowStore, SortKey } from "../store/store.ts";
import { SORT_KEYS } from "../store/store.ts";

/** A filter from the UI: compiled, or the error to show inline. */
export function compileUiFilter(
  expr: string | null | undefined,
): { filter: Filter | null; error: string | null } {
  if (!expr || !expr.trim()) return { filter: null, error: null };
  try {
    return { filter: parseFilter(expr), error: null };
  } catch (e) {
    return { filter: null, error: e instanceof FilterError ? e.message : String(e) };
  }
}

function lowerBound(a: number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A client's view. */
export class View {
  filter: Filter | null = null;
  highlight: Filter | null = null;
  order: SortKey = "time";
  reverse = false;
  /** Matching store positions: ascending for time order, else in the store's sort order. */
  #seqs: number[] = [];
  #stale = false;
  #lastRefresh = 0;

  constructor(readonly store: FlowStore) {}

  /** Set filter/highlight/order; returns the errors of unparsable expressions. */
  set(opts: { filter?: string; highlight?: string; order?: string; reverse?: boolean }): {
    filterError: string | null;
    highlightError: string | null;
  } {
    const f = compileUiFilter(opts.filter);
    const h = compileUiFilter(opts.highlight);
    this.filter = f.filter;
    this.highlight = h.filter;
    this.order = (SORT_KEYS as readonly string[]).includes(opts.order ?? "") ? opts.order as SortKey : "time";
    this.reverse = Boolean(opts.reverse);
    this.refresh();
    return { filterError: f.error, highlightError: h.error };
  }

  /** Recompute from the store. */
  refresh(): void {
    this.#seqs = this.store.select(this.filter, this.order, this.order === "time" ? false : this.reverse);
    this.#stale = false;
    this.#lastRefresh = Date.now();
  }

  get total(): number {
    return this.#seqs.length;
  }

  /** Store positions of rows `offset..offset+limit` as shown. */
  window(offset: number, limit: number): number[] {
    const n = this.#seqs.length;
    offset = Math.max(0, Math.min(offset, n));
    const end = Math.min(n, offset + Math.max(0, limit));
    if (this.order === "time" && this.reverse) {
      const out: number[] = [];
      for (let i = offset; i < end; i++) out.push(this.#seqs[n - 1 - i]);
      return out;
    }
    return this.#seqs.slice(offset, end);
  }

  /** The shown position of a store position, or -1. */
  indexOf(seq: number): number {
    if (this.order === "time") {
      const i = lowerBound(this.#seqs, seq);
      if (this.#seqs[i] !== seq) return -1;
      return this.reverse ? this.#seqs.length - 1 - i : i;
    }
    return this.#seqs.indexOf(seq);
  }

  /** A flow was written (added or changed). Returns whether the view changed. */
  changed(flow: HTTPFlow, seq: number): boolean {
    if (this.order !== "time") {
      this.#stale = true;
      return true;
    }
    const match = !this.filter || this.filter(flow);
    const a = this.#seqs;
    if (a.length === 0 || a[a.length - 1] < seq) {
      if (match) a.push(seq);
      return match;
    }
    const i = lowerBound(a, seq);
    const has = a[i] === seq;
    if (match && !has) a.splice(i, 0, seq);
    else if (!match && has) a.splice(i, 1);
    return match !== has || match;
  }

  /** Flows were deleted. */
  removed(seqs: number[]): void {
    if (this.order !== "time") {
      this.#stale = true;
      return;
    }
    for (const s of seqs) {
      const i = lowerBound(this.#seqs, s);
      if (this.#seqs[i] === s) this.#seqs.splice(i, 1);
    }
  }

  /** Recompute a non-time order that went stale, at most once a second. Returns whether it did. */
  maybeRefresh(): boolean {
    if (!this.#stale || Date.now() - this.#lastRefresh < 1000) return false;
    this.refresh();
    return true;
  }
}
