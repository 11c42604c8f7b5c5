/**
 * The WebSocket layer (mitmproxy's `layers/websocket.py`): after a 101 to a WebSocket handshake it takes
 * both connections over, reads frames from each side (RFC 6455), assembles messages (fragments joined,
 * permessage-deflate undone), records each in `flow.websocket.messages` and raises `websocket_message` for
 * it; a message the hook did not drop goes to the other side (the original fragmentation kept when its size
 * did not change, recompressed when deflate was negotiated). Pings and pongs are forwarded at once. A close
 * frame from either side is forwarded and answered, both connections close, and `websocket_end` fires.
 *
 * Hooks: `websocket_start` (before any message), `websocket_message` per message (injected ones too),
 * `websocket_end` once. With `websocket_keep_messages` `auto` (the default) a message stays recorded only
 * while something needs the history (a recorder, the web UI, a `websocket_end` hook), else only during its
 * own hooks, so a long connection costs no memory per message; `all` keeps every message, as mitmproxy. Messages are handled strictly one after the other (a hook, or zlib, holds the ones
 * after it), so their order is kept in both directions.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, Event, Start } from "../events.ts";
import { CloseConnection, SendData, SetReading, StartHook } from "../commands.ts";
import type { Context } from "../context.ts";
import type { Connection } from "../../flow/connection.ts";
import type { HTTPFlow } from "../../flow/flow.ts";
import { WebSocketData, WebSocketMessage } from "../../flow/websocket.ts";
import { concat } from "../../http/bytes.ts";
import { describeError } from "../../addons/log.ts";
import {
  encodeClose,
  encodeFrame,
  fragment,
  type Frame,
  isUtf8,
  joinFragments,
  MaskKeys,
  MessageReader,
  Opcode,
  parseClose,
  type RawMessage,
  WebSocketError,
} from "../../websocket/frame.ts";
import { Deflater, Inflater, parseExtensions } from "../../websocket/deflate.ts";

/** An addon injected a message (see `WebSocketData.inject`). */
export class WebSocketMessageInjected extends Event {
  constructor(readonly message: WebSocketMessage) {
    super();
  }
}

/** Whether a flow's 101 response starts a WebSocket connection the proxy reads (mitmproxy's test). */
export function isWebSocketUpgrade(flow: HTTPFlow, websocketOption: boolean): boolean {
  const resp = flow.response;
  return !!resp && resp.statusCode === 101 && websocketOption &&
    (resp.headers.get("upgrade") ?? "").trim().toLowerCase() === "websocket" &&
    (flow.request.headers.get("sec-websocket-version") ?? "").trim() === "13";
}

/** Queued bytes above which reading stops while a hook or zlib holds the messages. */
const QUEUE_HIGH = 4 * 1024 * 1024;

/** One end of the WebSocket connection. */
interface Side {
  conn: Connection;
  name: "client" | "server";
  reader: MessageReader;
  /** Decompresses what this side sends. */
  inflater: Inflater | null;
  /** Compresses what we send to this side. */
  deflater: Deflater | null;
  /** Frames we send to this side are masked (it is the server). */
  mask: boolean;
  closeSent: boolean;
  /** Frames for this side not written yet (see {@link WebSocketLayer.flush}), and their size. */
  out: Uint8Array[];
  outBytes: number;
}

/** Frames for one side are written at once when this much waits, else when the layer's turn ends. */
const OUT_HIGH = 64 * 1024;

/** Relays and records the messages of one WebSocket connection. */
export class WebSocketLayer extends Layer {
  readonly flow: HTTPFlow;
  readonly ws: WebSocketData;
  #client!: Side;
  #server!: Side;
  readonly #initial: [Uint8Array | null, Uint8Array | null];
  #queue: Event[] = [];
  #queuedBytes = 0;
  #readingPaused = false;
  /** A hook or zlib holds the next message. */
  #busy = false;
  #pumping = false;
  /** Frames of this side are being read (the bytes of one event may hold several messages). */
  #draining: Side | null = null;
  #ended = false;
  #maxMessage: number | null = null;
  /** Keys for the frames we mask (those to the server). */
  readonly #keys = new MaskKeys();
  /** Sides with frames queued, in the order they were first written to. */
  #dirty: Side[] = [];

