/**
 * web: the mitmweb equivalent's server side. Records every flow into the flow store (`lib/store/`) as it
 * progresses, keeps only live flows in memory, and serves the UI and mitmweb's HTTP+WebSocket API on
 * `web_host:web_port` (see docs/web.md for the routes and what differs).
 *
 * Flows are written through the addon API only: `update` (fired after every flow hook and by commands)
 * marks a flow dirty; once per turn dirty flows are written and the UI views are told. A flow leaves memory
 * once it has its response or error and is not intercepted.
 *
 * Durability: the store commits at most {@link RECORD_COMMIT_DELAY_MS} after a write (a commit per flow
 * cost as much as the rest of the recording); when a client connection is about to be answered while a
 * finished flow of the same connection is not durable yet, the store syncs first (`#beforeAnswer`: one
 * write of its segment file, which a reopened store indexes again). A `kill -9` then loses at most the last
 * flow of each connection (the one whose response the client may have got, with no later response on that
 * connection), as with one commit per flow. An API request that reads or changes the store commits at once.
 */
import { dirname, join } from "node:path";
import { setImmediate } from "node:timers";
import type { Loader } from "../lib/addons/manager.ts";
import type { Master } from "../lib/master.ts";
import type { Flow, HTTPFlow } from "../lib/flow/flow.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { OptionsError } from "../lib/addons/options.ts";
import type { LogEntry } from "../lib/addons/log.ts";
import { FILTER_HELP } from "../lib/flow/filter.ts";
import { expandHome } from "../lib/paths.ts";
import { Headers } from "../lib/http/headers.ts";
import { SqliteStore } from "../lib/store/sqlite.ts";
import type { FlowStore } from "../lib/store/store.ts";
import { WebAuth } from "../lib/web/auth.ts";
import { flowToJson, logJson, optionsJson, summaryJson } from "../lib/web/json.ts";
import { compileUiFilter, View } from "../lib/web/view.ts";
import { FlowWriter, readFlows } from "../lib/io/flowfile.ts";
import { makeHar } from "../lib/io/har.ts";
import { latin1 } from "../lib/http/bytes.ts";

const ASSETS = new URL("../web/", import.meta.url);
const MAX_EVENTS = 10000;
/** How long a new flow in progress may wait for its first write to the store (see `#flush`). */
const LIVE_WRITE_DELAY_MS = 50;
/** The longest a recorded flow waits for its commit when no later flow of its connection forces one. */
export const RECORD_COMMIT_DELAY_MS = 50;

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** One connected UI or API client on /updates. */
interface Client {
  socket: WebSocket;
  /** Set once the client asked for a view (our UI); others get mitmweb's flow broadcasts. */
  view: View | null;
  pendingChange: boolean;
}

