/**
 * TCP flows (mitmproxy's `tcp.py`): a raw TCP connection the proxy reads, as the messages (reads) each side
 * sent. Made for `tcp_hosts`, for what next_layer finds is neither HTTP nor TLS, when an addon has TCP hooks.
 *
 * @module
 */
import { Flow } from "./flow.ts";
import type { Client, Server } from "./connection.ts";
import { fromUtf8, utf8 } from "../http/bytes.ts";

/** One read of a TCP connection. */
export class TCPMessage {
  /** Whether the client sent it. */
  fromClient: boolean;
  /** The bytes. */
  content: Uint8Array;
  /** Seconds since the epoch. */
  timestamp: number;
  /** Injected by an addon (`inject.tcp`), not sent by a peer. */
  injected: boolean;

  /** A message of `content`, from the client or the server. */
  constructor(
    fromClient: boolean,
    content: Uint8Array | string,
    timestamp: number = Date.now() / 1000,
    injected = false,
  ) {
    this.fromClient = fromClient;
    this.content = typeof content === "string" ? utf8(content) : content;
    this.timestamp = timestamp;
    this.injected = injected;
  }

  /** The content as UTF-8 text (invalid bytes become U+FFFD); setting it replaces the content. */
  get text(): string {
    return fromUtf8(this.content);
  }
  set text(s: string) {
    this.content = utf8(s);
  }

  /** A short description of the message. */
  toString(): string {
    return `${this.fromClient ? "->" : "<-"} ${JSON.stringify(this.text)}`;
  }
}

/** Sends an injected message into a live TCP connection. */
export type TCPInjector = (message: TCPMessage) => void;

/** A TCP connection through the proxy and its messages. */
export class TCPFlow extends Flow {
  /** Always `"tcp"`. */
  readonly type = "tcp" as const;
  /** The messages so far, in order. */
  messages: TCPMessage[] = [];
  #inject: TCPInjector | null = null;

  /** A TCP flow between `clientConn` and `serverConn`; `live` when it is being proxied now. */
  constructor(clientConn: Client, serverConn: Server, live = true) {
    super(clientConn, serverConn, live);
  }

  /** Set by the TCP layer while the connection is open (null when it ends). */
  setInjector(fn: TCPInjector | null): void {
    this.#inject = fn;
  }

  /** Whether messages can be injected (the connection is live and open). */
  get injectable(): boolean {
    return this.#inject !== null;
  }

  /** Send bytes of our own to the client (`toClient`) or the server; false when the connection is closed. */
  inject(toClient: boolean, content: Uint8Array | string): boolean {
    const fn = this.#inject;
    if (!fn) return false;
    fn(new TCPMessage(!toClient, content, Date.now() / 1000, true));
    return true;
  }

  /** A readable summary of the flow. */
  override toString(): string {
    return `<TCPFlow (${this.messages.length} messages)>`;
  }

  /** A copy with a new id, not live. */
  copy(): TCPFlow {
    const f = new TCPFlow(this.clientConn, this.serverConn, false);
    f.messages = this.messages.map((m) =>
      new TCPMessage(m.fromClient, m.content.slice(), m.timestamp, m.injected)
    );
    f.error = this.error;
    f.marked = this.marked;
    f.metadata = structuredClone(this.metadata);
    f.comment = this.comment;
    return f;
  }
}
