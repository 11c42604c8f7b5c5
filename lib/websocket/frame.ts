/**
 * RFC 6455 framing: pure encode/decode of WebSocket frames over Uint8Array, no I/O. {@link FrameReader}
 * parses frames from bytes as they arrive (unmasking them, checking the rules of §5), {@link MessageReader}
 * assembles fragmented data frames into messages and lets control frames through, {@link encodeFrame} and
 * {@link encodeClose} build frames.
 *
 * @module
 */
import { allocBytes, concat } from "../http/bytes.ts";

/** Frame opcodes (RFC 6455 §5.2). */
export const Opcode = {
  CONTINUATION: 0,
  TEXT: 1,
  BINARY: 2,
  CLOSE: 8,
  PING: 9,
  PONG: 10,
} as const;

/** Close codes and their names (wsproto's CloseReason, as mitmproxy shows them). */
export const CLOSE_REASONS: Record<number, string> = {
  1000: "NORMAL_CLOSURE",
  1001: "GOING_AWAY",
  1002: "PROTOCOL_ERROR",
  1003: "UNSUPPORTED_DATA",
  1005: "NO_STATUS_RCVD",
  1006: "ABNORMAL_CLOSURE",
  1007: "INVALID_FRAME_PAYLOAD_DATA",
  1008: "POLICY_VIOLATION",
  1009: "MESSAGE_TOO_BIG",
  1010: "MANDATORY_EXT",
  1011: "INTERNAL_ERROR",
  1012: "SERVICE_RESTART",
  1013: "TRY_AGAIN_LATER",
  1014: "UNASSIGNED_1014",
  1015: "TLS_HANDSHAKE_FAILED",
};

/** A violation of the protocol by the peer, with the close code to answer it with. */
export class WebSocketError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "WebSocketError";
  }
}

/** One frame. `payload` is unmasked. */
export interface Frame {
  fin: boolean;
  /** RSV1: the message is compressed (permessage-deflate), on its first frame. */
  rsv1: boolean;
  opcode: number;
  payload: Uint8Array;
}

/** Whether `op` is a control opcode (close, ping, pong). */
export function isControl(op: number): boolean {
  return op >= 8;
}

/**
 * Masking keys, drawn from the system's random source a few hundred at a time (one `getRandomValues` and
 * no fresh buffer per frame: each cost about as much as masking a small message).
 */
export class MaskKeys {
  readonly #pool = new Uint8Array(1024);
  #at = this.#pool.length;

  /** Write the next random 4-byte key into `out` at `offset`. */
  next(out: Uint8Array, offset: number): void {
    if (this.#at === this.#pool.length) {
      crypto.getRandomValues(this.#pool);
      this.#at = 0;
    }
    const p = this.#pool;
    const i = this.#at;
    out[offset] = p[i];
    out[offset + 1] = p[i + 1];
    out[offset + 2] = p[i + 2];
    out[offset + 3] = p[i + 3];
    this.#at = i + 4;
  }
}

/**
 * One frame as bytes. `mask`: mask the payload with a random key (a client's frames must be masked, a
 * server's must not), from `keys` if given.
 */
export function encodeFrame(
  fin: boolean,
  opcode: number,
  payload: Uint8Array,
  mask: boolean,
  rsv1 = false,
  keys?: MaskKeys,
): Uint8Array {
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = 2 + lenBytes + (mask ? 4 : 0);
  const out = allocBytes(head + n);
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (lenBytes === 0) out[1] = n;
  else if (lenBytes === 2) {
    out[1] = 126;
    out[2] = n >>> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 127;
    const hi = Math.floor(n / 0x1_0000_0000);
    const lo = n >>> 0;
    out[2] = hi >>> 24;
    out[3] = (hi >>> 16) & 0xff;
    out[4] = (hi >>> 8) & 0xff;
    out[5] = hi & 0xff;
    out[6] = lo >>> 24;
    out[7] = (lo >>> 16) & 0xff;
    out[8] = (lo >>> 8) & 0xff;
    out[9] = lo & 0xff;
  }
  out[1] |= mask ? 0x80 : 0;
  if (!mask) {
    out.set(payload, head);
    return out;
  }
  const k = head - 4;
  if (keys) keys.next(out, k);
  else out.set(crypto.getRandomValues(new Uint8Array(4)), k);
  const k0 = out[k], k1 = out[k + 1], k2 = out[k + 2], k3 = out[k + 3];
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    out[head + i] = payload[i] ^ k0;
    out[head + i + 1] = payload[i + 1] ^ k1;
    out[head + i + 2] = payload[i + 2] ^ k2;
    out[head + i + 3] = payload[i + 3] ^ k3;
  }
  for (; i < n; i++) out[head + i] = payload[i] ^ out[k + (i & 3)];
  return out;
}

