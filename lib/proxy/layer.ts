/**
 * The base of every protocol layer (mitmproxy's `proxy/layer.py`): a state machine that gets events through
 * {@link Layer.handle} and emits commands to its parent. It owns no socket: the driver (driver.ts) executes
 * the commands that reach the root and feeds the resulting events back, and a test (tests/lib/proxy/tutils.ts,
 * the Playbook) can do the same without any socket.
 *
 * A layer that must wait for a reply (a hook, a connection) calls {@link Layer.call}: it is paused until the
 * reply comes, events that arrive meanwhile are queued and handled afterwards, in order. Only that layer
 * pauses: its parents go on (an intercepted HTTP/2 stream blocks no other stream). Layers written this way
 * read like sequential code in continuation style:
 *
 * ```ts ignore
 * this.call(new StartHook("request", flow, flow), () => this.#afterRequestHook());
 * return; // nothing after a call: the reply may run the continuation before call() returns
 * ```
 *
 * @module
 */
import type { Context } from "./context.ts";
import type { Event } from "./events.ts";
import { type BlockingCommand, type Command, Log, type ReplyTarget, RequestWakeup } from "./commands.ts";
import type { LogLevel } from "../addons/log.ts";

/** Body bytes queued in a waiting layer above which it is told to hold its sources (see {@link Layer.onBacklog}). */
const BACKLOG_HOLD = 1 << 20;
/** ... and at or below which it is told they may go again. */
const BACKLOG_RESUME = 256 * 1024;

/** The payload of an event that carries bytes (DataReceived, RequestData, ResponseData), else 0. */
function payloadSize(event: Event): number {
  const data = (event as { data?: unknown }).data;
  return data instanceof Uint8Array ? data.length : 0;
}

/** Where a layer's commands go: its parent's {@link Layer.childCommand}, or the driver for the root. */
export type CommandSink = (command: Command, from: Layer) => void;

/** A protocol layer. */
export abstract class Layer implements ReplyTarget {
  readonly context: Context;
  /** The parent layer (its childCommand gets this layer's commands), or null for the root. */
  #parent: Layer | null = null;
  /** The root's sink (the driver). */
  #up: CommandSink | null = null;
  #paused: BlockingCommand<unknown> | null = null;
  #queue: Event[] = [];
  /** Payload bytes in {@link #queue}. */
  #queuedBytes = 0;
  #backlogged = false;

  constructor(context: Context) {
    this.context = context;
  }

  /** Connect this layer to where its commands go (its parent, or the driver). */
  attach(up: CommandSink): this {
    this.#up = up;
    this.#parent = null;
    return this;
  }

  /** Whether the layer waits for a reply (events are queued meanwhile). */
  get paused(): boolean {
    return this.#paused !== null;
  }

  /** Handle an event: now, or after the reply the layer waits for. */
  handle(event: Event): void {
    if (this.#paused !== null) this.#enqueue(event);
    else if (this.#queue.length === 0) this.onEvent(event);
    else {
      this.#enqueue(event);
      this.#drain();
    }
  }

  #enqueue(event: Event): void {
    this.#queue.push(event);
    const n = payloadSize(event);
    if (n === 0) return;
    this.#queuedBytes += n;
    if (!this.#backlogged && this.#queuedBytes > BACKLOG_HOLD) {
      this.#backlogged = true;
      this.onBacklog(true);
    }
  }

  /** The layer's own event handling. */
  protected abstract onEvent(event: Event): void;

  /**
   * Told when more than 1 MiB of payload (data events) waits in the queue of this paused layer (`held`
   * true: a hook or a connection is slow while the peer keeps sending), and again once the queue went down
   * to 256 KiB (`held` false). A layer whose sources can be paused overrides this to stop reading them, so
   * memory stays bounded however long it waits. Nothing by default.
   */
  protected onBacklog(held: boolean): void {
    void held;
  }

  /** Send a command up. */
  protected emit(command: Command): void {
    const p = this.#parent;
    if (p !== null) p.childCommand(command, this);
    else if (this.#up !== null) this.#up(command, this);
    else throw new Error(`${this.constructor.name} is not attached`);
  }

  /**
   * A command from a child layer (or this layer's own helpers). Passed up by default; a parent overrides this
   * to handle some commands itself (the HTTP layer handles HTTP commands of its streams).
   */
  childCommand(command: Command, from: Layer): void {
    void from;
    this.emit(command);
  }

  /** Make `child` a child of this layer: its commands come to {@link childCommand}. */
  protected adopt<L extends Layer>(child: L): L {
    child.#parent = this;
    child.#up = null;
    return child;
  }

  /**
   * Emit a blocking command and pause until its reply, then run `then` with it and the events queued
   * meanwhile. The reply may come before `call` returns: return right after calling it.
   */
  protected call<R>(command: BlockingCommand<R>, then: (reply: R) => void): void {
    this.#paused = command as BlockingCommand<unknown>;
    this.#then = then as (r: unknown) => void;
    command.replyTo(this);
    this.emit(command);
  }

  #then: ((r: unknown) => void) | null = null;

  /** The reply to the command the layer waits for (see {@link call}). */
  resume(command: BlockingCommand<unknown>, reply: unknown): void {
    if (this.#paused !== command) return;
    const then = this.#then!;
    this.#paused = null;
    this.#then = null;
    then(reply);
    this.#drain();
  }

  /** Emit a blocking command without pausing: `then` runs when the reply comes. */
  protected request<R>(command: BlockingCommand<R>, then: (reply: R) => void): void {
    command.onReply(then);
    this.emit(command);
  }

  #drain(): void {
    while (this.#paused === null && this.#queue.length) {
      const e = this.#queue.shift()!;
      this.#queuedBytes -= payloadSize(e);
      this.onEvent(e);
    }
    if (this.#backlogged && this.#queuedBytes <= BACKLOG_RESUME) {
      this.#backlogged = false;
      this.onBacklog(false);
    }
  }

  /** Log through the proxy's log. */
  protected log(message: string, level: LogLevel = "info"): void {
    this.emit(new Log(message, level));
  }

  /** Run `fn` in about `ms` (coarse); returns the command, whose `cancel()` stops it. */
  protected wakeup(ms: number, fn: () => void): RequestWakeup {
    const w = new RequestWakeup(ms, fn);
    this.emit(w);
    return w;
  }

  toString(): string {
    return this.constructor.name;
  }
}

/** A layer that hands every event to one child once it has one (modes, tunnels after their set-up). */
export abstract class TunnelLayer extends Layer {
  protected child: Layer | null = null;

  /** Make `layer` the child and start it with `start`, then replay `events` to it. */
  protected setChild(layer: Layer, start: Event, events: Event[] = []): void {
    this.child = this.adopt(layer);
    layer.handle(start);
    for (const e of events) layer.handle(e);
  }
}
