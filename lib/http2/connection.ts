/**
 * One HTTP/2 connection as a sans-io state machine (RFC 9113), for either end: bytes in through
 * {@link H2Connection.receive}, what happened out through the {@link H2Handler} callbacks, bytes to send
 * collected until {@link H2Connection.takeOutput}. It owns no socket and no timer, so the codec layers
 * (http2_server.ts, http2_client.ts) drive it from the proxy core's events, and tests feed it bytes.
 *
 * It keeps the rules of the protocol: the preface, SETTINGS and their ACKs, PING answers, stream states and
 * ids, header blocks across CONTINUATION frames (HPACK, with a header-list limit), padding, flow control
 * both ways (data waits in per-stream queues until the peer's windows allow it, sent round-robin when they
 * open; our windows are credited as data is received, except for streams the owner paused, so a slow
 * consumer holds back only its own stream), RST_STREAM and GOAWAY. A violation by the peer ends the
 * connection with GOAWAY and the right code (a connection error) or resets one stream (a stream error).
 *
 * @module
 */
import {
  DEFAULT_MAX_FRAME,
  ErrorCode,
  errorName,
  Flags,
  type Frame,
  frameHeader,
  FrameReader,
  FrameSizeError,
  FrameType,
  goawayFrame,
  headerFrames,
  MAX_WINDOW,
  pingFrame,
  PREFACE,
  rstFrame,
  Setting,
  settingsAck,
  settingsFrame,
  u32,
  windowUpdateFrame,
} from "./frames.ts";
import { HpackDecoder, HpackEncoder, HpackError } from "./hpack.ts";

/** What a connection reports to its owner. */
export interface H2Handler {
  /** A complete header block on a stream (a new stream's first one, trailers, or a 1xx). */
  headers(streamId: number, fields: [string, string][], endStream: boolean): void;
  /** Body bytes (flow-controlled), possibly with the end of the stream. */
  data(streamId: number, data: Uint8Array, endStream: boolean): void;
  /** The stream is over without a normal end: the peer reset it (`remote`) or we did for an error. */
  reset(streamId: number, code: number, remote: boolean, message: string): void;
  /** The peer sent GOAWAY: streams above `lastStreamId` that we started were not processed. */
  goaway(lastStreamId: number, code: number, debug: string): void;
  /** The connection is over because of a violation (GOAWAY sent when `sent`); the owner closes it. */
  failed(code: number, message: string): void;
  /** The peer's window opened and queued data went out (for backpressure). */
  drained?(): void;
  /** A PING ACK (answer to {@link H2Connection.ping}). */
  pingAck?(data: Uint8Array): void;
}

/** Our settings and limits. */
export interface H2Options {
  /** "client": we start streams (odd ids); "server": the peer does. */
  role: "client" | "server";
  /** Our SETTINGS_INITIAL_WINDOW_SIZE (default 1 MiB) and the connection window we grant (default 16 MiB). */
  initialWindow?: number;
  connectionWindow?: number;
  /** Our SETTINGS_MAX_CONCURRENT_STREAMS (default 100). */
  maxConcurrentStreams?: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE (default 64 KiB). */
  maxHeaderListSize?: number;
  /** Our SETTINGS_MAX_FRAME_SIZE (default 16384). */
  maxFrameSize?: number;
}

type StreamState = "open" | "half-closed-local" | "half-closed-remote" | "closed";

interface Stream {
  id: number;
  state: StreamState;
  /** How much the peer lets us send. */
  sendWindow: number;
  /** How much the peer may still send us before we credit more. */
  recvWindow: number;
  /** Received and not yet credited. */
  unacked: number;
  /** How many reasons the owner has to hold back credit (a slow consumer, a full queue): 0 credits. */
  pauses: number;
  queue: Uint8Array[];
  queued: number;
  /** End the stream after the queue (with `trailers`, if set). */
  endAfter: boolean;
  /** Trailers wait in #pendingTrailers until the queue is sent. */
  hasTrailers: boolean;
  /** Header blocks received (the first is the head, later ones trailers or after 1xx). */
  blocks: number;
}

