/**
 * Flow files (`.mitm`, `-w`/`-r`): a plain concatenation of tnetstring dicts, one per flow (§6.2).
 *
 * @example
 * ```ts
 * import { FlowWriter, readFlows } from "./flowfile.ts";
 * import { tflow } from "../../testing.ts";
 * const flow = tflow({ resp: true });
 * const w = await FlowWriter.open("out.mitm");      // "+out.mitm" appends
 * await w.add(flow);
 * await w.close();
 * for await (const f of readFlows("out.mitm")) console.log(f.request.url);
 * ```
 * @module
 */
import { setImmediate } from "node:timers";
import type { HTTPFlow } from "../flow/flow.ts";
import type { TCPFlow } from "../flow/tcp.ts";
import type { Filter } from "../flow/filter.ts";
import { dumpsView, type TNetDict, TnetstringError, TnetstringReader } from "./tnetstring.ts";
import { FLOW_FORMAT_VERSION, migrateFlow, MigrationContext } from "./compat.ts";
import { flowFromState, flowToState, tcpFlowFromState } from "./state.ts";
import { HarError, harToFlows } from "./har.ts";
import { encodeHttpFlowView } from "./flow_encode.ts";

/** A flow file could not be read; `offset` is the byte offset of the bad item (null if unknown). */
export class FlowReadError extends Error {
  /** Byte offset in the file where the problem starts, or null. */
  offset: number | null;
  /** `message`, with the byte `offset` in the file where reading failed, if known. */
  constructor(message: string, offset: number | null = null) {
    super(message);
    this.name = "FlowReadError";
    this.offset = offset;
  }
}

/** Anything flows can be read from: a path, an open file, a byte stream or an async iterable of chunks. */
export type FlowSource = string | URL | Deno.FsFile | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

async function* chunksOf(src: FlowSource): AsyncGenerator<Uint8Array> {
  if (typeof src === "string" || src instanceof URL) {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(src, { read: true });
    } catch (e) {
      throw new FlowReadError(`cannot open flow file ${String(src)}: ${(e as Error).message}`);
    }
    try {
      yield* readFile(file);
    } finally {
      try {
        file.close();
      } catch { /* already closed */ }
    }
    return;
  }
  if (src instanceof Deno.FsFile) {
    yield* readFile(src);
    return;
  }
  yield* src as AsyncIterable<Uint8Array>;
}

async function* readFile(file: Deno.FsFile): AsyncGenerator<Uint8Array> {
  // read() directly instead of file.readable: the stream would close the file when done. 1 MiB reads:
  // a few hundred flows per read, so a consumer that commits once per turn (the web store) batches them
  for (;;) {
    const buf = new Uint8Array(1 << 20);
    const n = await file.read(buf);
    if (n === null) return;
    if (n > 0) yield n === buf.length ? buf : buf.subarray(0, n);
  }
}

/** A migrated (current-version) flow state and where it was in the file. */
export interface FlowStateItem {
  state: TNetDict;
  /** Byte offset of the flow in the file. */
  offset: number;
  /** Format version the flow was stored with. */
  storedVersion: unknown;
}

/** Open a tnetstring reader over `src`, skipping a UTF-8 BOM; `har` tells whether the data starts with `{`. */
async function openReader(src: FlowSource): Promise<{ reader: TnetstringReader; har: boolean }> {
  const reader = new TnetstringReader(chunksOf(src));
  try {
    const head = await reader.peek(3);
    if (head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) reader.skip(3);
    const first = await reader.peek(1);
    return { reader, har: first.length > 0 && first[0] === 0x7b };
  } catch (e) {
    if (e instanceof FlowReadError) throw e;
    throw new FlowReadError(`cannot read flow file: ${(e as Error).message}`, 0);
  }
}

/**
 * Stream the raw flow states of a file, migrated to the current version, for every flow type.
 * Skips a UTF-8 BOM. Every complete flow is yielded; bad or truncated data then raises one
 * {@link FlowReadError} naming the byte offset. HAR files are refused here (use {@link readFlows}).
 */