class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function json(data: unknown, status = 200): Response {
  return new Response(JSON.stringify(data), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

/** The web tool's addon. */
export class WebAddon {
  readonly name = "web";
  readonly #master: Master;
  store: FlowStore | null = null;
  auth: WebAuth | null = null;
  #server: Deno.HttpServer | null = null;
  /** Flows still in progress (or being replayed/edited), by id. */
  readonly live = new Map<string, HTTPFlow>();
  #dirty = new Set<HTTPFlow>();
  #finished = new WeakSet<HTTPFlow>();
  #flushScheduled = false;
  /** Flows written at least once, when each was first seen, and the ones waiting for their first write. */
  #written = new WeakSet<HTTPFlow>();
  #firstSeen = new WeakMap<HTTPFlow, number>();
  #deferred = new Set<HTTPFlow>();
  #deferTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Per client connection, its last finished flow not durable yet (the store's timer may commit between
   * a flow's end and its write: only a commit or sync after the write clears it).
   */
  #notDurable = new Map<HTTPFlow["clientConn"], HTTPFlow>();
  #clients = new Set<Client>();
  #events: { e: LogEntry; id: number }[] = [];
  #eventId = 0;
  #temporaryStore: string | null = null;
  #notifyTimer: ReturnType<typeof setTimeout> | null = null;
  /** The URL printed at start (with the token). */
  url = "";

  constructor(master: Master) {
    this.#master = master;
  }

  load(loader: Loader): void {
    loader.addOption("web_open_browser", "bool", true, "Start a browser.");
    loader.addOption("web_debug", "bool", false, "Enable mitmweb debugging.");
    loader.addOption("web_port", "int", 8081, "Web UI port.");
    loader.addOption("web_host", "str", "127.0.0.1", "Web UI host.");
    loader.addOption(
      "web_password",
      "str",
      "",
      "Password to protect the web UI (plain text, or a bcrypt hash starting with $2). Without it a random " +
        "token is made at start and printed in the URL. Tools pass it as ?token= or Authorization: Bearer.",
      undefined,
      { secret: true },
    );
    loader.addOption(
      "web_columns",
      "strs",
      ["tls", "icon", "method", "host", "path", "status", "size", "time", "duration", "marked"],
      "Columns to show in the flow list: tls, icon, method, host, path, status, size, time, duration, " +
        "marked (marker and comment).",
    );
    loader.addOption("web_theme", "str", "system", "Preferred color theme of the web UI.", [
      "system",
      "dark",
      "light",
    ]);
    loader.addOption(
      "web_store",
      "optional str",
      null,
      "SQLite file holding the flows. Give one to keep a session and reopen it later (its flows are " +
        "shown again). Default: a fresh file per run in the confdir, deleted at exit.",
    );
    loader.addOption("view_filter", "optional str", null, "Limit the flows the API's /flows lists.");
    this.#master.onLog((e) => this.#log(e));
  }

  async configure(updated: Set<string>): Promise<void> {
    const o = ctx.options;
    if (updated.has("web_port") && (o.web_port < 0 || o.web_port > 65535)) {
      throw new OptionsError(`Option "web_port": ${o.web_port} is not a port (0-65535)`);
    }
    if (updated.has("web_password") || updated.has("web_port") || updated.has("web_host")) {
      try {
        if (!this.auth) this.auth = new WebAuth(o.web_port, o.web_host, o.web_password);
        else {
          this.auth.setPassword(o.web_password);
          this.auth.webHost = o.web_host;
        }
      } catch (e) {
        throw new OptionsError(`Option "web_password": ${(e as Error).message}`);
      }
      await this.auth.prepare();
    }
    if (updated.has("view_filter")) {
      const f = compileUiFilter(o.view_filter);
      if (f.error) throw new OptionsError(`Option "view_filter": ${f.error}`);
    }
    if (updated.has("web_store") && !this.store) this.#openStore();
    this.#broadcast({ type: "options/update", payload: optionsJson(o, updated) });
  }

  #openStore(): void {
    const o = ctx.options;
    let path = o.web_store as string | null;
    if (path) path = expandHome(path);
    else {
      const dir = expandHome(o.confdir as string);
      Deno.mkdirSync(dir, { recursive: true });
      path = join(dir, `web-flows-${Deno.pid}-${Date.now()}.sqlite`);
      this.#temporaryStore = path;
    }
    try {
      Deno.mkdirSync(dirname(path), { recursive: true });
      this.store = SqliteStore.open(path, {
        // the default store is deleted at exit: it must survive a kill of the proxy, not of the OS
        durable: this.#temporaryStore === null,
        commitDelayMs: RECORD_COMMIT_DELAY_MS,
        onCommit: () => this.#committed(),
      });
    } catch (e) {
      throw new OptionsError(`Option "web_store": ${(e as Error).message}`);
    }
    if (!this.#temporaryStore) ctx.log.info(`Flow store: ${path} (${this.store.count()} flows)`);
  }

  async running(): Promise<void> {
    const o = ctx.options;
    const host = o.web_host as string;
    const port = o.web_port as number;
    try {
      this.#server = Deno.serve(
        { hostname: host, port, onListen: () => {} },
        (req, info) => this.#handle(req, info),
      );
    } catch (e) {
      let msg = `Web server failed to listen on ${host || "*"}:${port} with ${(e as Error).message}`;
      if (e instanceof Deno.errors.AddrInUse) {
        msg += `\nTry specifying a different port by using \`--set web_port=${port + 2}\`.`;
      }
      ctx.log.error(msg);
      this.#master.exitCode = 1;
      this.#master.shutdown();
      return;
    }
    const addr = this.#server.addr as Deno.NetAddr;
    this.auth!.port = addr.port;
    const shownHost = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    const token = this.auth!.urlToken(Boolean(o.web_password));
    this.url = `http://${shownHost}:${addr.port}/${token ? `?token=${token}` : ""}`;
    if (host === "0.0.0.0" || host === "::" || host === "") {
      ctx.log.warn(
        `The web UI listens on all interfaces (${
          host || "*"
        }): anyone who can reach this machine can try the token.`,
      );
    }
    ctx.log.info(`Web server listening at ${this.url}`);
    if (o.web_open_browser) await this.#openBrowser();
  }

  async #openBrowser(): Promise<void> {
    for (const cmd of ["xdg-open", "x-www-browser", "open"]) {
      try {
        const child = new Deno.Command(cmd, {
          args: [this.url],
          stdout: "null",
          stderr: "null",
          stdin: "null",
        })
          .spawn();
        const s = await child.status;
        if (s.success) return;
      } catch { /* not installed */ }
    }
    ctx.log.info(`No web browser found. Please open a browser and point it to ${this.url}`);
  }