const EMPTY = new Uint8Array(0);

/** The error of a stream or the connection, thrown inside frame handling. */
class H2Error extends Error {
  constructor(readonly code: number, message: string, readonly streamId = 0) {
    super(message);
  }
}

/** An HTTP/2 connection (either end). */
export class H2Connection {
  readonly role: "client" | "server";
  readonly #h: H2Handler;
  readonly #reader: FrameReader;
  readonly #decoder: HpackDecoder;
  readonly #encoder = new HpackEncoder();
  readonly #streams = new Map<number, Stream>();
  #out: Uint8Array[] = [];
  #outBytes = 0;
  /** Waiting for the client preface (server role). */
  #preface: Uint8Array | null;
  #gotSettings = false;
  /** A header block being received across CONTINUATION frames. */
  #cont: { id: number; parts: Uint8Array[]; size: number; endStream: boolean } | null = null;
  /** The highest stream id the peer opened, and the last we opened. */
  #lastPeer = 0;
  #nextOwn: number;
  /** The peer's settings. */
  peerMaxConcurrent = 100;
  #peerInitialWindow = 65535;
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  peerMaxHeaderList = Infinity;
  /** Connection windows. */
  #sendWindow = 65535;
  #recvWindow: number;
  #recvUnacked = 0;
  readonly #connWindow: number;
  readonly #initialWindow: number;
  readonly #maxConcurrent: number;
  readonly #maxHeaderList: number;
  /** Streams with queued data (round-robin order). */
  readonly #sending = new Set<Stream>();
  /** GOAWAY sent / received, and the connection is finished (after a connection error). */
  goawaySent = false;
  goawayReceived = false;
  #dead = false;
  #rapidResets = 0;

  constructor(handler: H2Handler, opts: H2Options) {
    this.role = opts.role;
    this.#h = handler;
    this.#initialWindow = opts.initialWindow ?? 1 << 20;
    this.#connWindow = opts.connectionWindow ?? 1 << 24;
    this.#maxConcurrent = opts.maxConcurrentStreams ?? 100;
    this.#maxHeaderList = opts.maxHeaderListSize ?? 64 * 1024;
    this.#reader = new FrameReader(opts.maxFrameSize ?? DEFAULT_MAX_FRAME);
    this.#decoder = new HpackDecoder({ maxHeaderListSize: this.#maxHeaderList });
    this.#recvWindow = 65535;
    this.#preface = opts.role === "server" ? new Uint8Array(0) : null;
    this.#nextOwn = opts.role === "client" ? 1 : 2;
  }

