/**
 * The HTTP layer (mitmproxy's `HttpLayer`): it holds the codec of the client connection and one codec per
 * server connection, one {@link HttpStream} per stream, and routes between them: request events from the
 * client codec go to their stream, a stream's SendHttp goes to the codec of its connection, response events
 * of a server connection go to the stream it serves. It answers a stream's GetHttpConnection with a free open
 * connection to that server, or opens one (TCP, then TLS for https), so streams never wait for each other.
 *
 * After a CONNECT it hands the client connection to the next layer of the tunnel (next_layer.ts); after a
 * 101 to a WebSocket handshake both connections go to a WebSocket layer (websocket.ts), after another 101
 * (or with the `websocket` option off) they are relayed raw.
 *
 * @module
 */
import { Layer } from "../../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start, WritesBlocked } from "../../events.ts";
import {
  CloseConnection,
  type Command,
  OpenConnection,
  Relay,
  type RequestWakeup,
  SetReading,
  WatchWrites,
} from "../../commands.ts";
import { ProtocolError } from "../../errors.ts";
import type { Context } from "../../context.ts";
import { Server } from "../../../flow/connection.ts";
import type { HTTPFlow } from "../../../flow/flow.ts";
import { hostPort } from "../../../http/message.ts";
import { Http1Server } from "./http1_server.ts";
import { Http1Client } from "./http1_client.ts";
import { Http2Server } from "./http2_server.ts";
import { Http2Client } from "./http2_client.ts";
import { HttpStream, type StreamOptions } from "./stream.ts";
import {
  GetHttpConnection,
  HoldStream,
  type HttpEvent,
  ReleaseHttpConnection,
  RequestData,
  RequestEndOfMessage,
  RequestHeaders,
  RequestTrailers,
  ResponseData,
  SendHttp,
} from "./events.ts";
import { establishServerTls, prepareServerTls } from "../server_tls.ts";
import { WebSocketLayer } from "../websocket.ts";

/** A server connection of this layer and the stream it serves (HTTP/1: one at a time; HTTP/2: many). */
interface Slot {
  server: Server;
  /** Its codec, once the connection is open (and its TLS handshake done: ALPN decides the codec). */
  codec: Http1Client | Http2Client | null;
  /** HTTP/1: the stream it serves (also while the connection is being opened for it). */
  stream: HttpStream | null;
  /** HTTP/2: the streams it serves, by stream id. */
  streams: Map<number, HttpStream> | null;
  /** Events that came before the codec. */
  early?: Event[];
  /**
   * While a TLS connection that may become HTTP/2 is being established: the other streams that want that
   * server wait for it (mitmproxy's waiting_for_establishment) instead of opening more connections.
   */
  waiters?: [GetHttpConnection, HttpStream][];
}

/** Queued bytes in an HTTP/2 codec above which the sending stream is held back, and below which it resumes. */
const HOLD_ABOVE = 1 << 20;
const RESUME_BELOW = 256 * 1024;

/** How to continue a tunnel after a CONNECT (set by the layer that builds HTTP layers: next_layer.ts). */
export type TunnelStarter = (ctx: Context, initial: Uint8Array, flow: HTTPFlow) => Layer;

/** The HTTP layer of one client connection (or of a tunnel inside it). */
export class HttpLayer extends Layer {
  readonly #opts: StreamOptions;
  readonly #tunnel: TunnelStarter | null;
  #client!: Http1Server | Http2Server;
  readonly #streams = new Map<number, HttpStream>();
  readonly #slots: Slot[] = [];
  /** After a CONNECT or 101: the layer that now gets every event. */
  #next: Layer | null = null;
  #relaying = false;

  constructor(context: Context, opts: StreamOptions, tunnel: TunnelStarter | null = null) {
    super(context);
    this.#opts = opts;
    this.#tunnel = tunnel;
  }

