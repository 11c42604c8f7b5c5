/**
 * WebSocket data of an HTTP flow after a 101 (mitmproxy's `websocket.py`): the messages both sides sent, and
 * how the connection closed. `flow.websocket` is set before the `response` hook of the handshake, so an addon
 * can tell that a WebSocket connection follows.
 *
 * @module
 */
import { fromUtf8, utf8 } from "../http/bytes.ts";

/** Message types (the frame opcodes). */
export const MessageType = { TEXT: 1, BINARY: 2 } as const;

/** One WebSocket message (all its fragments, decompressed). */
export class WebSocketMessage {
  /** 1 text, 2 binary. */
  type: number;
  /** Sent by the client (else by the server). */
  fromClient: boolean;
  /** The message as bytes (UTF-8 for text). */
  content: Uint8Array;
  /** When it was received, seconds since the epoch. */
  timestamp: number;
  /** Dropped by an addon: not forwarded. */
  dropped: boolean;
  /** Injected by an addon (`inject.websocket`), not sent by a peer. */
  injected: boolean;

  constructor(
    type: number,
    fromClient: boolean,
    content: Uint8Array | string,
    timestamp: number = Date.now() / 1000,
    dropped = false,
    injected = false,
  ) {
    this.type = type;
    this.fromClient = fromClient;
    this.content = typeof content === "string" ? utf8(content) : content;
    this.timestamp = timestamp;
    this.dropped = dropped;
    this.injected = injected;
  }

  /** Whether this is a text message. */
  get isText(): boolean {
    return this.type === MessageType.TEXT;
  }

  /** The content as text (UTF-8; invalid bytes become U+FFFD). Setting it replaces the content. */
  get text(): string {
    return fromUtf8(this.content);
  }
  set text(s: string) {
    this.content = utf8(s);
  }

  /** Do not forward this message (its recording stays, marked dropped). */
  drop(): void {
    this.dropped = true;
  }

  /** `text message: 'hi'` or `binary message: b'\x00'`, like mitmproxy's repr. */
  toString(): string {
    if (this.isText) return `text message: ${JSON.stringify(this.text)}`;
    let s = "";
    for (const b of this.content) {
      s += b >= 0x20 && b < 0x7f && b !== 0x5c
        ? String.fromCharCode(b)
        : `\\x${b.toString(16).padStart(2, "0")}`;
    }
    return `binary message: b'${s}'`;
  }
}

/** Sends an injected message into a live WebSocket connection. */
export type WebSocketInjector = (message: WebSocketMessage) => void;

/** The WebSocket part of an HTTP flow. */
export class WebSocketData {
  messages: WebSocketMessage[] = [];
  /** Who sent the first close frame (or closed the connection); null while open. */
  closedByClient: boolean | null = null;
  /** The close code (1005: a close frame without code, 1006: closed without a close frame). */
  closeCode: number | null = null;
  closeReason: string | null = null;
  /** When the connection ended, seconds since the epoch. */
  timestampEnd: number | null = null;
  #inject: WebSocketInjector | null = null;

  /** Set by the WebSocket layer while the connection is open (null when it ends). */
  setInjector(fn: WebSocketInjector | null): void {
    this.#inject = fn;
  }

  /** Whether messages can be injected (the connection is live and open). */
  get injectable(): boolean {
    return this.#inject !== null;
  }

  /**
   * Send a message of our own: to the client (`toClient`) or to the server. It is recorded with
   * `injected` set and goes through `websocket_message` like any other. Returns false when the connection
   * is not open.
   */
  inject(toClient: boolean, content: Uint8Array | string, isText = typeof content === "string"): boolean {
    const fn = this.#inject;
    if (!fn) return false;
    const m = new WebSocketMessage(isText ? 1 : 2, !toClient, content, Date.now() / 1000, false, true);
    fn(m);
    return true;
  }

  /** WebSocket data from plain fields (a loaded flow, a stored record). */
  static from(d: {
    messages: {
      type: number;
      fromClient: boolean;
      content: Uint8Array;
      timestamp: number;
      dropped?: boolean;
      injected?: boolean;
    }[];
    closedByClient?: boolean | null;
    closeCode?: number | null;
    closeReason?: string | null;
    timestampEnd?: number | null;
  }): WebSocketData {
    const ws = new WebSocketData();
    ws.messages = d.messages.map((m) =>
      new WebSocketMessage(m.type, m.fromClient, m.content, m.timestamp, !!m.dropped, !!m.injected)
    );
    ws.closedByClient = d.closedByClient ?? null;
    ws.closeCode = d.closeCode ?? null;
    ws.closeReason = d.closeReason ?? null;
    ws.timestampEnd = d.timestampEnd ?? null;
    return ws;
  }

  toString(): string {
    return `WebSocketData(${this.messages.length} messages${
      this.closeCode !== null ? `, closed ${this.closeCode}` : ""
    })`;
  }
}