  /** Queue the connection preface and our SETTINGS (call once, first). */
  start(): void {
    if (this.role === "client") this.#push(PREFACE);
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, this.#maxConcurrent],
      [Setting.INITIAL_WINDOW_SIZE, this.#initialWindow],
      [Setting.MAX_HEADER_LIST_SIZE, this.#maxHeaderList],
    ];
    if (this.role === "client") settings.unshift([Setting.ENABLE_PUSH, 0]);
    if (this.#reader.maxFrameSize !== DEFAULT_MAX_FRAME) {
      settings.push([Setting.MAX_FRAME_SIZE, this.#reader.maxFrameSize]);
    }
    this.#push(settingsFrame(settings));
    if (this.#connWindow > 65535) {
      this.#push(windowUpdateFrame(0, this.#connWindow - 65535));
      this.#recvWindow = this.#connWindow;
    }
  }

  /** Whether the connection can still be used. */
  get alive(): boolean {
    return !this.#dead && !this.goawaySent && !this.goawayReceived;
  }

  /** Whether the connection is finished (a connection error). */
  get dead(): boolean {
    return this.#dead;
  }

  /** Streams that are not closed. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** Bytes queued for the peer's windows (all streams). */
  get backlog(): number {
    let n = 0;
    for (const s of this.#sending) n += s.queued;
    return n;
  }

  /** Bytes queued on one stream. */
  queuedOn(id: number): number {
    return this.#streams.get(id)?.queued ?? 0;
  }

  /** Whether another stream may be opened now (client role: the peer's concurrency limit). */
  get canOpenStream(): boolean {
    return this.alive && this.#streams.size < this.peerMaxConcurrent && this.#nextOwn < MAX_WINDOW;
  }

  /** Whether `id` is a stream that is not closed. */
  isOpen(id: number): boolean {
    return this.#streams.has(id);
  }

  /** Whether we may still send on `id`. */
  canSend(id: number): boolean {
    const s = this.#streams.get(id);
    return !!s && (s.state === "open" || s.state === "half-closed-remote") && !s.endAfter;
  }

  /** The bytes to send, if any. */
  takeOutput(): Uint8Array | null {
    if (this.#out.length === 0) return null;
    const out = this.#out.length === 1 ? this.#out[0] : concatAll(this.#out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    return out;
  }

  #push(b: Uint8Array): void {
    this.#out.push(b);
    this.#outBytes += b.length;
  }

  // ---- receiving ----

  /** Bytes from the peer. */
  receive(d: Uint8Array): void {
    if (this.#dead) return;
    if (this.#preface !== null) {
      const have = this.#preface.length;
      const need = PREFACE.length - have;
      const take = d.subarray(0, need);
      for (let i = 0; i < take.length; i++) {
        if (take[i] !== PREFACE[have + i]) {
          return this.#connectionError(ErrorCode.PROTOCOL_ERROR, "invalid HTTP/2 connection preface");
        }
      }
      if (take.length < need) {
        this.#preface = concatAll([this.#preface, take], have + take.length);
        return;
      }
      this.#preface = null;
      d = d.subarray(need);
      if (!d.length) return;
    }
    let frames: Frame[];
    try {
      frames = this.#reader.push(d);
    } catch (e) {
      if (e instanceof FrameSizeError) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, e.message);
      throw e;
    }
    for (const f of frames) {
      if (this.#dead) return;
      try {
        this.#frame(f);
      } catch (e) {
        if (!(e instanceof H2Error)) throw e;
        if (e.streamId === 0) return this.#connectionError(e.code, e.message);
        this.#streamError(e.streamId, e.code, e.message);
      }
    }
    this.#creditReceived();
  }

  #frame(f: Frame): void {
    if (!this.#gotSettings) {
      if (f.type !== FrameType.SETTINGS || f.flags & Flags.ACK) {
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, "the first frame is not SETTINGS");
      }
    }
    if (this.#cont !== null && f.type !== FrameType.CONTINUATION) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    switch (f.type) {
      case FrameType.DATA:
        return this.#onData(f);
      case FrameType.HEADERS:
        return this.#onHeaders(f);
      case FrameType.PRIORITY:
        if (f.streamId === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (f.payload.length !== 5) {
          throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY of wrong size", f.streamId);
        }
        return;
      case FrameType.RST_STREAM:
        return this.#onRst(f);
      case FrameType.SETTINGS:
        return this.#onSettings(f);
      case FrameType.PUSH_PROMISE:
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE received though push is disabled");
      case FrameType.PING:
        if (f.streamId !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
        if (f.payload.length !== 8) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "PING of wrong size");
        if (f.flags & Flags.ACK) this.#h.pingAck?.(f.payload.slice());
        else this.#push(pingFrame(f.payload, true));
        return;
      case FrameType.GOAWAY: {
        if (f.streamId !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (f.payload.length < 8) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY too short");
        this.goawayReceived = true;
        const last = u32(f.payload, 0) & MAX_WINDOW;
        const code = u32(f.payload, 4);
        const debug = new TextDecoder().decode(f.payload.subarray(8, 8 + 256));
        return this.#h.goaway(last, code, debug);
      }
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(f);
      case FrameType.CONTINUATION:
        return this.#onContinuation(f);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  /** Strip padding; returns the content. */
  #unpad(f: Frame): Uint8Array {
    if (!(f.flags & Flags.PADDED)) return f.payload;
    if (f.payload.length < 1) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "padded frame without length");
    const pad = f.payload[0];
    if (pad >= f.payload.length) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
    return f.payload.subarray(1, f.payload.length - pad);
  }

  /** Whether `id` names a stream that was never opened. */
  #idle(id: number): boolean {
    const peerStarted = (id & 1) === (this.role === "server" ? 1 : 0);
    return peerStarted ? id > this.#lastPeer : id >= this.#nextOwn;
  }

  #onData(f: Frame): void {
    const id = f.streamId;
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const len = f.payload.length;
    // every DATA frame counts against the connection window, whatever its stream's state
    if (len > this.#recvWindow) {
      throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    this.#recvWindow -= len;
    this.#recvUnacked += len;
    const s = this.#streams.get(id);
    if (!s) {
      if (this.#idle(id)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      return; // a stream we closed: ignored
    }
    if (s.state !== "open" && s.state !== "half-closed-local") {
      throw new H2Error(ErrorCode.STREAM_CLOSED, `DATA on half-closed stream ${id}`, id);
    }
    if (s.blocks === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `DATA before HEADERS on stream ${id}`);
    if (len > s.recvWindow) {
      throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `DATA beyond the window of stream ${id}`, id);
    }
    s.recvWindow -= len;
    s.unacked += len;
    const body = this.#unpad(f);
    const end = (f.flags & Flags.END_STREAM) !== 0;
    if (end) this.#remoteEnded(s);
    if (body.length || end) this.#h.data(id, body, end);
  }

  #onHeaders(f: Frame): void {
    const id = f.streamId;
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let block = this.#unpad(f);
    if (f.flags & Flags.PRIORITY) {
      if (block.length < 5) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for PRIORITY");
      if ((u32(block, 0) & MAX_WINDOW) === id) {
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, `stream ${id} depends on itself`, id);
      }
      block = block.subarray(5);
    }
    const endStream = (f.flags & Flags.END_STREAM) !== 0;
    if (!(f.flags & Flags.END_HEADERS)) {
      this.#cont = { id, parts: [block.slice()], size: block.length, endStream };
      this.#checkBlockSize(this.#cont.size);
      return;
    }
    this.#headerBlock(id, block, endStream);
  }

  #onContinuation(f: Frame): void {
    const c = this.#cont;
    if (c === null || f.streamId !== c.id) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    }
    c.parts.push(f.payload.slice());
    c.size += f.payload.length;
    this.#checkBlockSize(c.size);
    if (!(f.flags & Flags.END_HEADERS)) return;
    this.#cont = null;
    this.#headerBlock(c.id, concatAll(c.parts, c.size), c.endStream);
  }

