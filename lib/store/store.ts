/**
 * The flow store: where the web UI's flows live (mitmweb keeps them all in RAM; we keep only live ones
 * there). One small interface so another backend (a PostgreSQL server shared by many proxies) can be
 * added next to {@link SqliteStore} later.
 *
 * @module
 */
import type { HTTPFlow } from "../flow/flow.ts";
import type { Filter } from "../flow/filter.ts";

/** Orders a view can be sorted by (mitmweb's view_order plus the other list columns). */
export const SORT_KEYS = [
  "time",
  "method",
  "url",
  "host",
  "path",
  "status",
  "size",
  "duration",
  "type",
  "tls",
  "marked",
  "comment",
] as const;
/** One of {@link SORT_KEYS}. */
export type SortKey = typeof SORT_KEYS[number];

/** What the flow list shows of a flow: one row, without headers or bodies. */
export interface FlowSummary {
  /** Insertion order in the store. */
  seq: number;
  id: string;
  type: string;
  method: string;
  scheme: string;
  /** The Host header's host (what the user typed), else the target host. */
  host: string;
  port: number;
  path: string;
  url: string;
  httpVersion: string;
  status: number | null;
  reason: string | null;
  reqLen: number | null;
  respLen: number | null;
  /** The request's start (seconds since the epoch). */
  timestamp: number;
  /** Response end minus request start, in seconds, when finished. */
  duration: number | null;
  tls: boolean;
  marked: string;
  comment: string;
  intercepted: boolean;
  isReplay: string | null;
  error: string | null;
  websocket: boolean;
  /** The response's Content-Type (for the list's icon), else null. */
  contentType: string | null;
  live: boolean;
  modified: boolean;
}

/** Which body of a flow. */
export type Side = "request" | "response";

/** The flow store's operations. Writes are batched and committed at the end of the current event loop turn. */
export interface FlowStore {
  /** Insert or update a flow (bodies are written only when they changed); returns its store position. */
  put(flow: HTTPFlow): number;
  /** Write everything pending now (also done by itself after each turn). */
  commit(): void;
  /** Make what was put survive a kill of the process (not of the OS), cheaper than a commit. */
  sync(): void;
  /** The flow with this id (bodies read when first accessed), or null. */
  get(id: string): HTTPFlow | null;
  /** The list row of a flow, or null. */
  summary(id: string): FlowSummary | null;
  /** The list rows of the given store positions, in that order (unknown ones skipped). */
  summaries(seqs: ArrayLike<number>): FlowSummary[];
  /** A body as stored (still content-encoded), or null when the flow has none. */
  body(id: string, side: Side): Uint8Array | null;
  /** The state a flow had before its first edit (see {@link setBackup}), or null. */
  backup(id: string): HTTPFlow | null;
  /** Remember `flow` as the state to revert to (only if none is kept yet). */
  setBackup(flow: HTTPFlow): void;
  /** Forget a flow's backup. */
  dropBackup(id: string): void;
  /** Store positions of the flows matching `filter` (all when null), sorted. */
  select(filter: Filter | null, order?: SortKey, reverse?: boolean): number[];
  /** The flows at the given positions, or matching a filter, one at a time (for exports). */
  flows(which: { seqs?: ArrayLike<number>; filter?: Filter | null }): Iterable<HTTPFlow>;
  /** The store position of a flow id, or null. */
  seqOf(id: string): number | null;
  /** Delete flows; returns how many were stored. */
  remove(ids: string[]): number;
  /** Delete every flow. */
  clear(): void;
  /** How many flows are stored. */
  count(): number;
  /** Write what is pending and close. */
  close(): void;
}
