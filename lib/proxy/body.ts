/**
 * Reading HTTP/1 bodies off a {@link Stream} by their framing, as chunks (for streaming) or whole
 * (for hooks). Bytes past the body are pushed back for the next message.
 */
import { ChunkedDecoder, type Framing, type HeadLimits, HttpSyntaxError } from "../http1/parse.ts";
import { ProtocolError } from "./errors.ts";
import type { Stream } from "./stream.ts";
import { concat } from "../http/bytes.ts";

/** Trailers of a chunked body, filled in when the body ends. */
export interface BodyEnd {
  trailers: [string, string][] | null;
}

/**
 * Yield the body's chunks. `end.trailers` is set after the last chunk of a chunked body.
 * Throws ProtocolError (status `truncatedStatus`) if the peer closes before the body is complete.
 */
export async function* bodyChunks(
  stream: Stream,
  framing: Framing,
  opts: {
    timeoutMs: number;
    limits: HeadLimits;
    end?: BodyEnd;
    truncatedStatus?: number | null;
    what: string;
  },
): AsyncGenerator<Uint8Array> {
  const truncated = (got: string) =>
    new ProtocolError(
      `${opts.what} body incomplete: connection closed after ${got}`,
      opts.truncatedStatus ?? null,
    );
  switch (framing.kind) {
    case "none":
      return;
    case "length": {
      let left = framing.length;
      while (left > 0) {
        const b = await stream.readUpTo(left, opts.timeoutMs);
        if (b === null) throw truncated(`${framing.length - left} of ${framing.length} bytes`);
        left -= b.length;
        yield b;
      }
      return;
    }
    case "chunked": {
      const dec = new ChunkedDecoder(opts.limits);
      let total = 0;
      for (;;) {
        const b = await stream.read(opts.timeoutMs);
        if (b === null) throw truncated(`${total} bytes of chunked data`);
        let r;
        try {
          r = dec.feed(b);
        } catch (e) {
          if (!(e instanceof HttpSyntaxError)) throw e;
          // the client's fault is a 400; a server's, a 502
          throw opts.what === "Request"
            ? new ProtocolError(`Invalid chunked request body: ${e.message}`, 400)
            : new ProtocolError(`Invalid response from server: chunked body: ${e.message}`, 502);
        }
        for (const d of r.data) {
          total += d.length;
          yield d;
        }
        if (r.done) {
          if (r.rest) stream.unread(r.rest);
          if (opts.end) opts.end.trailers = dec.trailers.length ? dec.trailers : null;
          return;
        }
      }
    }
    case "close": {
      for (;;) {
        const b = await stream.read(opts.timeoutMs);
        if (b === null) return;
        yield b;
      }
    }
  }
}

/** Result of {@link readBody}. */
export interface ReadBodyResult {
  /** The chunks read. */
  chunks: Uint8Array[];
  size: number;
  /** True if reading stopped at `streamAbove` bytes: the rest must be streamed from `rest`. */
  overflow: boolean;
  /** The generator to continue from when `overflow`. */
  rest: AsyncGenerator<Uint8Array> | null;
}

/**
 * Buffer a body. Stops early with `overflow` once more than `streamAbove` bytes arrived (the caller then
 * streams the rest); throws ProtocolError (`limitStatus`) past `maxSize`.
 */
export async function readBody(
  chunks: AsyncGenerator<Uint8Array>,
  opts: { maxSize: number | null; streamAbove: number | null; limitStatus: number; what: string },
): Promise<ReadBodyResult> {
  const out: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await chunks.next();
    if (done) break;
    out.push(value);
    size += value.length;
    if (opts.maxSize !== null && size > opts.maxSize) {
      throw new ProtocolError(`${opts.what} body exceeds mitmdeno's body_size_limit.`, opts.limitStatus);
    }
    if (opts.streamAbove !== null && size > opts.streamAbove) {
      return { chunks: out, size, overflow: true, rest: chunks };
    }
  }
  return { chunks: out, size, overflow: false, rest: null };
}

const EMPTY = new Uint8Array(0);

/**
 * Read exactly `length` bytes (a Content-Length body that is buffered, not streamed): the fast path
 * that skips the chunk generator. Throws ProtocolError if the peer closes early.
 */
export async function readFixedBody(
  stream: Stream,
  length: number,
  opts: { timeoutMs: number; truncatedStatus: number | null; what: string },
): Promise<Uint8Array> {
  if (length === 0) return EMPTY;
  const first = await stream.readUpTo(length, opts.timeoutMs);
  if (first === null) {
    throw new ProtocolError(
      `${opts.what} body incomplete: connection closed after 0 of ${length} bytes`,
      opts.truncatedStatus,
    );
  }
  if (first.length === length) return first;
  const parts = [first];
  let got = first.length;
  while (got < length) {
    const b = await stream.readUpTo(length - got, opts.timeoutMs);
    if (b === null) {
      throw new ProtocolError(
        `${opts.what} body incomplete: connection closed after ${got} of ${length} bytes`,
        opts.truncatedStatus,
      );
    }
    parts.push(b);
    got += b.length;
  }
  return concat(parts);
}

/**
 * After this many bytes of a streamed body, ask V8 for a young-generation collection (when the runtime
 * exposes `gc`, see scripts/runtime_flags.ts). Each chunk a socket delivers is a fresh ArrayBuffer whose
 * memory V8 frees only at a collection, and it schedules collections by JS heap use, not by the size of
 * those buffers: streaming at ~1 GB/s, ~120 MiB of dead buffers piled up between collections. Every 2 MiB:
 * peak RSS ~102 MiB for a 1 GiB download through CONNECT+TLS (214 without), and the transfer got faster.
 * Only streamed bodies are paced: forcing collections on every connection cost ~5% of keep-alive
 * throughput (small bodies leave little garbage).
 */
const COLLECT_EVERY = 2 << 20;
const collectYoung = (globalThis as { gc?: (o: { type: "minor" }) => void }).gc;

/** A counter for one streamed body: call it with each chunk's size. */
export function collectionPacer(): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    if ((since += bytes) > COLLECT_EVERY && collectYoung) {
      since = 0;
      collectYoung({ type: "minor" });
    }
  };
}