export async function* readFlowStates(src: FlowSource): AsyncGenerator<FlowStateItem> {
  const { reader, har } = await openReader(src);
  if (har) {
    throw new FlowReadError(
      "this is a HAR file (it starts with '{'): read it with readFlows()",
      reader.offset,
    );
  }
  yield* statesOf(reader);
}

async function* statesOf(reader: TnetstringReader): AsyncGenerator<FlowStateItem> {
  const ctx = new MigrationContext();
  for (;;) {
    let item;
    try {
      item = await reader.next();
    } catch (e) {
      if (e instanceof TnetstringError) {
        throw new FlowReadError(`Invalid flow file: ${e.message}`, e.offset);
      }
      throw new FlowReadError(`cannot read flow file: ${(e as Error).message}`, reader.offset);
    }
    if (!item) return;
    const v = item.value;
    if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) {
      throw new FlowReadError(
        `Invalid flow file: expected a flow dict at byte offset ${item.offset}, got another value`,
        item.offset,
      );
    }
    const storedVersion = (v as TNetDict).version;
    let state: TNetDict;
    try {
      state = migrateFlow(v as TNetDict, ctx) as TNetDict;
    } catch (e) {
      throw new FlowReadError(`flow at byte offset ${item.offset}: ${(e as Error).message}`, item.offset);
    }
    yield { state, offset: item.offset, storedVersion };
  }
}

/** Parse a whole HAR document from `reader` and yield its flows. */
async function* harFlows(reader: TnetstringReader): AsyncGenerator<HTTPFlow> {
  let data: unknown;
  try {
    data = JSON.parse(new TextDecoder().decode(await reader.readAll()));
  } catch (e) {
    throw new FlowReadError(`Invalid HAR file: ${(e as Error).message}`, 0);
  }
  try {
    yield* harToFlows(data);
  } catch (e) {
    if (e instanceof HarError) throw new FlowReadError(`Invalid HAR file: ${e.message}`, 0);
    throw e;
  }
}

/** Options for {@link readFlows}. */
export interface ReadFlowsOptions {
  /**
   * What to do with flow types mitmdeno cannot load yet (tcp, udp, dns): "skip" them (default, after
   * calling `onSkip`) or "error".
   */
  unsupported?: "skip" | "error";
  /** Called for each skipped flow. */
  onSkip?: (type: string, offset: number) => void;
  /** Only yield flows matching this filter. */
  filter?: Filter | null;
}

/**
 * Stream the flows of a flow file (path, open file, or byte stream), oldest format versions included.
 * Every complete flow is yielded; then bad or truncated data raises one {@link FlowReadError} naming the
 * byte offset. A file starting with `{` is read as HAR (HTTP Archive, see `har.ts`).
 */
export function readFlows(src: FlowSource, options: ReadFlowsOptions = {}): AsyncGenerator<HTTPFlow> {
  return readAnyFlows(src, { ...options, tcp: false }) as AsyncGenerator<HTTPFlow>;
}

/**
 * {@link readFlows} for HTTP and TCP flows (`tcp` false: TCP flows are skipped like the other unsupported
 * types).
 */
export async function* readAnyFlows(
  src: FlowSource,
  options: ReadFlowsOptions & { tcp?: boolean } = {},
): AsyncGenerator<HTTPFlow | TCPFlow> {
  const { reader, har } = await openReader(src);
  if (har) {
    for await (const flow of harFlows(reader)) {
      if (options.filter && !options.filter(flow)) continue;
      yield flow;
    }
    return;
  }
  const tcp = options.tcp ?? true;
  for await (const { state, offset } of statesOf(reader)) {
    const known = state.type === "http" || (tcp && state.type === "tcp");
    if (!known) {
      if (options.unsupported === "error") {
        throw new FlowReadError(
          `flow at byte offset ${offset}: unsupported flow type ${String(state.type)}`,
          offset,
        );
      }
      options.onSkip?.(String(state.type), offset);
      continue;
    }
    let flow: HTTPFlow | TCPFlow;
    try {
      flow = state.type === "tcp" ? tcpFlowFromState(state) : flowFromState(state);
    } catch (e) {
      throw new FlowReadError(`flow at byte offset ${offset}: ${(e as Error).message}`, offset);
    }
    if (options.filter && !options.filter(flow)) continue;
    yield flow;
  }
}