  async done(): Promise<void> {
    this.#flush();
    for (const c of this.#clients) {
      try {
        c.socket.close(1001, "shutting down");
      } catch { /* gone */ }
    }
    if (this.#notifyTimer !== null) clearTimeout(this.#notifyTimer);
    if (this.#deferTimer !== null) clearTimeout(this.#deferTimer);
    await this.#server?.shutdown().catch(() => {});
    this.store?.close();
    this.store = null;
    if (this.#temporaryStore) {
      for (const s of ["", "-wal", "-shm", "-seg"]) {
        await Deno.remove(this.#temporaryStore + s).catch(() => {});
      }
    }
  }

  // --- recording -------------------------------------------------------------------------------------

  update(flows: Flow[]): void {
    for (const f of flows) {
      if (f.type !== "http") continue;
      const h = f as HTTPFlow;
      this.live.set(h.id, h);
      this.#dirty.add(h);
    }
    this.#scheduleFlush();
  }

  http_connect(f: HTTPFlow): void {
    this.#beforeAnswer(f);
  }

  responseheaders(f: HTTPFlow): void {
    this.#beforeAnswer(f);
  }

  response(f: HTTPFlow): void {
    this.#beforeAnswer(f);
    if (!f.websocket) this.#finish(f);
  }

  error(f: HTTPFlow): void {
    this.#beforeAnswer(f);
    this.#finish(f);
  }

  websocket_end(f: HTTPFlow): void {
    this.#finish(f);
  }

  #finish(f: HTTPFlow): void {
    this.#finished.add(f);
    this.#notDurable.set(f.clientConn, f);
  }

  /** After a commit: the flows it held are durable (a finished flow still dirty was not in it). */
  #committed(): void {
    for (const [conn, f] of this.#notDurable) if (!this.#dirty.has(f)) this.#notDurable.delete(conn);
  }

  /**
   * `f`'s client is about to get an answer (these hooks run before anything of it is sent): a finished
   * flow of the same connection not durable yet is written and synced first, so a `kill -9` can cost a
   * connection only its last flow.
   */
  #beforeAnswer(f: HTTPFlow): void {
    const last = this.#notDurable.get(f.clientConn);
    if (last === undefined || last === f || !this.store) return;
    if (this.#dirty.has(last)) this.#flush(false);
    this.store.sync();
    this.#notDurable.delete(f.clientConn);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush(false));
  }

  /**
   * Write dirty flows, drop finished ones from memory, tell the views. A flow still in progress that was
   * never written waits up to {@link LIVE_WRITE_DELAY_MS} (most finish sooner and are then written once,
   * not at request and again at response); intercepted flows and an explicit flush (`all`, before an API
   * call reads the store) write at once.
   */
  #flush(all = true): void {
    this.#flushScheduled = false;
    if (all && this.#deferred.size) {
      for (const f of this.#deferred) this.#dirty.add(f);
      this.#deferred.clear();
    }
    const store = this.store;
    if (!store || this.#dirty.size === 0) return;
    const dirty = this.#dirty;
    this.#dirty = new Set();
    const written: [HTTPFlow, number][] = [];
    const now = Date.now();
    for (const f of dirty) {
      if (!all && !this.#written.has(f) && !f.intercepted && !this.#finished.has(f)) {
        const first = this.#firstSeen.get(f);
        if (first === undefined) this.#firstSeen.set(f, now);
        if (first === undefined || now - first < LIVE_WRITE_DELAY_MS) {
          this.#deferred.add(f);
          continue;
        }
      }
      this.#deferred.delete(f);
      this.#written.add(f);
      const done = this.#finished.has(f) && !f.intercepted;
      const wasLive = f.live;
      if (done) f.live = false;
      const seq = store.put(f);
      if (done) {
        this.live.delete(f.id);
        f.live = wasLive;
      }
      written.push([f, seq]);
    }
    // recording (not `all`) leaves the commit to the store's timer and #beforeAnswer
    if (all) store.commit();
    if (this.#deferred.size && this.#deferTimer === null) {
      this.#deferTimer = setTimeout(() => {
        this.#deferTimer = null;
        for (const f of this.#deferred) this.#dirty.add(f);
        this.#deferred.clear();
        this.#flush(false);
      }, LIVE_WRITE_DELAY_MS);
    }
    if (written.length && this.#clients.size) this.#tellClients(written);
  }

  #tellClients(written: [HTTPFlow, number][]): void {
    let mitmwebMessages: string[] | null = null;
    for (const c of this.#clients) {
      if (c.view) {
        for (const [f, seq] of written) if (c.view.changed(f, seq)) c.pendingChange = true;
      } else {
        mitmwebMessages ??= written.map(([f]) =>
          JSON.stringify({
            type: "flows/update",
            payload: { flow: flowToJson(f), matching_filters: {} },
          })
        );
        for (const m of mitmwebMessages) this.#send(c, m);
      }
    }
    this.#scheduleNotify();
  }

  /** Tell views about changes at most every 100 ms: the UI then asks for the rows it shows. */
  #scheduleNotify(): void {
    if (this.#notifyTimer !== null) return;
    this.#notifyTimer = setTimeout(() => {
      this.#notifyTimer = null;
      for (const c of this.#clients) {
        if (!c.view) continue;
        if (c.view.maybeRefresh()) c.pendingChange = true;
        if (c.pendingChange) {
          c.pendingChange = false;
          this.#send(c, JSON.stringify({ type: "view/changed", total: c.view.total }));
        }
      }
    }, 100);
  }