/** The payload of a close frame: code (none: no payload) and a UTF-8 reason (at most 123 bytes). */
export function closePayload(code: number | null, reason = ""): Uint8Array {
  if (code === null || code === 1005 || code === 1006 || code === 1015) return new Uint8Array(0);
  let r = new TextEncoder().encode(reason);
  if (r.length > 123) r = r.subarray(0, 123);
  const out = new Uint8Array(2 + r.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}

/** A close frame (see {@link closePayload}). */
export function encodeClose(code: number | null, reason: string, mask: boolean): Uint8Array {
  return encodeFrame(true, Opcode.CLOSE, closePayload(code, reason), mask);
}

/** Whether a close code may be sent in a close frame (RFC 6455 §7.4). */
export function validCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Decode UTF-8 strictly: null when invalid. */
export function strictUtf8(b: Uint8Array): string | null {
  try {
    return fatalUtf8.decode(b);
  } catch {
    return null;
  }
}

/**
 * Whether `b` is valid UTF-8 (a text message must be). ASCII, the usual case, is checked in a plain loop,
 * much cheaper for small messages than a decoder call; anything else goes to the strict decoder.
 */
export function isUtf8(b: Uint8Array): boolean {
  const n = b.length;
  for (let i = 0; i < n; i++) if (b[i] >= 0x80) return strictUtf8(b.subarray(i)) !== null;
  return true;
}

/** Code and reason of a received close frame; a bad payload is a {@link WebSocketError}. */
export function parseClose(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length === 0) return { code: 1005, reason: "" };
  if (payload.length === 1) throw new WebSocketError(1002, "close frame with a one-byte payload");
  const code = (payload[0] << 8) | payload[1];
  if (!validCloseCode(code)) throw new WebSocketError(1002, `invalid close code ${code}`);
  const reason = strictUtf8(payload.subarray(2));
  if (reason === null) throw new WebSocketError(1007, "close reason is not valid UTF-8");
  return { code, reason };
}

/** How a {@link FrameReader} checks frames. */
export interface FrameReaderOptions {
  /** Frames must be masked (we read a client) or must not be (we read a server). */
  masked: boolean;
  /** RSV1 may be set (permessage-deflate was negotiated). */
  rsv1: boolean;
  /** Largest payload accepted (null: no limit). */
  maxPayload: number | null;
}

/** Parses frames out of a byte stream. */
export class FrameReader {
  readonly #opts: FrameReaderOptions;
  #chunks: Uint8Array[] = [];
  #len = 0;

  constructor(opts: FrameReaderOptions) {
    this.#opts = opts;
  }

  /** Bytes received and not yet read as frames. */
  get buffered(): number {
    return this.#len;
  }

  /** More bytes from the peer. */
  push(data: Uint8Array): void {
    if (!data.length) return;
    this.#chunks.push(data);
    this.#len += data.length;
  }