  /** `clientInitial`/`serverInitial`: bytes that came after the handshake, in the same reads. */
  constructor(
    context: Context,
    flow: HTTPFlow,
    clientInitial: Uint8Array | null = null,
    serverInitial: Uint8Array | null = null,
  ) {
    super(context);
    this.flow = flow;
    if (!(flow.websocket instanceof WebSocketData)) flow.websocket = new WebSocketData();
    this.ws = flow.websocket;
    this.#initial = [clientInitial, serverInitial];
  }

  protected onEvent(e: Event): void {
    if (e instanceof Start) return this.#start();
    if (this.#ended) {
      if (e instanceof ConnectionClosed && this.#sideOf(e.conn)) this.emit(new CloseConnection(e.conn));
      return;
    }
    if (e instanceof DataReceived) {
      if (!this.#sideOf(e.conn)) return;
      this.#queuedBytes += e.data.length;
      if (this.#busy && this.#queuedBytes > QUEUE_HIGH && !this.#readingPaused) this.#setReading(false);
    }
    this.#queue.push(e);
    this.#pump();
  }

  #sideOf(conn: Connection): Side | null {
    return conn === this.#client?.conn ? this.#client : conn === this.#server?.conn ? this.#server : null;
  }

  #setReading(on: boolean): void {
    this.#readingPaused = !on;
    this.emit(new SetReading(this.#client.conn, on));
    this.emit(new SetReading(this.#server.conn, on));
  }

  #start(): void {
    const ctx = this.context;
    const { deflate, unknown } = parseExtensions(
      this.flow.response?.headers.get("sec-websocket-extensions") ?? null,
    );
    for (const u of unknown) this.log(`Ignoring unknown WebSocket extension ${JSON.stringify(u)}.`, "warn");
    this.#maxMessage = ctx.core.limits.bodySizeLimit;
    const max = this.#maxMessage;
    const side = (conn: Connection, name: "client" | "server"): Side => {
      const fromClient = name === "client";
      return {
        conn,
        name,
        reader: new MessageReader({
          masked: fromClient,
          rsv1: deflate !== null,
          maxPayload: max,
          maxMessage: max,
        }),
        inflater: deflate
          ? new Inflater(
            fromClient ? deflate.clientMaxWindowBits : deflate.serverMaxWindowBits,
            fromClient ? deflate.clientNoContextTakeover : deflate.serverNoContextTakeover,
          )
          : null,
        // we compress as the client towards the server, as the server towards the client
        deflater: deflate
          ? new Deflater(
            fromClient ? deflate.serverMaxWindowBits : deflate.clientMaxWindowBits,
            fromClient ? deflate.serverNoContextTakeover : deflate.clientNoContextTakeover,
          )
          : null,
        mask: !fromClient,
        closeSent: false,
        out: [],
        outBytes: 0,
      };
    };
    this.#client = side(ctx.client, "client");
    this.#server = side(ctx.server, "server");
    const [ci, si] = this.#initial;
    if (ci?.length) this.#queue.push(new DataReceived(ctx.client, ci));
    if (si?.length) this.#queue.push(new DataReceived(ctx.server, si));
    this.ws.setInjector((m) => this.handle(new WebSocketMessageInjected(m)));
    this.#hold(new StartHook("websocket_start", this.flow, this.flow), () => {
      if (this.flow.killed) this.#kill();
    });
  }

  /** Run a hook; the next message waits for it. */
  #hold(hook: StartHook, then: () => void): void {
    this.#busy = true;
    this.request(hook, () => this.#continue(then));
  }

  /** After a hook or zlib: run `then`, then go on with what is queued. */
  #continue(then: () => void): void {
    this.#busy = false;
    try {
      then();
    } catch (e) {
      this.#crash(e);
    }
    this.#pump();
  }

  #crash(e: unknown): void {
    this.log(`${this.context.client}: WebSocket layer error: ${describeError(e)}`, "error");
    this.#kill();
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (let guard = 0; guard < 1_000_000 && !this.#busy && !this.#ended; guard++) {
        if (this.#draining) {
          if (!this.#readOne(this.#draining)) this.#draining = null;
          continue;
        }
        const e = this.#queue.shift();
        if (!e) break;
        this.#process(e);
      }
    } catch (e) {
      this.#crash(e);
    } finally {
      this.#pumping = false;
    }
    this.#flush();
    if (this.#readingPaused && !this.#busy && this.#queue.length === 0 && !this.#ended) {
      this.#setReading(true);
    }
  }