/** Read every flow of a file into an array (stops with the error on bad data). */
export async function readFlowsToArray(src: FlowSource, options: ReadFlowsOptions = {}): Promise<HTTPFlow[]> {
  const out: HTTPFlow[] = [];
  for await (const f of readFlows(src, options)) out.push(f);
  return out;
}

/** Something bytes can be written to. */
export interface ByteSink {
  write(p: Uint8Array): Promise<number>;
}

/** Options for {@link FlowWriter}. */
export interface FlowWriterOptions {
  /** Flow format version to write (17..21; 17 for mitmproxy 8.x). Default 21. */
  version?: number;
  /** Only write flows matching this filter (mitmproxy's FilteredFlowWriter). */
  filter?: Filter | null;
  /**
   * Files only: gather the flows added in one turn of the event loop and write them with one system call
   * at its end (or once 1 MiB waits), instead of one write per flow (a third of the cost of recording under
   * load). A flow is then in the file a moment after `add` returned; the promise `add` returns settles once
   * it is. A process killed meanwhile loses that turn's flows (at most one per client connection: a client
   * waits for its response before it sends the next request).
   */
  batch?: boolean;
}

/** Bytes gathered before a batch is written at once (see {@link FlowWriterOptions.batch}). */
const BATCH_MAX = 1 << 20;

/**
 * Writes flows to a file or sink, one tnetstring per flow. Each {@link add} writes the whole flow before
 * returning (no user-space buffering), so the file is always a valid prefix.
 */
export class FlowWriter {
  #sink: ByteSink;
  #file: Deno.FsFile | null;
  #version: number;
  #filter: Filter | null;
  #chain: Promise<unknown> = Promise.resolve();
  #pending = 0;
  /** Bytes in the file after the last complete flow (files only). */
  #good = 0;
  #batching: boolean;
  /** The batch being gathered (see {@link FlowWriterOptions.batch}): bytes, flows, who waits for it. */
  #batch: Uint8Array | null = null;
  #batchLen = 0;
  #batchFlows = 0;
  #batchDone: PromiseWithResolvers<void> | null = null;
  /** Number of flows written. */
  count = 0;

  /** A writer to `sink` (a file or a byte sink), see {@link FlowWriterOptions}. */
  constructor(sink: ByteSink | Deno.FsFile, options: FlowWriterOptions = {}) {
    this.#sink = sink;
    this.#file = sink instanceof Deno.FsFile ? sink : null;
    this.#version = options.version ?? FLOW_FORMAT_VERSION;
    this.#filter = options.filter ?? null;
    this.#batching = (options.batch ?? false) && this.#file !== null;
  }

  /**
   * Open `path` for writing (truncating), or for appending when `append` is set or the path starts with
   * "+" (mitmproxy's `-w +file`).
   */
  static async open(
    path: string,
    options: FlowWriterOptions & { append?: boolean } = {},
  ): Promise<FlowWriter> {
    let append = options.append ?? false;
    if (path.startsWith("+")) {
      append = true;
      path = path.slice(1);
    }
    const file = await Deno.open(path, { write: true, create: true, append, truncate: !append });
    const w = new FlowWriter(file, options);
    if (append) {
      try {
        w.#good = (await file.stat()).size;
      } catch { /* not a regular file */ }
    }
    return w;
  }

  /** Serialize one flow (to bytes) without writing it. */
  encode(flow: HTTPFlow | TCPFlow): Uint8Array {
    return this.#encodeView(flow).slice();
  }