  #log(e: LogEntry): void {
    const id = ++this.#eventId;
    this.#events.push({ e, id });
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS);
    if (this.#clients.size) this.#broadcast({ type: "events/add", payload: logJson(e, id) });
  }

  #send(c: Client, msg: string): void {
    if (c.socket.readyState === WebSocket.OPEN) c.socket.send(msg);
  }

  #broadcast(msg: unknown): void {
    if (!this.#clients.size) return;
    const s = JSON.stringify(msg);
    for (const c of this.#clients) this.#send(c, s);
  }

  /** Views must re-read everything (after clear, load, delete). */
  #resetViews(removedSeqs?: number[]): void {
    for (const c of this.#clients) {
      if (!c.view) {
        this.#send(c, JSON.stringify({ type: "flows/reset" }));
        continue;
      }
      if (removedSeqs) c.view.removed(removedSeqs);
      else c.view.refresh();
      c.pendingChange = true;
    }
    this.#scheduleNotify();
  }

  // --- flows ------------------------------------------------------------------------------------------

  /** A flow by id: the live object if in memory, else read from the store. */
  flow(id: string): HTTPFlow {
    const f = this.live.get(id) ?? this.store?.get(id);
    if (!f) throw new ApiError(404, "Flow not found.");
    return f;
  }

  /** Write a changed flow now and tell everyone. */
  #changed(f: HTTPFlow): void {
    this.update([f]);
    this.#flush();
  }

  /** Resolve a command argument: `@id`, `@all`, `@marked`, `@unmarked`, `@intercepted` -> flows. */
  #resolve(spec: string): HTTPFlow[] {
    const store = this.store!;
    const all = () => [...store.flows({ filter: null })].map((f) => this.live.get(f.id) ?? f);
    switch (spec) {
      case "@all":
      case "@shown":
        return all();
      case "@marked":
        return all().filter((f) => f.marked);
      case "@unmarked":
        return all().filter((f) => !f.marked);
      case "@intercepted":
        return [...this.live.values()].filter((f) => f.intercepted);
    }
    return [this.flow(spec.slice(1))];
  }

  /** Load flows from a flow file or HAR straight into the store (one transaction per 1000 flows). */
  async loadFlows(src: ReadableStream<Uint8Array> | Uint8Array, clear: boolean): Promise<number> {
    const store = this.store!;
    if (clear) this.#clear();
    const stream = src instanceof Uint8Array ? ReadableStream.from([src]) : src;
    let n = 0;
    try {
      for await (const f of readFlows(stream)) {
        store.put(f);
        if (++n % 1000 === 0) store.commit();
      }
    } finally {
      store.commit();
      this.#resetViews();
    }
    ctx.log.info(`Loaded ${n} flows.`);
    return n;
  }

  #clear(): void {
    for (const f of this.live.values()) if (f.killable) f.kill();
    this.live.clear();
    this.#dirty.clear();
    this.#deferred.clear();
    this.store!.clear();
  }

  #applyEdit(f: HTTPFlow, body: Record<string, any>): void {
    for (const [a, b] of Object.entries(body)) {
      if (a === "request") {
        const q = f.request;
        for (const [k, v] of Object.entries(b as Record<string, any>)) {
          if (k === "method") q.method = String(v);
          else if (k === "scheme") q.scheme = String(v);
          else if (k === "host") q.host = String(v);
          else if (k === "path") q.path = String(v);
          else if (k === "http_version") q.httpVersion = String(v);
          else if (k === "port") {
            const p = Number(v);
            if (!Number.isInteger(p) || p < 0 || p > 65535) throw new ApiError(400, `Invalid port: ${v}`);
            q.port = p;
          } else if (k === "url") {
            try {
              q.url = String(v);
            } catch {
              throw new ApiError(400, `Invalid URL: ${v}`);
            }
          } else if (k === "headers") q.headers = new Headers(v as [string, string][]);
          else if (k === "trailers") q.trailers = new Headers(v as [string, string][]);
          else if (k === "content") q.text = String(v);
          else throw new ApiError(400, `Unknown update request.${k}: ${JSON.stringify(v)}`);
        }
      } else if (a === "response") {
        const r = f.response;
        if (!r) throw new ApiError(400, "Flow has no response.");
        for (const [k, v] of Object.entries(b as Record<string, any>)) {
          if (k === "reason") r.reason = String(v);
          else if (k === "http_version") r.httpVersion = String(v);
          else if (k === "code" || k === "status_code") {
            const c = Number(v);
            if (!Number.isInteger(c) || c < 100 || c > 999) {
              throw new ApiError(400, `Invalid status code: ${v}`);
            }
            r.statusCode = c;
          } else if (k === "headers") r.headers = new Headers(v as [string, string][]);
          else if (k === "trailers") r.trailers = new Headers(v as [string, string][]);
          else if (k === "content") r.text = String(v);
          else throw new ApiError(400, `Unknown update response.${k}: ${JSON.stringify(v)}`);
        }
      } else if (a === "marked") f.marked = b === true ? ":default:" : b === false ? "" : String(b ?? "");
      else if (a === "comment") f.comment = String(b ?? "");
      else throw new ApiError(400, `Unknown update ${a}: ${JSON.stringify(b)}`);
    }
  }

  /** Keep the pre-edit state once (live flows are written first so the backup is their current state). */
  #backup(f: HTTPFlow): void {
    const store = this.store!;
    if (this.#dirty.has(f)) this.#flush();
    if (store.seqOf(f.id) === null) store.put(f);
    store.setBackup(f);
  }

  // --- HTTP -------------------------------------------------------------------------------------------

  async #handle(req: Request, _info: Deno.ServeHandlerInfo): Promise<Response> {
    const url = new URL(req.url);
    const auth = this.auth!.check(req, url);
    if (!auth.ok) {
      const page = url.pathname === "/" && req.method === "GET"
        ? `<!doctype html><title>mitmdeno</title><body style="font-family:sans-serif"><h1>403: ${auth.reason}</h1>` +
          `<p>Open the URL with the token printed by <code>mitmdeno web</code> at start.</p></body>`
        : auth.reason;
      return new Response(page, {
        status: auth.status,
        headers: { "content-type": url.pathname === "/" ? "text/html; charset=utf-8" : "text/plain" },
      });
    }
    let resp: Response;
    try {
      resp = await this.#route(req, url);
    } catch (e) {
      if (e instanceof ApiError) resp = new Response(e.message, { status: e.status });
      else {
        ctx.log.error(`web: ${req.method} ${url.pathname}: ${(e as Error).message}`);
        resp = new Response(`internal error: ${(e as Error).message}`, { status: 500 });
      }
    }
    if (resp.status === 101) return resp;
    const headers = resp.headers;
    for (const c of auth.setCookie) headers.append("set-cookie", c);
    headers.set("x-frame-options", "DENY");
    headers.set("x-content-type-options", "nosniff");
    headers.set("referrer-policy", "no-referrer");
    headers.set(
      "content-security-policy",
      "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    );
    return resp;
  }

  async #asset(path: string): Promise<Response> {
    if (path.includes("..")) throw new ApiError(404, "Not found.");
    const ext = path.slice(path.lastIndexOf("."));
    try {
      const data = await Deno.readFile(new URL(path, ASSETS));
      return new Response(data, { headers: { "content-type": MIME[ext] ?? "application/octet-stream" } });
    } catch {
      if (path.startsWith("dist/")) {
        return new Response(
          "the web UI is not built: run `deno task build:web` (the test, start and compile tasks do it)",
          { status: 404 },
        );
      }
      throw new ApiError(404, "Not found.");
    }
  }

  async #body(req: Request): Promise<any> {
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
      throw new ApiError(400, "Invalid Content-Type, expected application/json.");
    }
    try {
      return await req.json();
    } catch (e) {
      throw new ApiError(400, `Malformed JSON: ${(e as Error).message}`);
    }
  }

  /** A file upload: multipart (the first file) or the raw body. */
  async #upload(req: Request): Promise<Uint8Array> {
    const ct = req.headers.get("content-type") ?? "";
    if (ct.startsWith("multipart/form-data")) {
      const form = await req.formData();
      for (const v of form.values()) if (v instanceof File) return new Uint8Array(await v.arrayBuffer());
      throw new ApiError(400, "no file in the upload");
    }
    return new Uint8Array(await req.arrayBuffer());
  }

  async #route(req: Request, url: URL): Promise<Response> {
    const store = this.store!;
    const p = url.pathname.replace(/\.json$/, "");
    const m = req.method;
    if (p === "/" && m === "GET") return await this.#asset("index.html");
    if (p.startsWith("/static/") && m === "GET") return await this.#asset(p.slice(8));
    if (p === "/updates") return this.#websocket(req);
    if (p === "/filter-help") return json({ commands: FILTER_HELP });
    if (p === "/state") {
      const server = this.#master.addons.get("proxyserver") as { listenAddresses?: unknown[] } | undefined;
      return json({
        version: (await import("../lib/version.ts")).VERSION,
        contentViews: [
          "Auto",
          "Raw",
          "Hex",
          "JSON",
          "HTML",
          "XML",
          "CSS",
          "JavaScript",
          "Image",
          "URL-encoded",
          "Multipart",
          "Query",
        ],
        servers: server?.listenAddresses ?? [],
        platform: Deno.build.os,
        flowCount: store.count(),
        xsrf: this.auth!.xsrf,
      });
    }
    if (p === "/events") return json(this.#events.map(({ e, id }) => logJson(e, id)));
    if (p === "/options") {
      if (m === "GET") return json(optionsJson(ctx.options));
      if (m === "PUT") {
        try {
          await ctx.options.update(await this.#body(req));
        } catch (e) {
          if (e instanceof ApiError) throw e;
          throw new ApiError(400, (e as Error).message);
        }
        return json({});
      }
    }
    if (p === "/options/save" && m === "POST") return json({});
    if (p === "/commands" && m === "GET") {
      const out: Record<string, unknown> = {};
      for (const c of this.#master.commands.list()) {
        out[c.path] = { help: c.help, parameters: [], return_type: null, signature_help: c.path };
      }
      return json(out);
    }
    const cmd = /^\/commands\/([a-z0-9._-]+)$/i.exec(p);
    if (cmd && m === "POST") {
      let args: unknown[] = [];
      try {
        args = ((await req.json()) as { arguments?: unknown[] }).arguments ?? [];
      } catch { /* no arguments */ }
      try {
        const resolved = args.map((a) => (typeof a === "string" && a.startsWith("@") ? this.#resolve(a) : a))
          .map((a) => (Array.isArray(a) && a.length === 1 && cmd[1] === "export" ? a[0] : a));
        let value = await this.#master.commands.call(cmd[1], ...resolved);
        if (value instanceof Uint8Array) value = latin1(value);
        for (const a of resolved.flat()) {
          if (a && typeof a === "object" && "request" in a) this.#changed(a as HTTPFlow);
        }
        return json({ value: value ?? null });
      } catch (e) {
        return json({ error: (e as Error).message });
      }
    }
    if (p === "/clear" && m === "POST") {
      this.#clear();
      this.#events = [];
      this.#resetViews();
      this.#broadcast({ type: "events/reset" });
      return json({});
    }
    if (p === "/flows" && m === "GET") return this.#allFlows(url);
    if (p === "/flows/dump") {
      if (m === "GET") return this.#dump(url, "flows");
      if (m === "POST") {
        const data = await this.#upload(req);
        try {
          const n = await this.loadFlows(data, url.searchParams.get("append") !== "1");
          return json({ loaded: n });
        } catch (e) {
          throw new ApiError(400, (e as Error).message);
        }
      }
    }
    if (p === "/flows/har" && m === "GET") return this.#dump(url, "har");
    if (p === "/flows/resume" && m === "POST") {
      for (const f of [...this.live.values()]) {
        if (f.intercepted) {
          f.resume();
          this.#changed(f);
        }
      }
      return json({});
    }
    if (p === "/flows/kill" && m === "POST") {
      for (const f of [...this.live.values()]) {
        if (f.killable) {
          f.kill();
          this.#changed(f);
        }
      }
      return json({});
    }
    const fm = /^\/flows\/([0-9a-zA-Z-]+)(?:\/(.+))?$/.exec(p);
    if (fm) return await this.#flowRoute(req, url, fm[1], fm[2] ?? "");
    throw new ApiError(404, "Not found.");
  }

  #filterParam(url: URL): ReturnType<typeof compileUiFilter>["filter"] {
    const { filter, error } = compileUiFilter(url.searchParams.get("filter"));
    if (error) throw new ApiError(400, `Invalid filter argument: ${error}`);
    return filter;
  }

  #allFlows(url: URL): Response {
    this.#flush();
    const filter = url.searchParams.has("filter")
      ? this.#filterParam(url)
      : compileUiFilter(ctx.options.view_filter).filter;
    const store = this.store!;
    const seqs = store.select(filter);
    const enc = new TextEncoder();
    let i = 0;
    const live = this.live;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (i === 0) c.enqueue(enc.encode("["));
        const end = Math.min(seqs.length, i + 500);
        let s = "";
        for (const f of store.flows({ seqs: seqs.slice(i, end) })) {
          const modified = store.summary(f.id)?.modified ?? false;
          s += (i++ === 0 ? "" : ",") + JSON.stringify(flowToJson(live.get(f.id) ?? f, modified));
        }
        if (s) c.enqueue(enc.encode(s));
        if (i >= seqs.length) {
          c.enqueue(enc.encode("]"));
          c.close();
        }
      },
    });
    return new Response(body, { headers: { "content-type": "application/json; charset=utf-8" } });
  }

  #dump(url: URL, format: "flows" | "har"): Response {
    this.#flush();
    const filter = this.#filterParam(url);
    const ids = url.searchParams.get("ids");
    const store = this.store!;
    const seqs = ids
      ? ids.split(",").map((id) => store.seqOf(id)).filter((s): s is number => s !== null)
      : store.select(filter);
    if (format === "har") {
      const har = makeHar(store.flows({ seqs }));
      return new Response(JSON.stringify(har, null, 2), {
        headers: {
          "content-type": "application/json",
          "content-disposition": "attachment; filename=flows.har",
        },
      });
    }
    const chunks: Uint8Array[] = [];
    const writer = new FlowWriter({ write: (b) => Promise.resolve(b.length) }, {
      version: ctx.options.flow_format_version as number,
    });
    for (const f of store.flows({ seqs })) chunks.push(writer.encode(f));
    return new Response(new Blob(chunks as BlobPart[]), {
      headers: {
        "content-type": "application/octet-stream",
        "content-disposition": "attachment; filename=flows",
      },
    });
  }

  async #flowRoute(req: Request, url: URL, id: string, rest: string): Promise<Response> {
    const store = this.store!;
    const m = req.method;
    this.#flush();
    if (rest === "") {
      if (m === "GET") {
        const f = this.flow(id);
        return json(flowToJson(f, store.summary(id)?.modified ?? false));
      }
      if (m === "DELETE") {
        const f = this.flow(id);
        if (f.killable && this.live.has(id)) f.kill();
        this.live.delete(id);
        this.#dirty.delete(f);
        this.#deferred.delete(f);
        const seq = store.seqOf(id);
        store.remove([id]);
        store.commit();
        this.#resetViews(seq === null ? [] : [seq]);
        this.#broadcastRemove(id);
        return json({});
      }
      if (m === "PUT") {
        const body = await this.#body(req);
        const f = this.flow(id);
        const before = store.get(id);
        this.#backup(f);
        try {
          this.#applyEdit(f, body);
        } catch (e) {
          if (before && !this.live.has(id)) store.put(before);
          throw e;
        }
        this.#changed(f);
        return json({});
      }
    }
    if (m === "POST" && rest === "resume") {
      const f = this.flow(id);
      f.resume();
      this.#changed(f);
      return json({});
    }
    if (m === "POST" && rest === "kill") {
      const f = this.flow(id);
      if (f.killable && this.live.has(id)) {
        f.kill();
        this.#changed(f);
      }
      return json({});
    }
    if (m === "POST" && rest === "duplicate") {
      const f = this.flow(id).copy();
      f.live = false;
      f.intercepted = false;
      this.#dirty.add(f);
      this.#finished.add(f);
      this.#flush();
      return new Response(f.id);
    }
    if (m === "POST" && rest === "revert") {
      const b = store.backup(id);
      if (b) {
        const live = this.live.get(id);
        if (live) {
          live.request = b.request;
          live.response = b.response;
          live.marked = b.marked;
          live.comment = b.comment;
        }
        store.put(live ?? b);
        store.dropBackup(id);
        store.commit();
        this.#changed(live ?? b);
      }
      return json({});
    }
    if (m === "POST" && rest === "replay") {
      const f = this.flow(id);
      if (this.live.has(id) && f.live) throw new ApiError(400, "Can't replay live flow.");
      f.live = false;
      const n = await this.#master.commands.call("replay.client", [f]);
      if (!n) throw new ApiError(400, "This flow cannot be replayed.");
      this.live.set(f.id, f);
      return json({});
    }
    const cm = /^(request|response|messages)\/content(?:\.data|\/([0-9a-zA-Z_%-]+))$/.exec(rest);
    if (cm) {
      const f = this.flow(id);
      const msg = cm[1] === "request" ? f.request : cm[1] === "response" ? f.response : null;
      if (!msg) throw new ApiError(400, "This flow has no such message.");
      if (rest.endsWith(".data")) {
        if (m === "POST") {
          const data = await this.#upload(req);
          this.#backup(f);
          msg.content = data;
          this.#changed(f);
          return json({});
        }
        const raw = url.searchParams.get("raw") === "1";
        const content = raw ? msg.rawContent : msg.getContent(false);
        let filename = /filename=([-\w" .()]+)/.exec(msg.headers.get("content-disposition") ?? "")?.[1] ??
          f.request.pathname.split("/").pop() ?? "";
        filename = filename.replace(/[^-\w" .()]/g, "") || "content";
        return new Response((content ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>, {
          headers: {
            "content-type": "application/text",
            "content-disposition": `attachment; filename="${filename.replaceAll('"', "")}"`,
          },
        });
      }
      // mitmweb's content view route: text of the chosen view, cut after `lines`
      const view = decodeURIComponent(cm[2] ?? "auto").toLowerCase();
      const lines = Number(url.searchParams.get("lines") ?? 0);
      const content = msg.getContent(false) ?? new Uint8Array(0);
      let text: string;
      let viewName = "Raw";
      if (view === "hex") {
        viewName = "Hex";
        text = hexdump(content);
      } else {
        text = new TextDecoder().decode(content);
        if (view === "json" || (view === "auto" && /json/i.test(msg.headers.get("content-type") ?? ""))) {
          try {
            text = JSON.stringify(JSON.parse(text), null, 2);
            viewName = "JSON";
          } catch { /* not JSON: raw */ }
        }
      }
      if (lines > 0) text = text.split("\n").slice(0, lines).join("\n");
      return json({
        text,
        view_name: viewName,
        syntax_highlight: viewName === "JSON" ? "yaml" : "none",
        description: viewName,
      });
    }
    throw new ApiError(404, "Not found.");
  }

  #broadcastRemove(id: string): void {
    for (const c of this.#clients) {
      if (!c.view) this.#send(c, JSON.stringify({ type: "flows/remove", payload: id }));
    }
  }

  // --- WebSocket --------------------------------------------------------------------------------------

  #websocket(req: Request): Response {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError(400, "expected a WebSocket upgrade");
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    const client: Client = { socket, view: null, pendingChange: false };
    socket.onopen = () => this.#clients.add(client);
    socket.onclose = () => this.#clients.delete(client);
    socket.onerror = () => this.#clients.delete(client);
    socket.onmessage = (ev) => {
      try {
        this.#onMessage(client, JSON.parse(String(ev.data)));
      } catch (e) {
        ctx.log.error(`web: bad message from a client: ${(e as Error).message}`);
        socket.close(1011, "Internal server error.");
      }
    };
    return response;
  }

  #onMessage(c: Client, msg: { type: string; payload?: any; [k: string]: any }): void {
    const store = this.store!;
    switch (msg.type) {
      case "view/set": {
        this.#flush();
        c.view ??= new View(store);
        const errors = c.view.set(
          msg as { filter?: string; highlight?: string; order?: string; reverse?: boolean },
        );
        this.#send(c, JSON.stringify({ type: "view/state", req: msg.req, total: c.view.total, ...errors }));
        break;
      }
      case "rows": {
        if (!c.view) return;
        const seqs = c.view.window(Number(msg.offset) || 0, Math.min(500, Number(msg.limit) || 100));
        const hl = c.view.highlight;
        const rows = store.summaries(seqs).map((s) => {
          const f = this.live.get(s.id);
          if (f) {
            s.intercepted = f.intercepted;
            s.live = true;
          }
          return summaryJson(s, hl ? hl(f ?? store.get(s.id)!) : false);
        });
        this.#send(
          c,
          JSON.stringify({ type: "rows", req: msg.req, offset: msg.offset, total: c.view.total, rows }),
        );
        break;
      }
      case "indexOf": {
        if (!c.view) return;
        const seq = store.seqOf(String(msg.id));
        this.#send(
          c,
          JSON.stringify({ type: "indexOf", req: msg.req, index: seq === null ? -1 : c.view.indexOf(seq) }),
        );
        break;
      }
      case "flows/updateFilter":
        // mitmweb clients: answer with the matching ids
        {
          const { filter, error } = compileUiFilter(msg.payload?.expr);
          const ids = error || !msg.payload?.expr
            ? null
            : store.summaries(store.select(filter)).map((s) => s.id);
          this.#send(
            c,
            JSON.stringify({
              type: "flows/filterUpdate",
              payload: { name: msg.payload?.name, matching_flow_ids: ids },
            }),
          );
        }
        break;
      default:
        throw new Error(`Unsupported command: ${msg.type}`);
    }
  }
}

function hexdump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.subarray(i, i + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, "0")).join(" ");
    const asc = Array.from(row, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : ".")).join("");
    lines.push(`${i.toString(16).padStart(10, "0")}  ${hex.padEnd(48)}  ${asc}`);
  }
  return lines.join("\n");
}
