/** Flows: one exchange through the proxy, with its connections, state and error (mitmproxy's `flow.py`). */
import type { Client, Server } from "./connection.ts";
import type { Request, Response } from "../http/message.ts";
import type { WebSocketData } from "./websocket.ts";
import { flowId } from "./id.ts";

/** An error that ended a flow. */
export class FlowError {
  /** What went wrong. */
  msg: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** An error with `msg`, at `timestamp` (seconds since the epoch; now by default). */
  constructor(msg: string, timestamp: number = Date.now() / 1000) {
    this.msg = msg;
    this.timestamp = timestamp;
  }
  /** The message. */
  toString(): string {
    return this.msg;
  }
}

/** The message mitmproxy uses for killed flows. */
export const KILLED_MESSAGE = "Connection killed.";

/** Base of every flow type. */
export abstract class Flow {
  /** The kind of flow. */
  abstract readonly type: "http" | "tcp" | "udp" | "dns";
  /** A unique id (a UUID: version 7, ordered by creation time, see id.ts). */
  id: string = flowId();
  /** The client connection. */
  clientConn: Client;
  /** The server connection. */
  serverConn: Server;
  /** The error that ended the flow, if any. */
  error: FlowError | null = null;
  /** Whether the flow is still being proxied (false for flows loaded from a file). */
  live: boolean;
  /** Whether the flow is paused, waiting for the user to resume it. */
  intercepted = false;
  /** null, "request" (client replay) or "response" (server replay). */
  isReplay: "request" | "response" | null = null;
  /** Marker: "" unmarked, ":default:" marked, or another marker name. */
  marked = "";
  /** Free-form data addons attach to the flow. */
  metadata: Record<string, unknown> = {};
  /** A user's note about the flow. */
  comment = "";
  /** When the flow was created (seconds since the epoch). */
  timestampCreated: number = Date.now() / 1000;

  #resume: (() => void) | null = null;
  #resumed: Promise<void> | null = null;

  /** A flow between `clientConn` and `serverConn`; `live` when it is being proxied now. */
  constructor(clientConn: Client, serverConn: Server, live = true) {
    this.clientConn = clientConn;
    this.serverConn = serverConn;
    this.live = live;
  }

  /** Whether {@link kill} would have an effect. */
  get killable(): boolean {
    return this.live && !(this.error && this.error.msg === KILLED_MESSAGE);
  }

  /** Whether the flow was killed. */
  get killed(): boolean {
    return this.error?.msg === KILLED_MESSAGE;
  }

  /** Kill the flow: both connections are closed right after the current hook, no response is sent. */
  kill(): void {
    if (!this.killable) return;
    this.error = new FlowError(KILLED_MESSAGE);
    this.resume();
  }

  /** Pause the flow after the current hook until {@link resume} is called. */
  intercept(): void {
    if (this.intercepted) return;
    this.intercepted = true;
    this.#resumed = new Promise((r) => (this.#resume = r));
  }

  /** Continue an intercepted flow. */
  resume(): void {
    if (!this.intercepted) return;
    this.intercepted = false;
    this.#resume?.();
    this.#resume = null;
  }

  /** Resolves once the flow is not intercepted (at once if it is not). */
  waitForResume(): Promise<void> {
    return this.intercepted && this.#resumed ? this.#resumed : Promise.resolve();
  }
}

/** An HTTP request/response exchange. */
export class HTTPFlow extends Flow {
  /** Always `"http"`. */
  readonly type = "http" as const;
  /** The request. */
  request: Request;
  /** Set in `request`/`requestheaders` to answer without contacting the server. */
  response: Response | null = null;
  /** WebSocket data after an upgrade, else null. */
  websocket: WebSocketData | null = null;
  /** The proxy mode that produced this flow. */
  get mode(): string {
    return this.clientConn.proxyMode;
  }

  /** A flow of `request` between the two connections; `live` when it is being proxied now. */
  constructor(clientConn: Client, serverConn: Server, request: Request, live = true) {
    super(clientConn, serverConn, live);
    this.request = request;
    this.timestampCreated = request.timestampStart;
  }

  /** The time the request started (seconds). */
  get timestampStart(): number {
    return this.request.timestampStart;
  }

  /**
   * A readable summary, like mitmproxy's repr:
   * `<HTTPFlow request = Request(GET example.com:80/) response = Response(200, text/html, 5b) ...>` over lines.
   */
  override toString(): string {
    let s = "<HTTPFlow";
    s += `\n  request = ${this.request}`;
    if (this.response) s += `\n  response = ${this.response}`;
    if (this.websocket) s += `\n  websocket = ${this.websocket}`;
    if (this.error) s += `\n  error = ${this.error.msg}`;
    s += `\n  clientConn = ${this.clientConn}`;
    s += `\n  serverConn = ${this.serverConn}`;
    return s + ">";
  }

  /** A copy with a new id, not live. */
  copy(): HTTPFlow {
    const f = new HTTPFlow(this.clientConn, this.serverConn, this.request.copy(), false);
    f.response = this.response?.copy() ?? null;
    f.error = this.error ? new FlowError(this.error.msg, this.error.timestamp) : null;
    f.isReplay = this.isReplay;
    f.marked = this.marked;
    f.metadata = structuredClone(this.metadata);
    f.comment = this.comment;
    f.websocket = this.websocket;
    return f;
  }
}
