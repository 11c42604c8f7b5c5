/**
 * WebSocket flows cached on the worker side, so that a `websocket_message` hook sends only the new message.
 *
 * Without the cache every message of a WebSocket re-sends the whole flow (handshake request and response,
 * their headers, the flow's fields) and the worker rebuilds it, diffs it and throws it away: most of the
 * cost of a sandboxed `websocket_message` hook for small messages. With it:
 *
 * - The first `websocket_message` of a flow sends the whole flow as usual, with a key `k`. After the hook
 *   the worker keeps the flow object under that key if the hook changed nothing but messages (and did not
 *   fail), and says so in its reply (`kept`); the proxy then remembers what the worker has
 *   ({@link WsFlowRefs}: the flow's fields as sent, header lists copied).
 * - The next message of that flow sends a `wsm` message instead: the key, the connection record keys and
 *   the WebSocket part (the new message, its content as the body, the close fields). The proxy first
 *   checks that nothing the worker has changed on its side (another addon, another script, a
 *   replaced request or response, metadata, marker, ...): if anything did, the whole flow goes again
 *   under a new key and the worker forgets the old one.
 * - A hook that changes anything else (request, response, metadata, marker, kill, interception, a
 *   connection record) or fails makes the worker drop the flow: the proxy, told by the reply, sends it
 *   whole next time. The worker never keeps a message's content between hooks (its `messages` are emptied
 *   after the hook), so a cached flow costs the worker its headers only.
 * - The proxy keeps at most {@link WS_CACHE_CAPACITY} flows per worker (least recently used go first; the
 *   worker is told with the next message, `kd`), and forgets a flow at its `websocket_end`.
 *
 * A flow's hooks run one after the other (the WebSocket layer waits for each message's hooks), so at most
 * one message of a flow is in flight to a worker: the reply settles the cache before the next one.
 *
 * @module
 */
import type { HTTPFlow } from "../../flow/flow.ts";
import type { Message, Request, Response } from "../../http/message.ts";
import type { FlowSnapshot, WireFlow, WireMessageFields, WireWebSocket } from "./wire.ts";

/**
 * The JSON text of a `wsm` message (see protocol.ts), written by hand: it is built for every message of
 * every hooked WebSocket, and `JSON.stringify` of the nested object costs several times as much.
 */
export function wsDeltaText(id: number, event: string, d: WsDelta, kd: number[] | undefined): string {
  const w = d.ws;
  let ms = "";
  for (const m of w.messages) {
    ms += `${ms ? "," : ""}{"type":${m.type | 0},"fromClient":${!!m.fromClient},"timestamp":${
      num(m.timestamp)
    },"dropped":${!!m.dropped},"injected":${!!m.injected},"body":${m.body | 0}}`;
  }
  const closedBy = w.closedByClient === null ? "null" : String(!!w.closedByClient);
  const reason = w.closeReason === null ? "null" : JSON.stringify(w.closeReason);
  return `{"t":"wsm","id":${id},"event":"${event}","d":{"k":${d.k},"c":${d.c},"s":${d.s},"ws":{"total":${
    w.total | 0
  },"first":${w.first | 0},"messages":[${ms}],"closedByClient":${closedBy},"closeCode":${
    w.closeCode === null ? "null" : num(w.closeCode)
  },"closeReason":${reason},"timestampEnd":${w.timestampEnd === null ? "null" : num(w.timestampEnd)}}}${
    kd ? `,"kd":[${kd.join(",")}]` : ""
  }}`;
}

/** A number as JSON (not finite: null, as JSON.stringify writes it). */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : "null";
}

/** Flows a proxy keeps cached per worker. */
export const WS_CACHE_CAPACITY = 256;

/** The body of a `wsm` message (proxy -> worker): what changed since the cached flow. */
export interface WsDelta {
  /** The cache key. */
  k: number;
  /** The connection record keys (they may change when the proxy's records were evicted and re-sent). */
  c: number;
  s: number;
  ws: WireWebSocket;
}

interface Entry {
  key: number;
  /** The reply to the message that created or used the entry has not come yet. */
  settled: boolean;
  request: Request;
  response: Response | null;
  /** The flow as the worker has it (header lists copied). */
  wire: WireFlow;
}

function copyPairs(p: [string, string][] | null): [string, string][] | null {
  return p === null ? null : p.map(([k, v]) => [k, v]);
}

function pairsEqual(a: [string, string][] | null, b: [string, string][] | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false;
  return true;
}

function messageMatches(m: Message, w: WireMessageFields): boolean {
  return m.httpVersion === w.httpVersion && m.timestampStart === w.timestampStart &&
    m.timestampEnd === w.timestampEnd && (m.stream !== false) === w.stream &&
    pairsEqual(m.headers.fields, w.headers) && pairsEqual(m.trailers ? m.trailers.fields : null, w.trailers);
}

