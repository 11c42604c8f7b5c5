/**
 * Messages between the proxy (the script host) and a script worker. Every request carries an `id`; the
 * reply carries the same id. Flow state inside them uses the wire format of `wire.ts`.
 */
import type { OptionSpec } from "../options.ts";
import type { LogLevel } from "../log.ts";
import type { ConnSync, FlowChanges, PackedFlow, WireConn, WireRequest, WireResponse } from "./wire.ts";
import type { WsDelta } from "./wsflows.ts";

/** A whole flow from a script, for `replay.client`: its request and response with their bodies. */
export interface ReplayFlow {
  request: WireRequest;
  reqBody: Uint8Array | null;
  response: WireResponse | null;
  respBody: Uint8Array | null;
  comment: string;
  marked: string;
}

/**
 * Proxy -> worker. Each message but `ring` gets a sequence number `q` when sent: the worker handles them
 * in that order, whether they came by postMessage or through the ring.
 */
export type HostMessage =
  /** The message ring (sent once, first): most flow messages come through it (see ring.ts). */
  | { t: "ring"; id?: undefined; sab: SharedArrayBuffer }
  /** Stands for a message that could not be sent (it did not clone): nothing to do. */
  | { t: "skip"; id?: undefined }
  /**
   * Run `load(loader)` on the script's addons; reply with what they declared. `own`: the options an earlier
   * instance of the script declared (it may declare them again; every other known option is refused).
   */
  | { t: "load"; id: number; specs: OptionSpec[]; values: Record<string, unknown>; own: string[] }
  /** Option values changed (and maybe new options declared elsewhere); then run `configure` if `run`. */
  | {
    t: "configure";
    id: number;
    updated: string[];
    specs: OptionSpec[];
    values: Record<string, unknown>;
    run: boolean;
  }
  /** Run a hook without arguments (`running`, `done`). */
  | { t: "event"; id: number; event: string }
  /**
   * Run a flow hook (connection records the worker lacks come along). `k`: keep the (WebSocket) flow
   * under this key after the hook if it allows (see wsflows.ts); `kd`: cached flows to forget first.
   */
  | ({ t: "flow"; id: number; event: string; k?: number; kd?: number[] } & PackedFlow & ConnSync)
  /**
   * Run a WebSocket hook on the flow the worker keeps under `d.k`, with the new message (its content in
   * `bytes`, from the ring, or `buf`); see wsflows.ts.
   */
  | ({
    t: "wsm";
    id: number;
    event: string;
    d: WsDelta;
    kd?: number[];
    buf?: ArrayBuffer;
    bytes?: Uint8Array;
  } & ConnSync)
  /** Run `update(flows)`. */
  | ({ t: "update"; id: number; flows: PackedFlow[] } & ConnSync)
  /** Run a connection hook: client_* get `client`, server_* get `{ server, client }` (record keys). */
  | ({ t: "conn"; id: number; event: string; client: number; server?: number } & ConnSync)
  /** Call a command the script declared. */
  | { t: "command"; id: number; path: string; args: unknown[] }
  /** The reply to a worker's request. */
  | { t: "reply"; id: number; error?: string };

/**
 * What actually crosses, either way: one message, several sent in the same turn of the event loop (one
 * postMessage, one wake-up of the other thread), or a string: the JSON array of several messages (see
 * outbox.ts). Handled in order.
 */
export type Envelope<M> = M | { t: "batch"; ms: M[] } | string;

/** The sequence number of a proxy -> worker message (see {@link HostMessage}). */
export type Sequenced<M> = M & { q?: number };

/** What the script's worker gets as its `workerData` (see sandbox.ts). */
export interface WorkerData {
  /** Its end of the channel to the proxy. */
  port: MessagePort;
  /** The script's file URL. */
  url: string;
  /** The script's arguments. */
  args: string[];
  /**
   * The heartbeat (Int32 words): 0 is incremented every {@link HEARTBEAT_MS} while the worker's event loop
   * runs; 1 is set to 1 when the worker's memory exceeds `heapMb`, with the MiB used in 2.
   */
  beat: SharedArrayBuffer;
  /** The memory limit in MiB (JS heap plus external memory). */
  heapMb: number;
  /** Its grants beyond Deno's permissions (`shutdown`, `replay`); the proxy checks them again. */
  caps?: string[];
}

/** How often a script worker's heartbeat ticks. */
export const HEARTBEAT_MS = 100;

/** Proxy -> sandbox shell: start the script's worker. */
export interface SandboxInit {
  /** The worker's entry module (a data: URL). */
  entry: string;
  name: string;
  /** Heap limit (old generation) in MiB. */
  heapMb: number;
  data: WorkerData;
}

/** Sandbox shell -> proxy: the script's worker ended (it ran out of memory, crashed or exited). */
export type SandboxEvent = { t: "exit"; oom: boolean; message: string };

/** Worker -> proxy. */
export type WorkerMessage =
  /** The script module was imported: the hooks it handles. */
  | { t: "ready"; hooks: string[]; unsupported: string[] }
  /** The script module could not be imported (the message names file:line where known). */
  | { t: "loaderror"; msg: string }
  | { t: "log"; level: LogLevel; msg: string }
  /** A reply to a host request. */
  | {
    t: "reply";
    id: number;
    changes?: FlowChanges | null;
    /** The worker keeps the WebSocket flow it was sent under a key (see wsflows.ts). */
    kept?: boolean;
    conn?: { client?: WireConn; server?: WireConn };
    declared?: { options: OptionSpec[]; commands: { path: string; help: string }[] };
    value?: unknown;
    /** An OptionsError raised by `configure` (rolls the option change back). */
    optionsError?: string;
    /** Where in the script the OptionsError was thrown (file:line:col). */
    optionsErrorAt?: string;
    /** A command failed. */
    error?: string;
  }
  /** The script asks to change options (only its own). */
  | { t: "setoptions"; id: number; values: Record<string, unknown> }
  /**
   * The script acts beyond itself (needs the grant of the same name, checked by the proxy): shut the proxy
   * down, or replay flows.
   */
  | { t: "act"; id: number; action: "shutdown" | "replay"; flows?: ReplayFlow[] }
  /**
   * The script injects a message into a live TCP flow after the hook that got the flow returned (from a
   * timer, say; during a hook injections come back with its changes). The proxy accepts it only for a flow
   * this script was handed and that is still open.
   */
  | { t: "inject"; flow: string; toClient: boolean; content: ArrayBuffer };