  #byte(i: number): number {
    for (const c of this.#chunks) {
      if (i < c.length) return c[i];
      i -= c.length;
    }
    return 0;
  }

  /** Remove `n` bytes from the front (copied when they span chunks). */
  #take(n: number): Uint8Array {
    this.#len -= n;
    const first = this.#chunks[0];
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = allocBytes(n);
    let o = 0;
    while (o < n) {
      const c = this.#chunks[0];
      const k = Math.min(c.length, n - o);
      out.set(k === c.length ? c : c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }

  /** The next complete frame, or null until more bytes arrive. Throws {@link WebSocketError}. */
  next(): Frame | null {
    if (this.#len < 2) return null;
    const b0 = this.#byte(0);
    const b1 = this.#byte(1);
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    if (b0 & 0x30) throw new WebSocketError(1002, "reserved bits RSV2/RSV3 set");
    if (rsv1 && !this.#opts.rsv1) throw new WebSocketError(1002, "RSV1 set without permessage-deflate");
    if ((opcode > 2 && opcode < 8) || opcode > 10) {
      throw new WebSocketError(1002, `unknown opcode ${opcode}`);
    }
    if (masked !== this.#opts.masked) {
      throw new WebSocketError(1002, this.#opts.masked ? "unmasked client frame" : "masked server frame");
    }
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (this.#len < 4) return null;
      len = (this.#byte(2) << 8) | this.#byte(3);
      head = 4;
    } else if (len === 127) {
      if (this.#len < 10) return null;
      const hi = ((this.#byte(2) << 24) >>> 0) + (this.#byte(3) << 16) + (this.#byte(4) << 8) + this.#byte(5);
      const lo = ((this.#byte(6) << 24) >>> 0) + (this.#byte(7) << 16) + (this.#byte(8) << 8) + this.#byte(9);
      if (hi > 0x1fffff) throw new WebSocketError(1009, "frame length out of range");
      len = hi * 0x1_0000_0000 + lo;
      head = 10;
    }
    if (isControl(opcode)) {
      if (!fin) throw new WebSocketError(1002, "fragmented control frame");
      if (len > 125) throw new WebSocketError(1002, "control frame payload over 125 bytes");
      if (rsv1) throw new WebSocketError(1002, "RSV1 set on a control frame");
    }
    const max = this.#opts.maxPayload;
    if (max !== null && len > max) {
      throw new WebSocketError(1009, `frame of ${len} bytes exceeds the limit of ${max} bytes`);
    }
    const total = head + (masked ? 4 : 0) + len;
    if (this.#len < total) return null;
    this.#take(head);
    if (!masked) return { fin, rsv1, opcode, payload: len ? this.#take(len) : new Uint8Array(0) };
    const key = this.#take(4);
    const k0 = key[0], k1 = key[1], k2 = key[2], k3 = key[3];
    const src = len ? this.#take(len) : new Uint8Array(0);
    // unmasked into a copy (the received bytes stay as they came): word by word when large, else bytewise
    // into a slice of node's pool (a fresh buffer costs more than unmasking a small payload)
    if (len >= 4096) {
      const copy = new Uint8Array(len);
      copy.set(src);
      unmask(copy, Uint8Array.of(k0, k1, k2, k3));
      return { fin, rsv1, opcode, payload: copy };
    }
    const payload = allocBytes(len);
    let i = 0;
    for (; i + 4 <= len; i += 4) {
      payload[i] = src[i] ^ k0;
      payload[i + 1] = src[i + 1] ^ k1;
      payload[i + 2] = src[i + 2] ^ k2;
      payload[i + 3] = src[i + 3] ^ k3;
    }
    for (; i < len; i++) payload[i] = src[i] ^ key[i & 3];
    return { fin, rsv1, opcode, payload };
  }
}

/** XOR `data` with the 4-byte `key` in place. */
export function unmask(data: Uint8Array, key: Uint8Array): void {
  const n = data.length;
  let i = 0;
  if (n >= 16 && data.byteOffset % 4 === 0 && key.byteOffset % 4 === 0) {
    const k32 = new Uint32Array(key.buffer, key.byteOffset, 1)[0];
    const words = new Uint32Array(data.buffer, data.byteOffset, n >>> 2);
    for (let w = 0; w < words.length; w++) words[w] ^= k32;
    i = words.length << 2;
  }
  for (; i < n; i++) data[i] ^= key[i & 3];
}

/** A complete data message as received: its opcode, whether compressed, its fragments (payloads). */
export interface RawMessage {
  opcode: number;
  compressed: boolean;
  fragments: Uint8Array[];
  size: number;
}

/** What {@link MessageReader.next} yields: a control frame, or a complete (still compressed) message. */
export type Received = { control: Frame } | { message: RawMessage };

/** Reads messages (fragments assembled) and control frames from one peer. */
export class MessageReader {
  readonly frames: FrameReader;
  readonly #maxMessage: number | null;
  #current: RawMessage | null = null;

  constructor(opts: FrameReaderOptions & { maxMessage: number | null }) {
    this.frames = new FrameReader(opts);
    this.#maxMessage = opts.maxMessage;
  }

  /** More bytes from the peer. */
  push(data: Uint8Array): void {
    this.frames.push(data);
  }

  /** Whether a fragmented message is in progress. */
  get inMessage(): boolean {
    return this.#current !== null;
  }

  /** The next control frame or complete message, or null for more bytes. Throws {@link WebSocketError}. */
  next(): Received | null {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const f = this.frames.next();
      if (f === null) return null;
      if (isControl(f.opcode)) return { control: f };
      let m = this.#current;
      if (f.opcode === Opcode.CONTINUATION) {
        if (m === null) throw new WebSocketError(1002, "continuation frame without a message to continue");
        if (f.rsv1) throw new WebSocketError(1002, "RSV1 set on a continuation frame");
      } else {
        if (m !== null) throw new WebSocketError(1002, "new data frame inside a fragmented message");
        m = this.#current = { opcode: f.opcode, compressed: f.rsv1, fragments: [], size: 0 };
      }
      m.fragments.push(f.payload);
      m.size += f.payload.length;
      if (this.#maxMessage !== null && m.size > this.#maxMessage) {
        throw new WebSocketError(1009, `message exceeds the limit of ${this.#maxMessage} bytes`);
      }
      if (f.fin) {
        this.#current = null;
        return { message: m };
      }
    }
    throw new WebSocketError(1008, "too many frames at once");
  }
}

/** A message's payload in one piece. */
export function joinFragments(m: RawMessage): Uint8Array {
  return m.fragments.length === 1 ? m.fragments[0] : concat(m.fragments);
}

/**
 * The frames to send a message in (mitmproxy's Fragmentizer): the original fragment sizes when the length
 * is unchanged, else fragments of about 4 kB (some servers refuse large frames).
 */
export function fragment(content: Uint8Array, original: number[]): Uint8Array[] {
  if (!content.length) return [content];
  const total = original.reduce((a, b) => a + b, 0);
  const out: Uint8Array[] = [];
  if (original.length && total === content.length) {
    let o = 0;
    for (const n of original) {
      out.push(content.subarray(o, o + n));
      o += n;
    }
    return out;
  }
  const size = FRAGMENT_SIZE;
  for (let o = 0; o < content.length; o += size) out.push(content.subarray(o, o + size));
  return out;
}

/** Fragment size for modified or injected messages (a bit under 4 KiB, room for the header). */
export const FRAGMENT_SIZE = 4000;