/** Whether `flow` still has every field `e` says the worker has (what a full message would carry). */
function matches(flow: HTTPFlow, e: Entry): boolean {
  const w = e.wire;
  if (flow.request !== e.request || flow.response !== e.response) return false;
  if (
    flow.live !== w.live || flow.isReplay !== w.isReplay || flow.marked !== w.marked ||
    flow.comment !== w.comment || flow.timestampCreated !== w.timestampCreated
  ) return false;
  const err = flow.error;
  if (err ? !w.error || err.msg !== w.error.msg || err.timestamp !== w.error.timestamp : w.error) {
    return false;
  }
  for (const _ in flow.metadata) return false;
  const r = flow.request;
  const wr = w.request;
  if (
    r.method !== wr.method || r.scheme !== wr.scheme || r.host !== wr.host || r.port !== wr.port ||
    r.path !== wr.path || r.authority !== wr.authority || !messageMatches(r, wr)
  ) return false;
  const s = flow.response;
  const ws = w.response;
  if (!s || !ws) return s === null && ws === null;
  return s.statusCode === ws.statusCode && s.reason === ws.reason && messageMatches(s, ws);
}

/** Proxy side, one per worker: which WebSocket flows the worker keeps, under which key, as what. */
export class WsFlowRefs {
  #byFlow = new WeakMap<HTTPFlow, Entry>();
  /** Least recently used first (weakly: an ended flow the script never hears of must not be held). */
  #lru = new Map<number, WeakRef<HTTPFlow>>();
  #drop: number[] = [];
  #nextKey = 1;

  constructor(readonly capacity = WS_CACHE_CAPACITY) {}

  /**
   * The key under which the worker holds `flow` as it is now, or null (send it whole). A cached flow that
   * changed on the proxy's side is forgotten (the worker is told).
   */
  lookup(flow: HTTPFlow): number | null {
    const e = this.#byFlow.get(flow);
    if (!e) return null;
    if (!e.settled || !matches(flow, e)) {
      this.forget(flow);
      return null;
    }
    e.settled = false;
    if (this.#lru.size > 1) {
      const ref = this.#lru.get(e.key)!;
      this.#lru.delete(e.key);
      this.#lru.set(e.key, ref);
    }
    return e.key;
  }

  /** `flow` goes whole as `wire` (just sent, its header lists still the live ones): its new key. */
  add(flow: HTTPFlow, wire: WireFlow): number {
    this.forget(flow);
    const key = this.#nextKey++;
    const copy: WireFlow = {
      ...wire,
      request: {
        ...wire.request,
        headers: copyPairs(wire.request.headers)!,
        trailers: copyPairs(wire.request.trailers),
      },
      response: wire.response
        ? {
          ...wire.response,
          headers: copyPairs(wire.response.headers)!,
          trailers: copyPairs(wire.response.trailers),
        }
        : null,
    };
    this.#byFlow.set(flow, {
      key,
      settled: false,
      request: flow.request,
      response: flow.response,
      wire: copy,
    });
    this.#lru.set(key, new WeakRef(flow));
    if (this.#lru.size > this.capacity) {
      for (const [k, ref] of this.#lru) {
        const old = ref.deref();
        if (old) this.forget(old);
        else {
          // collected: its entry went with it
          this.#lru.delete(k);
          this.#drop.push(k);
        }
        break;
      }
    }
    return key;
  }

  /** The reply to the message that sent `flow` under `key` came: the worker kept it or not. */
  settle(flow: HTTPFlow, key: number, kept: boolean): void {
    const e = this.#byFlow.get(flow);
    if (!e || e.key !== key) return;
    if (kept) e.settled = true;
    else {
      // the worker dropped it itself
      this.#byFlow.delete(flow);
      this.#lru.delete(key);
    }
  }

  /** Forget `flow` (its connection ended, it changed, or room is needed); the worker is told. */
  forget(flow: HTTPFlow): void {
    const e = this.#byFlow.get(flow);
    if (!e) return;
    this.#byFlow.delete(flow);
    this.#lru.delete(e.key);
    this.#drop.push(e.key);
  }

  /** Keys the worker must forget, for the next message (once). */
  takeDrops(): number[] | undefined {
    if (!this.#drop.length) return undefined;
    const d = this.#drop;
    this.#drop = [];
    return d;
  }

  /** How many flows the worker keeps. */
  get size(): number {
    return this.#lru.size;
  }
}

/** A flow the worker keeps: the object the script sees, and what the proxy has of it. */
export interface CachedWsFlow {
  flow: HTTPFlow;
  snapshot: FlowSnapshot;
}

/** Worker side: the WebSocket flows kept between hooks, by key (the proxy says which to forget). */
export class WsFlowTable {
  #flows = new Map<number, CachedWsFlow>();

  /** The flow under `key`, taken out (it goes back with {@link keep} if the hook allows). */
  take(key: number): CachedWsFlow | undefined {
    const e = this.#flows.get(key);
    this.#flows.delete(key);
    return e;
  }

  /** Keep `flow` under `key` after a hook, without its messages (the next message brings its own). */
  keep(key: number, flow: HTTPFlow, snapshot: FlowSnapshot): void {
    flow.websocket!.messages = [];
    flow.websocket!.setInjector(null);
    snapshot.ws = undefined;
    this.#flows.set(key, { flow, snapshot });
  }

  /** Forget the keys the proxy dropped. */
  drop(keys: number[] | undefined): void {
    if (keys) { for (const k of keys) this.#flows.delete(k); }
  }

  /** How many flows are kept. */
  get size(): number {
    return this.#flows.size;
  }
}