  /** A compressed block far over the header-list limit is not even decoded (CONTINUATION floods). */
  #checkBlockSize(size: number): void {
    const limit = Math.max(this.#maxHeaderList * 2, 64 * 1024);
    if (size > limit) {
      throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, `header block over ${limit} bytes`);
    }
  }

  #headerBlock(id: number, block: Uint8Array, endStream: boolean): void {
    let fields: [string, string][] | null = null;
    let tooLarge: string | null = null;
    try {
      fields = this.#decoder.decode(block);
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      if (!e.tooLarge) throw new H2Error(ErrorCode.COMPRESSION_ERROR, `HPACK: ${e.message}`);
      tooLarge = e.message;
    }
    let s = this.#streams.get(id);
    if (!s) {
      const peerStarted = (id & 1) === (this.role === "server" ? 1 : 0);
      if (!peerStarted || this.role === "client") {
        if (this.#idle(id)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`);
        return; // a stream we closed
      }
      if (id <= this.#lastPeer) {
        throw new H2Error(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${id}`);
      }
      this.#lastPeer = id;
      if (this.goawaySent) return; // after our GOAWAY, new streams are ignored
      s = this.#newStream(id);
      if (this.#streams.size > this.#maxConcurrent) {
        this.#streams.delete(id);
        this.#push(rstFrame(id, ErrorCode.REFUSED_STREAM));
        return;
      }
    } else if (s.state === "half-closed-remote" || s.state === "closed") {
      throw new H2Error(ErrorCode.STREAM_CLOSED, `HEADERS on half-closed stream ${id}`, id);
    } else if (s.blocks > 0 && !endStream && !this.#informational(fields)) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, `trailers without END_STREAM on stream ${id}`, id);
    }
    if (this.#informational(fields)) s.blocks--;
    s.blocks++;
    if (tooLarge !== null) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, `header list too large: ${tooLarge}`, id);
    }
    if (endStream) this.#remoteEnded(s);
    this.#h.headers(id, fields!, endStream);
  }

  /** A 1xx head (client role): the final head follows, so it does not count as the stream's head. */
  #informational(fields: [string, string][] | null): boolean {
    if (this.role !== "client" || !fields || !fields.length || fields[0][0] !== ":status") return false;
    const v = fields[0][1];
    return v.length === 3 && v[0] === "1";
  }

  #newStream(id: number): Stream {
    const s: Stream = {
      id,
      state: "open",
      sendWindow: this.#peerInitialWindow,
      recvWindow: this.#initialWindow,
      unacked: 0,
      pauses: 0,
      queue: [],
      queued: 0,
      endAfter: false,
      hasTrailers: false,
      blocks: 0,
    };
    this.#streams.set(id, s);
    return s;
  }

  #remoteEnded(s: Stream): void {
    if (s.state === "open") s.state = "half-closed-remote";
    else this.#close(s);
  }

  #localEnded(s: Stream): void {
    if (s.state === "open") s.state = "half-closed-local";
    else this.#close(s);
  }

  #close(s: Stream): void {
    s.state = "closed";
    this.#streams.delete(s.id);
    this.#sending.delete(s);
    s.queue = [];
    s.queued = 0;
  }

  #onRst(f: Frame): void {
    const id = f.streamId;
    if (id === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (f.payload.length !== 4) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM of wrong size");
    const s = this.#streams.get(id);
    if (!s) {
      if (this.#idle(id)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
      return;
    }
    // many streams opened and reset at once (CVE-2023-44487, "rapid reset"): calm the peer down
    if (++this.#rapidResets > 100_000) {
      throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, "too many streams reset");
    }
    this.#close(s);
    const code = u32(f.payload, 0);
    this.#h.reset(id, code, true, `stream reset by peer (${errorName(code)})`);
  }

  #onSettings(f: Frame): void {
    if (f.streamId !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (f.flags & Flags.ACK) {
      if (f.payload.length) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (f.payload.length % 6) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS of wrong size");
    this.#gotSettings = true;
    const p = f.payload;
    for (let i = 0; i < p.length; i += 6) {
      const key = (p[i] << 8) | p[i + 1];
      const value = u32(p, i + 2);
      switch (key) {
        case Setting.HEADER_TABLE_SIZE:
          this.#encoder.setMaxTableSize(value);
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH not 0 or 1");
          if (value === 1 && this.role === "client") {
            throw new H2Error(ErrorCode.PROTOCOL_ERROR, "a server sent ENABLE_PUSH 1");
          }
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxConcurrent = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large");
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) {
              throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "a stream window overflowed");
            }
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 0xffffff) {
            throw new H2Error(ErrorCode.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value} out of range`);
          }
          this.#peerMaxFrame = value;
          break;
        case Setting.MAX_HEADER_LIST_SIZE:
          this.peerMaxHeaderList = value;
          break;
        default:
          break; // unknown settings are ignored
      }
    }
    this.#push(settingsAck());
    this.#flush();
  }

  #onWindowUpdate(f: Frame): void {
    if (f.payload.length !== 4) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE of wrong size");
    const inc = u32(f.payload, 0) & MAX_WINDOW;
    const id = f.streamId;
    if (id === 0) {
      if (inc === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "connection window over 2^31-1");
      }
    } else {
      const s = this.#streams.get(id);
      if (!s) {
        if (this.#idle(id)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
        return;
      }
      if (inc === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0", id);
      s.sendWindow += inc;
      if (s.sendWindow > MAX_WINDOW) {
        throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `window of stream ${id} over 2^31-1`, id);
      }
    }
    this.#flush();
  }

  /** Credit what was received: the connection always, each stream unless its owner paused it. */
  #creditReceived(): void {
    if (this.#dead) return;
    if (this.#recvUnacked >= this.#connWindow / 4 || this.#recvWindow < this.#connWindow / 2) {
      if (this.#recvUnacked > 0) {
        this.#push(windowUpdateFrame(0, this.#recvUnacked));
        this.#recvWindow += this.#recvUnacked;
        this.#recvUnacked = 0;
      }
    }
    for (const s of this.#streams.values()) {
      if (s.unacked === 0 || s.pauses > 0 || s.state === "half-closed-remote") continue;
      if (s.unacked >= this.#initialWindow / 4 || s.recvWindow < this.#initialWindow / 2) {
        this.#push(windowUpdateFrame(s.id, s.unacked));
        s.recvWindow += s.unacked;
        s.unacked = 0;
      }
    }
  }

  /**
   * Hold back the credit of a stream (its sender stops once its window is used up), or undo one such hold:
   * holds are counted, credit is given again when the last one is undone.
   */
  setPaused(id: number, paused: boolean): void {
    const s = this.#streams.get(id);
    if (!s) return;
    if (paused) {
      s.pauses++;
      return;
    }
    if (s.pauses === 0 || --s.pauses > 0) return;
    if (s.unacked > 0 && s.state !== "half-closed-remote") {
      this.#push(windowUpdateFrame(s.id, s.unacked));
      s.recvWindow += s.unacked;
      s.unacked = 0;
    }
  }

  // ---- errors ----

  #connectionError(code: number, message: string): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#cont = null;
    if (!this.goawaySent) {
      this.goawaySent = true;
      this.#push(goawayFrame(this.#lastPeer, code, message));
    }
    this.#h.failed(code, message);
  }

  #streamError(id: number, code: number, message: string): void {
    const s = this.#streams.get(id);
    this.#push(rstFrame(id, code));
    if (s) {
      this.#close(s);
      this.#h.reset(id, code, false, message);
    }
  }

  // ---- sending ----

  /** The id for a new stream of ours (client role). */
  newStreamId(): number {
    const id = this.#nextOwn;
    this.#nextOwn += 2;
    return id;
  }

  /** Send a header block: a request opens stream `id` (client role), a response or trailers continue it. */
  sendHeaders(id: number, fields: readonly (readonly [string, string])[], endStream: boolean): void {
    if (this.#dead) return;
    let s = this.#streams.get(id);
    if (!s) {
      if (this.role !== "client") return;
      s = this.#newStream(id);
      s.blocks = 0;
    }
    if (s.state !== "open" && s.state !== "half-closed-remote") return;
    const block = this.#encoder.encode(fields);
    this.#push(headerFrames(id, block, endStream, this.#peerMaxFrame));
    if (endStream) this.#localEnded(s);
  }

  /** Send body bytes (queued while the peer's windows are closed). */
  sendData(id: number, data: Uint8Array, endStream = false): void {
    const s = this.#streams.get(id);
    if (!s || s.endAfter || (s.state !== "open" && s.state !== "half-closed-remote")) return;
    if (data.length) {
      s.queue.push(data);
      s.queued += data.length;
    }
    if (endStream) s.endAfter = true;
    this.#sending.add(s);
    this.#flushStream(s);
  }

  /** Send trailers after the queued data; they end the stream. */
  sendTrailers(id: number, fields: readonly (readonly [string, string])[]): void {
    const s = this.#streams.get(id);
    if (!s || s.endAfter || (s.state !== "open" && s.state !== "half-closed-remote")) return;
    if (s.queued === 0) return this.sendHeaders(id, fields, true);
    // encoded only when they go out: HPACK blocks must reach the peer in the order they were encoded
    s.hasTrailers = true;
    s.endAfter = true;
    this.#pendingTrailers.set(id, fields);
    this.#sending.add(s);
  }

  readonly #pendingTrailers = new Map<number, readonly (readonly [string, string])[]>();

  /** End the stream (after queued data). */
  endStream(id: number): void {
    this.sendData(id, EMPTY, true);
  }

  /** Reset a stream with `code`. */
  reset(id: number, code: number): void {
    const s = this.#streams.get(id);
    if (!s) return;
    this.#pendingTrailers.delete(id);
    this.#close(s);
    this.#push(rstFrame(id, code));
  }

  /** Send GOAWAY (no new streams from the peer; open ones may finish). */
  goaway(code: number = ErrorCode.NO_ERROR, debug = ""): void {
    if (this.goawaySent || this.#dead) return;
    this.goawaySent = true;
    this.#push(goawayFrame(this.#lastPeer, code, debug));
  }

  /** Send a PING. */
  ping(data: Uint8Array = new Uint8Array(8)): void {
    if (!this.#dead) this.#push(pingFrame(data, false));
  }

  #flush(): void {
    if (this.#sending.size === 0) return;
    const before = this.backlog;
    // round-robin: each stream sends up to one frame per round while the connection window lasts
    for (let round = 0; round < 100_000 && this.#sending.size && this.#sendWindow > 0; round++) {
      let progressed = false;
      for (const s of [...this.#sending]) {
        if (this.#sendOne(s)) progressed = true;
        if (this.#sendWindow <= 0) break;
      }
      if (!progressed) break;
    }
    if (before > 0 && this.backlog < before) this.#h.drained?.();
  }

  #flushStream(s: Stream): void {
    for (let i = 0; i < 100_000 && this.#sendOne(s); i++);
  }

  /** Send one DATA frame (or the end) of `s`; whether anything went out. */
  #sendOne(s: Stream): boolean {
    if (!this.#sending.has(s)) return false;
    if (s.queued > 0) {
      const n = Math.min(s.queued, s.sendWindow, this.#sendWindow, this.#peerMaxFrame);
      if (n <= 0) return false;
      const first = s.queue[0];
      let chunk: Uint8Array;
      if (first.length <= n) {
        chunk = first;
        s.queue.shift();
      } else {
        chunk = first.subarray(0, n);
        s.queue[0] = first.subarray(n);
      }
      s.queued -= chunk.length;
      s.sendWindow -= chunk.length;
      this.#sendWindow -= chunk.length;
      const last = s.queued === 0 && s.endAfter && !s.hasTrailers;
      this.#push(frameHeader(chunk.length, FrameType.DATA, last ? Flags.END_STREAM : 0, s.id));
      this.#push(chunk);
      if (last) {
        this.#sending.delete(s);
        this.#localEnded(s);
      } else if (s.queued === 0) this.#queueEmpty(s);
      return true;
    }
    this.#queueEmpty(s);
    return false;
  }

  /** Nothing more queued on `s`: the trailers or the end go now, if due. */
  #queueEmpty(s: Stream): void {
    this.#sending.delete(s);
    if (!s.endAfter) return;
    if (s.hasTrailers) {
      const fields = this.#pendingTrailers.get(s.id) ?? [];
      this.#pendingTrailers.delete(s.id);
      s.hasTrailers = false;
      this.#push(headerFrames(s.id, this.#encoder.encode(fields), true, this.#peerMaxFrame));
    } else this.#push(frameHeader(0, FrameType.DATA, Flags.END_STREAM, s.id));
    this.#localEnded(s);
  }
}

function concatAll(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export { ErrorCode, errorName };