  /** The flow's bytes as a view into a scratch buffer (see dumpsView): the current format's HTTP flows
   * are written straight from the flow (flow_encode.ts), anything else through its state dict. */
  #encodeView(flow: HTTPFlow | TCPFlow): Uint8Array {
    if (this.#version === FLOW_FORMAT_VERSION && flow.type === "http") {
      return encodeHttpFlowView(flow);
    }
    return dumpsView(flowToState(flow, this.#version));
  }

  /**
   * Append a flow (if it passes the filter). Calls are serialized, so they can be fired concurrently.
   * A file is written synchronously (one flow is a few KB; an async write per flow would cost an event loop
   * round trip each), so the flow is in the file when the promise is returned. A write that fails (disk
   * full, I/O error) rejects, and a file is cut back to its last complete flow, so what was written stays
   * readable.
   */
  add(flow: HTTPFlow | TCPFlow): Promise<void> {
    if (this.#filter && !this.#filter(flow)) return Promise.resolve();
    if (this.#batching && this.#file) {
      let data: Uint8Array;
      try {
        data = this.#encodeView(flow);
      } catch (e) {
        return Promise.reject(e);
      }
      return this.#gather(data);
    }
    if (this.#file && !this.#pending) {
      const file = this.#file;
      try {
        const data = this.#encodeView(flow);
        let off = 0;
        while (off < data.length) off += file.writeSync(data.subarray(off));
        this.#good += data.length;
      } catch (e) {
        try {
          file.truncateSync(this.#good);
        } catch { /* not a regular file (a pipe, /dev/full) */ }
        return Promise.reject(e);
      }
      this.count++;
      return Promise.resolve();
    }
    const data = this.encode(flow);
    this.#pending++;
    const p = this.#chain.then(() => this.#writeAll(data)).finally(() => this.#pending--);
    this.#chain = p.catch(() => {});
    this.count++;
    return p;
  }

  /** Add one encoded flow to the batch; the first of a turn schedules its write at the turn's end. */
  #gather(data: Uint8Array): Promise<void> {
    const need = this.#batchLen + data.length;
    if (this.#batch === null || need > this.#batch.length) {
      const grown = new Uint8Array(Math.max(64 * 1024, need, (this.#batch?.length ?? 0) * 2));
      if (this.#batch) grown.set(this.#batch.subarray(0, this.#batchLen));
      this.#batch = grown;
    }
    this.#batch.set(data, this.#batchLen);
    this.#batchLen = need;
    this.#batchFlows++;
    let done = this.#batchDone;
    if (done === null) {
      done = this.#batchDone = Promise.withResolvers<void>();
      setImmediate(() => this.#writeBatch());
    }
    const p = done.promise;
    if (this.#batchLen >= BATCH_MAX) this.#writeBatch();
    return p;
  }

  /** Write the gathered flows with one call; a failure cuts the file back to the flows before them. */
  #writeBatch(): void {
    const done = this.#batchDone;
    const file = this.#file;
    if (done === null) return;
    const data = this.#batch!.subarray(0, this.#batchLen);
    const flows = this.#batchFlows;
    this.#batchDone = null;
    this.#batchLen = 0;
    this.#batchFlows = 0;
    // a large batch buffer (a burst of big flows) is not kept
    if (this.#batch!.length > BATCH_MAX * 2) this.#batch = null;
    if (file === null) return done.reject(new Error("the flow file was closed"));
    try {
      let off = 0;
      while (off < data.length) off += file.writeSync(data.subarray(off));
      this.#good += data.length;
      this.count += flows;
      done.resolve();
    } catch (e) {
      try {
        file.truncateSync(this.#good);
      } catch { /* not a regular file (a pipe, /dev/full) */ }
      done.reject(e);
    }
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.#sink.write(data.subarray(off));
  }

  /** Wait for pending writes. */
  async flush(): Promise<void> {
    const batch = this.#batchDone?.promise;
    this.#writeBatch();
    await batch;
    await this.#chain;
  }

  /** Wait for pending writes and close the file if this writer opened/was given one. */
  async close(): Promise<void> {
    const batch = this.#batchDone?.promise;
    this.#writeBatch();
    await this.#chain;
    // a failed last batch is the caller's to hear about through add's promise; closing goes on
    await batch?.catch(() => {});
    if (this.#file) {
      try {
        this.#file.close();
      } catch { /* already closed */ }
      this.#file = null;
    }
  }
}
