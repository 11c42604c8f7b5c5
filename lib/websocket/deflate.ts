/**
 * permessage-deflate (RFC 7692): the negotiated parameters, read from a 101 response's
 * `Sec-WebSocket-Extensions`, and one compressor or decompressor per direction with node:zlib.
 *
 * Context takeover (the default, also Chromium's) needs a zlib stream that lives across messages; node:zlib
 * has only stateless synchronous calls (and Deno ignores a preset dictionary in raw mode), so these use the
 * streaming API and are asynchronous. One call runs at a time per instance.
 *
 * @module
 */
import zlib from "node:zlib";
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import { concat } from "../http/bytes.ts";
import { WebSocketError } from "./frame.ts";

/** Parameters of permessage-deflate as accepted by the server. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** LZ77 window of the server's compressor (8..15). */
  serverMaxWindowBits: number;
  /** LZ77 window of the client's compressor (8..15). */
  clientMaxWindowBits: number;
}

/**
 * The permessage-deflate parameters in a `Sec-WebSocket-Extensions` response header, or null when it was not
 * accepted. Other extensions are listed in `unknown` (they are not supported: their frames will fail).
 */
export function parseExtensions(header: string | null): { deflate: DeflateParams | null; unknown: string[] } {
  const unknown: string[] = [];
  let deflate: DeflateParams | null = null;
  if (!header) return { deflate, unknown };
  for (const ext of header.split(",")) {
    const [name, ...params] = ext.split(";").map((s) => s.trim());
    if (!name) continue;
    if (name.toLowerCase() !== "permessage-deflate" || deflate) {
      unknown.push(name);
      continue;
    }
    const p: DeflateParams = {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    for (const kv of params) {
      const [k, v] = kv.split("=").map((s) => s.trim().replace(/^"|"$/g, ""));
      const bits = v ? Number(v) : 15;
      switch (k.toLowerCase()) {
        case "server_no_context_takeover":
          p.serverNoContextTakeover = true;
          break;
        case "client_no_context_takeover":
          p.clientNoContextTakeover = true;
          break;
        case "server_max_window_bits":
          if (bits >= 8 && bits <= 15) p.serverMaxWindowBits = bits;
          break;
        case "client_max_window_bits":
          if (bits >= 8 && bits <= 15) p.clientMaxWindowBits = bits;
          break;
      }
    }
    deflate = p;
  }
  return { deflate, unknown };
}

const TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

/** One zlib stream used message by message. */
abstract class ZStream {
  #z: zlib.Inflate | zlib.Deflate | null = null;
  #out: Uint8Array[] = [];
  #size = 0;
  #limit: number | null = null;
  #failed: Error | null = null;
  #busy: Promise<unknown> = Promise.resolve();

  constructor(readonly windowBits: number, readonly noContextTakeover: boolean) {}

  protected abstract create(): zlib.Inflate | zlib.Deflate;

  #stream(): zlib.Inflate | zlib.Deflate {
    if (this.#z) return this.#z;
    const z = this.create();
    z.on("data", (c: Uint8Array) => {
      this.#out.push(c);
      this.#size += c.length;
      if (this.#limit !== null && this.#size > this.#limit && !this.#failed) {
        this.#failed = new WebSocketError(1009, `message exceeds the limit of ${this.#limit} bytes`);
      }
    });
    z.on("error", (e: Error) => (this.#failed ??= e));
    this.#z = z;
    return z;
  }

  /** Run `data` through the stream with a sync flush; resolves with what came out. */
  protected run(data: Uint8Array, limit: number | null): Promise<Uint8Array> {
    const p = this.#busy.then(() =>
      new Promise<Uint8Array>((resolve, reject) => {
        const z = this.#stream();
        this.#out = [];
        this.#size = 0;
        this.#limit = limit;
        this.#failed = null;
        z.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        // zlib reports bad data after the flush callback: look once the current tick's events have run
        z.flush(zlib.constants.Z_SYNC_FLUSH, () => setImmediate(finish));
        const finish = () => {
          const out = concat(this.#out);
          this.#out = [];
          const err = this.#failed;
          if (err || this.noContextTakeover) this.close();
          if (err) return reject(err);
          resolve(out);
        };
      })
    );
    this.#busy = p.catch(() => {});
    return p;
  }

  /** Free the zlib stream (a new one is made for the next message). */
  close(): void {
    const z = this.#z;
    this.#z = null;
    if (z) {
      z.removeAllListeners("data");
      z.on("error", () => {});
      z.close();
    }
  }
}

/** Decompresses the messages of one peer. */
export class Inflater extends ZStream {
  protected create(): zlib.Inflate {
    return zlib.createInflateRaw({ windowBits: 15 }) as unknown as zlib.Inflate;
  }

  /** The plain payload of a compressed message; fails with a WebSocketError over `limit` bytes or on bad data. */
  async inflate(data: Uint8Array, limit: number | null): Promise<Uint8Array> {
    try {
      return await this.run(concat([data, TAIL]), limit);
    } catch (e) {
      if (e instanceof WebSocketError) throw e;
      throw new WebSocketError(1007, `bad compressed data: ${(e as Error).message}`);
    }
  }
}

/** Compresses the messages sent to one peer. */
export class Deflater extends ZStream {
  protected create(): zlib.Deflate {
    // zlib cannot make raw deflate streams with an 8-bit window: 9 is the smallest
    return zlib.createDeflateRaw({ windowBits: Math.max(9, this.windowBits) }) as unknown as zlib.Deflate;
  }

  /** The compressed payload of a message (the trailing 00 00 ff ff removed, as RFC 7692 §7.2.1 says). */
  async deflate(data: Uint8Array): Promise<Uint8Array> {
    const out = await this.run(data, null);
    const n = out.length;
    if (n >= 4 && out[n - 4] === 0 && out[n - 3] === 0 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
      return out.subarray(0, n - 4);
    }
    return out;
  }
}