  protected onEvent(e: Event): void {
    if (this.#next) return this.#next.handle(e);
    if (this.#relaying) return;
    if (e instanceof DataReceived || e instanceof ConnectionClosed) {
      if (e.conn === this.context.client) {
        if (e instanceof ConnectionClosed) this.#clientClosed();
        return this.#client.handle(e);
      }
      const slot = this.#slotOf(e.conn as Server);
      if (slot && !slot.codec) {
        // bytes before the codec exists (the server spoke during tls_established_server): kept for it
        (slot.early ??= []).push(e);
        return;
      }
      if (slot?.codec) slot.codec.handle(e);
      if (e instanceof ConnectionClosed && slot) this.#dropIfClosed(slot);
      return;
    }
    if (e instanceof Start) return this.#start();
    if (e instanceof WritesBlocked) return this.#writesBlocked(e.conn as Server, e.blocked);
  }

  #start(): void {
    // ALPN decided the client's protocol (see alpn.ts)
    this.#client = this.adopt(
      this.context.client.alpn === "h2" ? new Http2Server(this.context) : new Http1Server(this.context),
    );
    this.#client.onHttp = (ev) => this.#fromClient(ev);
    // a tunnel's server connection may be open already (eager CONNECT, or TLS with the server first)
    const s = this.context.server;
    if (s.address && s.timestampStart !== null && s.timestampEnd === null) this.#addSlot(s, true);
    this.#client.handle(new Start());
  }

  #slotOf(server: Server): Slot | undefined {
    for (const s of this.#slots) if (s.server === server) return s;
    return undefined;
  }

