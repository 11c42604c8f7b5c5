/**
 * The TCP layer: relays raw bytes both ways (passthrough for ignored hosts, non-HTTP protocols and
 * upgraded connections), half-close aware.
 */
import type { Stream } from "../stream.ts";
import type { Context, Layer } from "../context.ts";
import type { ServerConnection } from "../server_conn.ts";

/**
 * Pipe `a` and `b` into each other until both directions ended. Bytes already buffered in either
 * stream are delivered first.
 */
export async function relay(a: Stream, b: Stream): Promise<void> {
  const pending = [a.detach(), b.detach()];
  if (pending[0].length) b.socket.write(pending[0]);
  if (pending[1].length) a.socket.write(pending[1]);
  if (a.eof) b.end();
  if (b.eof) a.end();
  a.socket.pipe(b.socket);
  b.socket.pipe(a.socket);
  const swallow = () => {};
  a.socket.on("error", swallow);
  b.socket.on("error", swallow);
  // when one side is gone, give the other a moment to flush, then tear it down too
  const timers: ReturnType<typeof setTimeout>[] = [];
  a.socket.once("close", () => timers.push(setTimeout(() => b.socket.destroy(), 1000)));
  b.socket.once("close", () => timers.push(setTimeout(() => a.socket.destroy(), 1000)));
  await Promise.all([a.closed, b.closed]);
  for (const t of timers) clearTimeout(t);
}

/** A raw relay between the client and one server connection (no flow). */
export class TcpLayer implements Layer {
  readonly name = "tcp";
  readonly #ctx: Context;
  readonly #address: [string, number];
  #conn: ServerConnection | null;

  constructor(ctx: Context, address: [string, number], conn: ServerConnection | null = null) {
    this.#ctx = ctx;
    this.#address = address;
    this.#conn = conn;
  }

  async run(): Promise<void> {
    const ctx = this.#ctx;
    const conn = this.#conn ?? await ctx.pool.get(this.#address, ctx.limits.connectTimeout);
    conn.reusable = false;
    ctx.debug(`tcp relay to ${this.#address.join(":")}`);
    await relay(ctx.clientStream, conn.stream!);
    await ctx.pool.discard(conn);
  }
}