  #process(e: Event): void {
    if (e instanceof DataReceived) {
      this.#queuedBytes -= e.data.length;
      const side = this.#sideOf(e.conn)!;
      side.reader.push(e.data);
      this.#draining = side;
      return;
    }
    if (e instanceof ConnectionClosed) {
      const side = this.#sideOf(e.conn);
      if (side) this.#closeFrom(side, 1006, "", false);
      return;
    }
    if (e instanceof WebSocketMessageInjected) {
      const m = e.message;
      this.#record(m.fromClient ? this.#client : this.#server, m, []);
    }
  }

  /** Read the next control frame or message of `side`; false when there is none yet. */
  #readOne(side: Side): boolean {
    let got;
    try {
      got = side.reader.next();
    } catch (e) {
      if (!(e instanceof WebSocketError)) throw e;
      this.#protocolError(side, e);
      return false;
    }
    if (got === null) return false;
    if ("control" in got) this.#control(side, got.control);
    else this.#message(side, got.message);
    return true;
  }

  /**
   * Queue frames for `side`. What one pass of the layer sends to a side (the messages of one read whose
   * hooks did not wait, forwarded pings, a close) goes out as one write when the pass ends
   * ({@link #flush}): each write is a syscall, the largest cost of relaying small messages.
   */
  #write(side: Side, frame: Uint8Array): void {
    if (!side.out.length) this.#dirty.push(side);
    side.out.push(frame);
    side.outBytes += frame.length;
    if (side.outBytes >= OUT_HIGH) this.#flushSide(side);
  }

  /** Write what is queued, one SendData per side, the side written to first first. */
  #flush(): void {
    if (!this.#dirty.length) return;
    const dirty = this.#dirty;
    this.#dirty = [];
    for (const s of dirty) this.#flushSide(s);
  }

  #flushSide(side: Side): void {
    const out = side.out;
    if (!out.length) return;
    side.out = [];
    side.outBytes = 0;
    this.emit(new SendData(side.conn, out.length === 1 ? out[0] : concat(out)));
  }

  #other(side: Side): Side {
    return side === this.#client ? this.#server : this.#client;
  }

  #control(src: Side, f: Frame): void {
    const dst = this.#other(src);
    if (f.opcode === Opcode.CLOSE) {
      let close;
      try {
        close = parseClose(f.payload);
      } catch (e) {
        if (!(e instanceof WebSocketError)) throw e;
        return this.#protocolError(src, e);
      }
      return this.#closeFrom(src, close.code, close.reason, true);
    }
    const kind = f.opcode === Opcode.PING ? "ping" : "pong";
    this.log(
      `Received WebSocket ${kind} from ${src.name} (payload: ${
        JSON.stringify(new TextDecoder().decode(f.payload))
      })`,
      "debug",
    );
    if (!dst.closeSent) {
      this.#write(dst, encodeFrame(true, f.opcode, f.payload, dst.mask, false, this.#keys));
    }
  }

  #message(src: Side, raw: RawMessage): void {
    const lengths = raw.fragments.map((f) => f.length);
    if (!raw.compressed) return this.#received(src, raw.opcode, joinFragments(raw), lengths);
    this.#busy = true;
    src.inflater!.inflate(joinFragments(raw), this.#maxMessage).then(
      (plain) =>
        this.#continue(() =>
          this.#received(src, raw.opcode, plain, lengths.length > 1 ? [] : [plain.length])
        ),
      (e) =>
        this.#continue(() => {
          if (e instanceof WebSocketError) this.#protocolError(src, e);
          else throw e;
        }),
    );
  }

  #received(src: Side, opcode: number, content: Uint8Array, lengths: number[]): void {
    if (opcode === Opcode.TEXT && !isUtf8(content)) {
      return this.#protocolError(src, new WebSocketError(1007, "text message is not valid UTF-8"));
    }
    this.#record(src, new WebSocketMessage(opcode, src === this.#client, content), lengths);
  }

  /**
   * Record `m`, run `websocket_message`, then forward it unless dropped. Unless past messages are wanted
   * (see {@link #keepsHistory}), `m` leaves `flow.websocket.messages` once its hooks are done.
   */
  #record(src: Side, m: WebSocketMessage, lengths: number[]): void {
    this.ws.messages.push(m);
    this.#hold(new StartHook("websocket_message", this.flow, this.flow), () => {
      if (!this.#keepsHistory()) this.#forget(m);
      if (this.flow.killed) return this.#kill();
      if (!m.dropped) this.#send(this.#other(src), m, lengths);
    });
  }

  /**
   * Whether the messages handled stay in the flow (`websocket_keep_messages`): always with `all` (as in
   * mitmproxy), never with `current`; with `auto` while an addon wants them (a recorder, the web UI, a
   * `websocket_end` hook: see `AddonManager.wantsWebSocketHistory`), asked after each message's hooks.
   */
  #keepsHistory(): boolean {
    const core = this.context.core;
    const keep = core.limits.websocketKeep;
    return keep === "all" || (keep !== "current" && core.master.addons.wantsWebSocketHistory(this.flow));
  }

  /** Take `m` out of the flow's messages (usually the last one: messages are handled one at a time). */
  #forget(m: WebSocketMessage): void {
    const msgs = this.ws.messages;
    const i = msgs.length > 0 && msgs[msgs.length - 1] === m ? msgs.length - 1 : msgs.lastIndexOf(m);
    if (i === msgs.length - 1 && i >= 0) msgs.pop();
    else if (i >= 0) msgs.splice(i, 1);
  }

  #send(dst: Side, m: WebSocketMessage, lengths: number[]): void {
    if (dst.closeSent) return;
    const opcode = m.type === Opcode.TEXT ? Opcode.TEXT : Opcode.BINARY;
    const content = m.content instanceof Uint8Array ? m.content : new TextEncoder().encode(String(m.content));
    if (!dst.deflater) return this.#sendFrames(dst, opcode, fragment(content, lengths), false);
    this.#busy = true;
    dst.deflater.deflate(content).then(
      (c) =>
        this.#continue(() => {
          // a compressed message: one frame when it was one, else ~4 kB fragments
          const parts = lengths.length === 1 && lengths[0] === content.length ? [c] : fragment(c, []);
          this.#sendFrames(dst, opcode, parts, true);
        }),
      (e) => this.#continue(() => this.#crash(e)),
    );
  }

  #sendFrames(dst: Side, opcode: number, parts: Uint8Array[], compressed: boolean): void {
    if (dst.closeSent) return;
    const frames = parts.map((p, i) =>
      encodeFrame(
        i === parts.length - 1,
        i === 0 ? opcode : Opcode.CONTINUATION,
        p,
        dst.mask,
        compressed && i === 0,
        this.#keys,
      )
    );
    for (const f of frames) this.#write(dst, f);
  }

  /**
   * The connection closes: `src` sent a close frame (`frame`) or went away. The close goes to both sides
   * that have not had one (the answer to `src`, the notice to the other), both connections close, then
   * `websocket_end`.
   */
  #closeFrom(src: Side, code: number, reason: string, frame: boolean): void {
    if (this.#ended) return;
    const ws = this.ws;
    ws.timestampEnd = Date.now() / 1000;
    ws.closedByClient = src === this.#client;
    ws.closeCode = code;
    ws.closeReason = reason;
    for (const side of [this.#server, this.#client]) {
      if (!side.closeSent && (side !== src || frame)) {
        side.closeSent = true;
        this.#write(side, encodeClose(code, reason, side.mask));
      }
    }
    this.#end();
  }

  #protocolError(src: Side, e: WebSocketError): void {
    this.log(`${this.context.client}: WebSocket protocol error from the ${src.name}: ${e.message}`, "warn");
    this.#draining = null;
    this.#closeFrom(src, e.code, e.message, true);
  }

  /** Close both connections and fire `websocket_end`. */
  #end(): void {
    this.#ended = true;
    this.#draining = null;
    this.#queue = [];
    this.ws.setInjector(null);
    if (this.#readingPaused) this.#setReading(true);
    this.#flush();
    for (const s of [this.#server, this.#client]) {
      this.emit(new CloseConnection(s.conn));
      s.inflater?.close();
      s.deflater?.close();
    }
    this.request(new StartHook("websocket_end", this.flow, this.flow), () => {});
  }

  /** The flow was killed: both connections close at once. */
  #kill(): void {
    if (this.#ended) return;
    this.ws.timestampEnd ??= Date.now() / 1000;
    this.#end();
  }
}
