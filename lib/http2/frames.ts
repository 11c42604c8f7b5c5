/**
 * HTTP/2 frames (RFC 9113 §4, §6): the constants, an incremental {@link FrameReader} that cuts a byte
 * stream into frames, and writers for every frame type we send. No state beyond the reader's buffer: the
 * rules of a connection live in connection.ts.
 *
 * @module
 */

/** Frame types. */
export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

/** Frame flags. */
export const Flags = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes (RFC 9113 §7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const ERROR_NAMES = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

/** The name of an error code ("CANCEL"), or its number for unknown ones. */
export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

/** Settings identifiers. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The connection preface a client sends first. */
export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** The largest flow-control window (2^31 - 1). */
export const MAX_WINDOW = 0x7fffffff;
/** The default (and smallest) SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME = 16384;

/** One frame. `payload` may be a view into the received bytes. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** A frame larger than allowed (a FRAME_SIZE_ERROR of the connection). */
export class FrameSizeError extends Error {}

/** Cuts received bytes into frames. */
export class FrameReader {
  #buf: Uint8Array | null = null;
  /** The largest payload accepted (our SETTINGS_MAX_FRAME_SIZE). */
  maxFrameSize: number;

  constructor(maxFrameSize = DEFAULT_MAX_FRAME) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes buffered that make no complete frame yet. */
  get buffered(): number {
    return this.#buf?.length ?? 0;
  }

  /** Add bytes; returns the complete frames in them (throws FrameSizeError). */
  push(d: Uint8Array): Frame[] {
    let b: Uint8Array;
    if (this.#buf === null) b = d;
    else {
      b = new Uint8Array(this.#buf.length + d.length);
      b.set(this.#buf);
      b.set(d, this.#buf.length);
      this.#buf = null;
    }
    const frames: Frame[] = [];
    let pos = 0;
    while (b.length - pos >= 9) {
      const len = (b[pos] << 16) | (b[pos + 1] << 8) | b[pos + 2];
      if (len > this.maxFrameSize) {
        throw new FrameSizeError(`frame of ${len} bytes over SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`);
      }
      if (b.length - pos < 9 + len) break;
      frames.push({
        type: b[pos + 3],
        flags: b[pos + 4],
        streamId: ((b[pos + 5] & 0x7f) << 24 | b[pos + 6] << 16 | b[pos + 7] << 8 | b[pos + 8]) >>> 0,
        payload: b.subarray(pos + 9, pos + 9 + len),
      });
      pos += 9 + len;
    }
    if (pos < b.length) this.#buf = pos === 0 && b !== d ? b : b.slice(pos);
    return frames;
  }
}

/** Write a frame header at `out[at]`. */
function header(out: Uint8Array, at: number, len: number, type: number, flags: number, id: number): void {
  out[at] = len >>> 16;
  out[at + 1] = (len >>> 8) & 0xff;
  out[at + 2] = len & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out[at + 5] = (id >>> 24) & 0x7f;
  out[at + 6] = (id >>> 16) & 0xff;
  out[at + 7] = (id >>> 8) & 0xff;
  out[at + 8] = id & 0xff;
}

/** A frame with a payload. */
export function frame(type: number, flags: number, id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  header(out, 0, payload.length, type, flags, id);
  out.set(payload, 9);
  return out;
}

/** A frame header alone (the payload follows separately, avoiding a copy). */
export function frameHeader(len: number, type: number, flags: number, id: number): Uint8Array {
  const out = new Uint8Array(9);
  header(out, 0, len, type, flags, id);
  return out;
}

/** A header block as HEADERS (+ CONTINUATION) frames of at most `maxFrame` bytes each. */
export function headerFrames(
  id: number,
  block: Uint8Array,
  endStream: boolean,
  maxFrame: number,
): Uint8Array {
  const n = Math.max(1, Math.ceil(block.length / maxFrame));
  const out = new Uint8Array(block.length + 9 * n);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const part = block.subarray(i * maxFrame, Math.min(block.length, (i + 1) * maxFrame));
    const last = i === n - 1;
    const type = i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    const flags = (last ? Flags.END_HEADERS : 0) | (i === 0 && endStream ? Flags.END_STREAM : 0);
    header(out, pos, part.length, type, flags, id);
    out.set(part, pos + 9);
    pos += 9 + part.length;
  }
  return out;
}

/** A SETTINGS frame with these [id, value] pairs. */
export function settingsFrame(settings: [number, number][]): Uint8Array {
  const p = new Uint8Array(settings.length * 6);
  const v = new DataView(p.buffer);
  settings.forEach(([id, value], i) => {
    v.setUint16(i * 6, id);
    v.setUint32(i * 6 + 2, value);
  });
  return frame(FrameType.SETTINGS, 0, 0, p);
}

/** SETTINGS with ACK. */
export function settingsAck(): Uint8Array {
  return frameHeader(0, FrameType.SETTINGS, Flags.ACK, 0);
}

/** A PING (or its ACK) with 8 bytes of opaque data. */
export function pingFrame(data: Uint8Array, ack: boolean): Uint8Array {
  return frame(FrameType.PING, ack ? Flags.ACK : 0, 0, data);
}

/** GOAWAY. */
export function goawayFrame(lastStreamId: number, code: number, debug = ""): Uint8Array {
  const dbg = new TextEncoder().encode(debug.slice(0, 256));
  const p = new Uint8Array(8 + dbg.length);
  const v = new DataView(p.buffer);
  v.setUint32(0, lastStreamId & MAX_WINDOW);
  v.setUint32(4, code);
  p.set(dbg, 8);
  return frame(FrameType.GOAWAY, 0, 0, p);
}

/** RST_STREAM. */
export function rstFrame(id: number, code: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, code);
  return frame(FrameType.RST_STREAM, 0, id, p);
}

/** WINDOW_UPDATE. */
export function windowUpdateFrame(id: number, increment: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, increment & MAX_WINDOW);
  return frame(FrameType.WINDOW_UPDATE, 0, id, p);
}

/** A 32-bit big-endian number at `at`. */
export function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