  #addSlot(server: Server, open: boolean): Slot {
    const slot: Slot = { server, codec: null, stream: null, streams: null };
    if (open) slot.codec = this.#serverCodec(slot);
    this.#slots.push(slot);
    return slot;
  }

  /** Streams waiting for a response head, and the one timer that checks them. */
  readonly #waiting = new Set<HttpStream>();
  #timer: RequestWakeup | null = null;

  #watchResponse(stream: HttpStream, waiting: boolean): void {
    if (!waiting) {
      this.#waiting.delete(stream);
      return;
    }
    this.#waiting.add(stream);
    if (this.#timer === null) this.#armTimer();
  }

  #armTimer(): void {
    const limits = this.context.core.limits;
    const ms = Math.min(...[limits.responseTimeout, limits.idleTimeout].filter((x) => x > 0));
    if (!Number.isFinite(ms)) return;
    // checked about every second (or more often for shorter limits): precise enough for these limits
    this.#timer = this.wakeup(Math.min(1000, Math.max(250, ms / 4)), () => {
      this.#timer = null;
      const now = Date.now();
      for (const st of [...this.#waiting]) if (!st.checkResponseTimeout(now)) this.#waiting.delete(st);
      if (this.#waiting.size) this.#armTimer();
    });
  }

  #serverCodec(slot: Slot): Http1Client | Http2Client {
    if (slot.server.alpn === "h2") {
      const h2 = this.adopt(new Http2Client(this.context, slot.server));
      const streams = slot.streams ??= new Map();
      if (slot.stream) {
        streams.set(slot.stream.streamId, slot.stream);
        slot.stream = null;
      }
      h2.onHttp = (ev) => streams.get(ev.streamId)?.handle(ev);
      // streams of an HTTP/2 client feed it: when its socket is full, hold back those streams only
      if (this.#client instanceof Http2Server) this.emit(new WatchWrites(slot.server));
      h2.handle(new Start());
      return h2;
    }
    const codec = this.adopt(new Http1Client(this.context, slot.server));
    // one stream of an HTTP/2 client feeds it: when it cannot take more, hold back only that stream
    if (this.#client instanceof Http2Server) this.emit(new WatchWrites(slot.server));
    codec.onHttp = (ev) => {
      const stream = slot.stream;
      if (stream && stream.streamId === ev.streamId) stream.handle(ev);
    };
    return codec;
  }

  #dropIfClosed(slot: Slot): void {
    if (slot.codec?.closed && slot.stream === null && !slot.streams?.size) {
      const i = this.#slots.indexOf(slot);
      if (i !== -1) this.#slots.splice(i, 1);
    }
  }

  /** The client went away: idle server connections may serve other clients. */
  #clientClosed(): void {
    for (const slot of [...this.#slots]) {
      if (slot.codec instanceof Http2Client) {
        // an HTTP/2 connection is not parked (its codec state cannot move to another client connection)
        if (slot.codec.idle) {
          slot.codec.shutdown();
          this.#slots.splice(this.#slots.indexOf(slot), 1);
        }
        continue;
      }
      if (slot.stream === null && slot.codec?.idle) {
        this.emit(new CloseConnection(slot.server, { reuse: true }));
        this.#slots.splice(this.#slots.indexOf(slot), 1);
      }
    }
  }

  override childCommand(c: Command, from: Layer): void {
    if (c instanceof SendHttp) return this.#sendHttp(c.event, c.conn);
    if (c instanceof GetHttpConnection) return this.#getConnection(c, from as HttpStream);
    if (c instanceof ReleaseHttpConnection) return this.#releaseConnection(c.conn, from as HttpStream);
    if (c instanceof HoldStream) return this.#holdStream(from as HttpStream, c.held);
    this.emit(c);
  }

  /**
   * Send a saved request through this layer as if the client had sent it (client replay): every hook fires
   * and the server connection is made as for live traffic; what would go to the client goes nowhere.
   * `settled` is called once the exchange is over, its last hook included.
   */
  inject(flow: HTTPFlow, settled: () => void): void {
    const id = this.#nextInjected;
    this.#nextInjected += 2;
    const req = flow.request;
    const body = req.rawContent ?? new Uint8Array(0);
    const trailers = req.trailers && req.trailers.size ? req.trailers : null;
    const end = body.length === 0 && !trailers;
    this.#newStream(id).onSettled = () => settled();
    this.#fromClient(new RequestHeaders(id, req, end, body.length, flow));
    if (end) return;
    if (body.length) this.#fromClient(new RequestData(id, body));
    if (trailers) this.#fromClient(new RequestTrailers(id, trailers));
    this.#fromClient(new RequestEndOfMessage(id));
  }

  /** Stream ids of injected requests (far from the client codec's). */
  #nextInjected = 1_000_001;

  /** An HTTP event from the client codec: to its stream (a new one for new request headers). */
  #fromClient(ev: HttpEvent): void {
    let stream = this.#streams.get(ev.streamId);
    if (!stream && ev instanceof RequestHeaders) stream = this.#newStream(ev.streamId);
    stream?.handle(ev);
  }

  #newStream(id: number): HttpStream {
    const s: HttpStream = this.adopt(
      new HttpStream(
        this.context,
        id,
        this.#opts,
        (flow) => this.#connect(s, flow),
        (flow, server) => this.#upgrade(s, flow, server),
        (done) => {
          if (this.#streams.get(done.streamId) === done) this.#streams.delete(done.streamId);
          if (this.#held.size) this.#unhold(done.streamId);
          if (this.#streamHolds.size) this.#holdStream(done, false);
          if (this.#writeHolds.size) this.#releaseWriteHold(done);
        },
        (st, waiting) => this.#watchResponse(st, waiting),
      ),
    );
    this.#streams.set(id, s);
    return s;
  }

  #sendHttp(ev: HttpEvent, conn: import("../../../flow/connection.ts").Connection): void {
    const toClient = conn === this.context.client;
    const target = toClient ? this.#client : this.#slotOf(conn as Server)?.codec;
    if (!target) return;
    target.handle(ev);
    if (
      (target instanceof Http2Server || target instanceof Http2Client) && target.backlog > HOLD_ABOVE &&
      (ev instanceof ResponseData || ev instanceof RequestData)
    ) this.#hold(target, ev.streamId, toClient);
  }

  // ---- backpressure across codecs ----

  /**
   * Body bytes wait in an HTTP/2 codec for its peer's flow-control window: hold back the stream that sends
   * them where they come from (an HTTP/2 source withholds that stream's credit, so only it stops; an HTTP/1
   * source stops reading its connection) until the queue drained. Memory stays bounded per connection.
   */
  #hold(target: Http2Server | Http2Client, streamId: number, toClient: boolean): void {
    let held = this.#held.get(target);
    if (held?.has(streamId)) return;
    const stream = this.#streams.get(streamId);
    const source = toClient ? (stream?.server ? this.#slotOf(stream.server)?.codec : null) : this.#client;
    if (!source) return;
    const resume = this.#pauseSource(source, streamId);
    if (!held) {
      held = new Map();
      this.#held.set(target, held);
      target.onDrain = () => {
        if (target.backlog > RESUME_BELOW) return;
        const all = this.#held.get(target);
        this.#held.delete(target);
        for (const r of all?.values() ?? []) r();
      };
    }
    held.set(streamId, resume);
  }

  /**
   * Stop what feeds `streamId` from `source`: an HTTP/2 codec withholds that stream's credit, an HTTP/1 one
   * stops reading its connection. Returns what undoes it (call it once).
   */
  #pauseSource(source: Http1Server | Http1Client | Http2Server | Http2Client, streamId: number): () => void {
    if (source instanceof Http2Server || source instanceof Http2Client) {
      source.pauseStream(streamId, true);
      return () => source.pauseStream(streamId, false);
    }
    const conn = source.conn;
    this.emit(new SetReading(conn, false));
    return () => this.emit(new SetReading(conn, true));
  }

  /**
   * A stream's queue is full (see {@link HttpStream.onBacklog}): stop reading its client side and its server
   * connection, if it has one, until it says so (or is over).
   */
  #holdStream(stream: HttpStream, held: boolean): void {
    const undo = this.#streamHolds.get(stream);
    if (!held) {
      if (undo) {
        this.#streamHolds.delete(stream);
        for (const u of undo) u();
      }
      return;
    }
    if (undo) return;
    const undos: (() => void)[] = [];
    if (this.#client) undos.push(this.#pauseSource(this.#client, stream.streamId));
    const server = stream.server ? this.#slotOf(stream.server)?.codec : null;
    if (server) undos.push(this.#pauseSource(server, stream.streamId));
    this.#streamHolds.set(stream, undos);
  }

  readonly #streamHolds = new Map<HttpStream, (() => void)[]>();

  /** A stream is over: whatever it held back goes again. */
  #unhold(streamId: number): void {
    for (const held of this.#held.values()) {
      const r = held.get(streamId);
      if (r) {
        held.delete(streamId);
        r();
      }
    }
  }

  readonly #held = new Map<Http2Server | Http2Client, Map<number, () => void>>();

  /**
   * A watched server connection (see {@link WatchWrites}) cannot take more (`blocked`) or drained: the
   * HTTP/2 client's streams it serves (HTTP/1: the one; HTTP/2: all of them) get no more credit until then;
   * the client connection goes on reading, so its other streams do not wait.
   */
  #writesBlocked(server: Server, blocked: boolean): void {
    const hold = this.#writeHolds.get(server);
    if (!blocked) {
      if (hold) {
        this.#writeHolds.delete(server);
        for (const undo of hold.values()) undo();
      }
      return;
    }
    const client = this.#client;
    if (hold || !(client instanceof Http2Server)) return;
    const slot = this.#slotOf(server);
    const streams = slot?.stream ? [slot.stream] : [...slot?.streams?.values() ?? []];
    if (!streams.length) return;
    const undos = new Map<HttpStream, () => void>();
    for (const st of streams) undos.set(st, this.#pauseSource(client, st.streamId));
    this.#writeHolds.set(server, undos);
  }

  /** A stream is over: its part of a hold for its server's full write buffer goes with it. */
  #releaseWriteHold(stream: HttpStream): void {
    for (const [server, hold] of this.#writeHolds) {
      const undo = hold.get(stream);
      if (!undo) continue;
      hold.delete(stream);
      if (!hold.size) this.#writeHolds.delete(server);
      undo();
    }
  }

  /** Streams held back because the server connection they write to is full, by connection. */
  readonly #writeHolds = new Map<Server, Map<HttpStream, () => void>>();

  // ---- server connections ----

  #getConnection(c: GetHttpConnection, stream: HttpStream): void {
    const [host, port] = c.address;
    const ctx = this.context;
    // the tunnel's server failed already (a TLS handshake with it, before the client's): tell the stream once
    const tunnel = ctx.server;
    if (
      tunnel.address && tunnel.error && tunnel.address[0] === host && tunnel.address[1] === port &&
      !this.#slotOf(tunnel)
    ) {
      const err = new ProtocolError("tls", tunnel.error, 502);
      tunnel.error = null;
      tunnel.address = [...tunnel.address];
      return c.complete(err);
    }
    if (!c.fresh) {
      // an HTTP/2 connection to that server takes any number of streams
      for (const slot of this.#slots) {
        const s = slot.server;
        if (!(slot.codec instanceof Http2Client) || !slot.codec.reusable) continue;
        if (s.address![0] !== host || s.address![1] !== port || s.tls !== c.tls) continue;
        slot.streams!.set(stream.streamId, stream);
        // a connection whose socket is full holds back what joins it too
        const hold = this.#writeHolds.get(s);
        if (hold && this.#client instanceof Http2Server) {
          hold.set(stream, this.#pauseSource(this.#client, stream.streamId));
        }
        return c.complete(s);
      }
      for (const slot of this.#slots) {
        const s = slot.server;
        if (slot.codec instanceof Http2Client) continue;
        if (slot.stream !== null || s.address![0] !== host || s.address![1] !== port) continue;
        // a tunnel's TCP connection may still become TLS (eager CONNECT, TLS with the client first)
        if (s.tls !== c.tls && !(c.tls && s.timestampTlsSetup === null && s === tunnel)) continue;
        if (!slot.codec || !slot.codec.idle) continue;
        slot.stream = stream;
        if (c.tls && s.timestampTlsSetup === null) return this.#startTls(slot, c);
        return c.complete(s);
      }
      // one being established that may become HTTP/2: wait for it (then share it, or go on as below)
      for (const slot of this.#slots) {
        const s = slot.server;
        if (!slot.waiters || !c.tls || s.address![0] !== host || s.address![1] !== port) continue;
        slot.waiters.push([c, stream]);
        return;
      }
    }
    // a new connection: the tunnel's own server record the first time (it carries the client's SNI)
    const useTunnel = tunnel.address && tunnel.address[0] === host && tunnel.address[1] === port &&
      tunnel.timestampStart === null && !this.#slotOf(tunnel) && !c.fresh;
    const server = useTunnel ? tunnel : new Server([host, port]);
    if (!useTunnel) {
      server.tls = c.tls;
      // upstream mode: through the proxy (plain HTTP in absolute form); in a tunnel: as the tunnel goes
      const sameAsTunnel = tunnel.address && tunnel.address[0] === host && tunnel.address[1] === port;
      const via = this.#opts.via ?? (sameAsTunnel ? tunnel.via : null);
      if (via) {
        server.via = via;
        server.viaAbsoluteForm = !!this.#opts.via && !c.tls;
      }
      if (c.tls && tunnel.address && tunnel.address[0] === host && tunnel.address[1] === port) {
        server.sni = tunnel.sni;
        server.alpnOffers = [...tunnel.alpnOffers];
      }
    }
    if (c.tls) prepareServerTls(ctx, server);
    const slot = this.#addSlot(server, false);
    slot.stream = stream;
    if (c.tls) this.#mayBecomeH2(slot);
    this.request(new OpenConnection(server), (err) => {
      if (err) {
        this.#slots.splice(this.#slots.indexOf(slot), 1);
        slot.stream = null;
        c.complete(err);
        return this.#established(slot, err);
      }
      if (c.tls && server.timestampTlsSetup === null) return this.#startTls(slot, c);
      this.#ready(slot);
      c.complete(server);
      this.#established(slot, null);
    });
  }

  /** A TLS connection about to be established that offers h2: other streams for it wait (see Slot.waiters). */
  #mayBecomeH2(slot: Slot): void {
    if (slot.server.alpnOffers.includes("h2")) slot.waiters ??= [];
  }

  /**
   * The connection is established (`err` null) or failed: the streams that waited for it get it if it is
   * HTTP/2 (or look again: another free one, or a new one), or the same error.
   */
  #established(slot: Slot, err: ProtocolError | null): void {
    const waiters = slot.waiters;
    slot.waiters = undefined;
    if (!waiters) return;
    for (const [c, stream] of waiters) {
      if (err) c.complete(err);
      else this.#getConnection(c, stream);
    }
  }

  /** The connection is open (TLS included): the codec its ALPN asks for. */
  #ready(slot: Slot): void {
    const h2 = slot.server.alpn === "h2";
    if (slot.codec === null || h2 !== (slot.codec instanceof Http2Client)) {
      slot.codec = this.#serverCodec(slot);
    }
    const early = slot.early;
    if (early) {
      slot.early = undefined;
      for (const e of early) slot.codec.handle(e);
    }
  }

  #startTls(slot: Slot, c: GetHttpConnection): void {
    prepareServerTls(this.context, slot.server); // its ALPN offers, to know whether it may become HTTP/2
    this.#mayBecomeH2(slot);
    establishServerTls((cmd, then) => this.request(cmd, then), this.context, slot.server, (err) => {
      if (err) {
        slot.stream = null;
        this.emit(new CloseConnection(slot.server));
        this.#slots.splice(this.#slots.indexOf(slot), 1);
        c.complete(err);
        return this.#established(slot, err);
      }
      this.#ready(slot);
      c.complete(slot.server);
      this.#established(slot, null);
    });
  }

  #releaseConnection(server: Server, stream: HttpStream): void {
    const slot = this.#slotOf(server);
    if (slot?.streams?.get(stream.streamId) === stream) {
      slot.streams.delete(stream.streamId);
      return this.#dropIfClosed(slot);
    }
    if (!slot || slot.stream !== stream) return;
    slot.stream = null;
    this.#dropIfClosed(slot);
  }

  // ---- CONNECT and upgrades ----

  #connect(stream: HttpStream, flow: HTTPFlow): void {
    const ctx = this.context;
    const req = flow.request;
    const tunnelCtx = ctx.fork();
    tunnelCtx.server = new Server([req.host, req.port]);
    tunnelCtx.server.via = this.#opts.via ?? null;
    flow.serverConn = tunnelCtx.server;
    const proceed = () =>
      stream.connectEstablished(() => {
        this.#streams.delete(stream.streamId);
        const client = this.#client as Http1Server; // an HTTP/2 CONNECT never gets here (h2_fields.ts)
        client.upgrade();
        const initial = client.takeBuffered();
        if (!this.#tunnel) {
          this.log(`${ctx.client}: CONNECT ${hostPort(req.host, req.port)}: no layer for the tunnel`, "warn");
          this.emit(new CloseConnection(ctx.client));
          return;
        }
        const next = this.adopt(this.#tunnel(tunnelCtx, initial, flow));
        this.#next = next;
        next.handle(new Start());
      });
    // eager (mitmproxy's default): connect before the 200, so a dead server fails the CONNECT; not needed
    // when an idle TLS connection to that server waits (it will most likely be used)
    if (
      ctx.options.connection_strategy === "eager" && !ctx.core.conns.hasIdleTls(req.host, req.port)
    ) {
      this.request(new OpenConnection(tunnelCtx.server), (err) => {
        if (err) return stream.connectFailed(err);
        proceed();
      });
      return;
    }
    proceed();
  }

  #upgrade(stream: HttpStream, flow: HTTPFlow, server: Server): void {
    this.#streams.delete(stream.streamId);
    const slot = this.#slotOf(server);
    if (this.#client instanceof Http2Server || slot?.codec instanceof Http2Client) {
      // no protocol switch on an HTTP/2 connection (the codec reset the stream): drop the server side
      this.emit(new CloseConnection(server));
      if (slot) this.#slots.splice(this.#slots.indexOf(slot), 1);
      return;
    }
    const client = this.#client;
    client.upgrade();
    slot?.codec?.upgrade();
    const clientRest = client.takeBuffered();
    const serverRest = slot?.codec?.takeBuffered() ?? null;
    if (flow.websocket) {
      const ctx = this.context.fork();
      ctx.server = server;
      const ws = this.adopt(new WebSocketLayer(ctx, flow, clientRest, serverRest));
      this.#next = ws;
      return ws.handle(new Start());
    }
    this.#relaying = true;
    this.request(new Relay(this.context.client, server, clientRest, serverRest), () => {});
  }
}
