/**
 * The server playback addon (`-S FILE` / `--server-replay FILE`, mitmproxy's `serverplayback.py`).
 *
 * Saved responses are looked up by a key made of the request's scheme, method, path, body (or its form
 * parameters minus `server_replay_ignore_payload_params`), host (unless `server_replay_ignore_host`), port
 * (unless `server_replay_ignore_port`), query parameters (minus `server_replay_ignore_params`) and the
 * values of the `server_replay_use_headers` headers. A matching request is answered in the `request` hook
 * from the file, so no upstream connection is made; the flow gets `isReplay = "response"`. Each saved
 * response is served once, in file order, unless `server_replay_reuse` (or the deprecated
 * `server_replay_nopop`). `server_replay_refresh` (default on) shifts the Date, Expires and Last-Modified
 * headers and cookie expiry by the time since the recording.
 *
 * Requests with no match follow `server_replay_extra`: `forward` (default) sends them upstream, `kill`
 * closes the connection (also the deprecated `server_replay_kill_extra`), and `204`/`400`/`404`/`500`
 * answer with an empty response of that status. Once every response was served, requests are forwarded.
 *
 * Commands: `replay.server FLOWS`, `replay.server.add FLOWS`, `replay.server.file PATH`,
 * `replay.server.stop`, `replay.server.count`.
 */
import type { Loader } from "../lib/addons/manager.ts";
import type { Flow, HTTPFlow } from "../lib/flow/flow.ts";
import { Response } from "../lib/http/message.ts";
import { ctx } from "../lib/addons/ctx.ts";
import { OptionsError } from "../lib/addons/options.ts";
import { CommandError } from "../lib/addons/commands.ts";
import { readFlowsToArray } from "../lib/io/flowfile.ts";
import { latin1 } from "../lib/http/bytes.ts";

const EXTRA = ["forward", "kill", "204", "400", "404", "500"] as const;

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** An RFC 7231 date, as Python's `email.utils.formatdate(usegmt=True)`. */
export function httpDate(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} GMT`;
}

function parseHttpDate(s: string): number | null {
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t / 1000;
}

/**
 * Refresh a replayed response (mitmproxy's `Response.refresh`): shift the Date, Expires and
 * Last-Modified headers and the `expires` attribute of Set-Cookie headers by the time since the response
 * was recorded.
 */
export function refreshResponse(resp: Response, now: number = Date.now() / 1000): void {
  const delta = now - resp.timestampStart;
  for (const name of ["date", "expires", "last-modified"]) {
    const v = resp.headers.get(name);
    if (v === undefined) continue;
    const t = parseHttpDate(v);
    if (t !== null) resp.headers.set(name, httpDate(t + delta));
  }
  const cookies = resp.headers.getAll("set-cookie");
  if (cookies.length) {
    resp.headers.setAll(
      "set-cookie",
      cookies.map((c) =>
        c.replace(/(;\s*expires\s*=\s*)([^;]+)/i, (m, pre: string, date: string) => {
          const t = parseHttpDate(date.trim());
          return t === null ? m : pre + httpDate(t + delta);
        })
      ),
    );
  }
}

/** Form fields of a multipart/form-data body (name, value), for ignore_payload_params. */
function multipartFields(req: HTTPFlow["request"]): [string, string][] | null {
  const form = req.multipartForm;
  return form.size ? form.entries().map(([k, v]) => [k, latin1(v)]) : null;
}

/** Answers requests from saved flows. */
export class ServerPlayback {
  readonly name = "serverplayback";
  /** key -> saved flows with that key, in file order. */
  flowmap = new Map<string, HTTPFlow[]>();
  #configured = false;
  /** Deprecation warnings already given (configure sees the same set value more than once at start-up). */
  readonly #warned = new Set<string>();

  load(loader: Loader): void {
    loader.addOption(
      "server_replay_kill_extra",
      "bool",
      false,
      "Kill extra requests during replay (for which no replayable response was found). " +
        "[Deprecated, prefer to use server_replay_extra='kill']",
    );
    loader.addOption(
      "server_replay_extra",
      "str",
      "forward",
      "Behaviour for extra requests during replay for which no replayable response was found. Setting a " +
        "numeric string value will return an empty HTTP response with the respective status code.",
      EXTRA,
    );
    loader.addOption(
      "server_replay_reuse",
      "bool",
      false,
      "Don't remove flows from server replay state after use. This makes it possible to replay same " +
        "response multiple times.",
    );
    loader.addOption("server_replay_nopop", "bool", false, "Deprecated alias for `server_replay_reuse`.");
    loader.addOption(
      "server_replay_refresh",
      "bool",
      true,
      "Refresh server replay responses by adjusting date, expires and last-modified headers, as well as " +
        "adjusting cookie expiration.",
    );
    loader.addOption(
      "server_replay_use_headers",
      "strs",
      [],
      "Request headers that need to match while searching for a saved flow to replay.",
    );
    loader.addOption("server_replay", "strs", [], "Replay server responses from a saved file.");
    loader.addOption(
      "server_replay_ignore_content",
      "bool",
      false,
      "Ignore request content while searching for a saved flow to replay.",
    );
    loader.addOption(
      "server_replay_ignore_params",
      "strs",
      [],
      "Request parameters to be ignored while searching for a saved flow to replay.",
    );
    loader.addOption(
      "server_replay_ignore_payload_params",
      "strs",
      [],
      "Request payload parameters (application/x-www-form-urlencoded or multipart/form-data) to be " +
        "ignored while searching for a saved flow to replay.",
    );
    loader.addOption(
      "server_replay_ignore_host",
      "bool",
      false,
      "Ignore request destination host while searching for a saved flow to replay.",
    );
    loader.addOption(
      "server_replay_ignore_port",
      "bool",
      false,
      "Ignore request destination port while searching for a saved flow to replay.",
    );
    loader.addCommand(
      "replay.server",
      (flows: Flow[]) => this.loadFlows(flows),
      "Replay server responses from flows.",
    );
    loader.addCommand(
      "replay.server.add",
      (flows: Flow[]) => this.addFlows(flows),
      "Add responses from flows to server replay list.",
    );
    loader.addCommand(
      "replay.server.file",
      (path: string) => this.loadFile(path),
      "Replay server responses from a file.",
    );
    loader.addCommand("replay.server.stop", () => this.clear(), "Stop server replay.");
    loader.addCommand("replay.server.count", () => this.count(), "Number of responses left to replay.");
  }

  #once(key: string): boolean {
    if (this.#warned.has(key)) return false;
    this.#warned.add(key);
    return true;
  }

  async configure(updated: Set<string>): Promise<void> {
    const o = ctx.options;
    if (updated.has("server_replay_kill_extra") && o.server_replay_kill_extra && this.#once("kill_extra")) {
      ctx.log.warn(
        "server_replay_kill_extra has been deprecated, please update your config to use server_replay_extra='kill'.",
      );
    }
    if (updated.has("server_replay_nopop") && o.server_replay_nopop && this.#once("nopop")) {
      ctx.log.warn("server_replay_nopop has been renamed to server_replay_reuse, please update your config.");
    }
    if (updated.has("server_replay") && o.server_replay.length && !this.#configured) {
      this.#configured = true;
      const flows: HTTPFlow[] = [];
      for (const p of o.server_replay as string[]) {
        try {
          flows.push(...await readFlowsToArray(p));
        } catch (e) {
          throw new OptionsError(`Option "server_replay": ${p}: ${(e as Error).message}`);
        }
      }
      this.loadFlows(flows);
    }
  }

  /** Replace the replay list by `flows`. */
  loadFlows(flows: Flow[]): void {
    this.flowmap = new Map();
    this.addFlows(flows);
  }

  /** Add the responses of `flows` to the replay list. */
  addFlows(flows: Flow[]): void {
    for (const f of flows) {
      if (f.type !== "http") continue;
      const key = this.key(f as HTTPFlow);
      let list = this.flowmap.get(key);
      if (!list) this.flowmap.set(key, list = []);
      list.push(f as HTTPFlow);
    }
  }

  /** Load the replay list from a flow file. */
  async loadFile(path: string): Promise<void> {
    let flows: HTTPFlow[];
    try {
      flows = await readFlowsToArray(path);
    } catch (e) {
      throw new CommandError((e as Error).message);
    }
    this.loadFlows(flows);
  }

  /** Stop replaying. */
  clear(): void {
    this.flowmap = new Map();
  }

  /** Responses left to serve. */
  count(): number {
    let n = 0;
    for (const l of this.flowmap.values()) n += l.length;
    return n;
  }

  /** The loose lookup key of a request (mitmproxy's `_hash`), per the current matching options. */
  key(flow: HTTPFlow): string {
    const o = ctx.options;
    const r = flow.request;
    const q = r.path.indexOf("?");
    const pathOnly = q === -1 ? r.path : r.path.slice(0, q);
    const query = q === -1 ? "" : r.path.slice(q + 1);
    const key: unknown[] = [r.scheme, r.method, pathOnly];
    if (!o.server_replay_ignore_content) {
      const ignorePayload = o.server_replay_ignore_payload_params as string[];
      const multipart = ignorePayload.length ? multipartFields(r) : null;
      const form = ignorePayload.length && !multipart ? [...r.urlencodedForm] : [];
      if (multipart) key.push(...multipart.filter(([k]) => !ignorePayload.includes(k)));
      else if (form.length) key.push(...form.filter(([k]) => !ignorePayload.includes(k)));
      else key.push(r.rawContent ? latin1(r.rawContent) : null);
    }
    if (!o.server_replay_ignore_host) key.push(r.prettyHost);
    if (!o.server_replay_ignore_port) key.push(r.port);
    const ignore = o.server_replay_ignore_params as string[];
    for (const [k, v] of new URLSearchParams(query)) {
      if (!ignore.includes(k)) key.push(k, v);
    }
    const useHeaders = o.server_replay_use_headers as string[];
    if (useHeaders.length) key.push(useHeaders.map((h) => [h, r.headers.get(h) ?? null]));
    return JSON.stringify(key);
  }

  /** The saved flow to answer `flow` with, or null (consumes it unless reuse is on). */
  nextFlow(flow: HTTPFlow): HTTPFlow | null {
    const key = this.key(flow);
    const list = this.flowmap.get(key);
    if (!list) return null;
    if (ctx.options.server_replay_reuse || ctx.options.server_replay_nopop) {
      return list.find((f) => f.response) ?? null;
    }
    let ret = list.shift()!;
    while (!ret.response) {
      if (list.length) ret = list.shift()!;
      else {
        this.flowmap.delete(key);
        return null;
      }
    }
    if (!list.length) this.flowmap.delete(key);
    return ret;
  }

  request(f: HTTPFlow): void {
    if (!this.flowmap.size) return;
    const o = ctx.options;
    const rflow = this.nextFlow(f);
    if (rflow) {
      const response = rflow.response!.copy();
      if (o.server_replay_refresh) refreshResponse(response);
      f.response = response;
      f.isReplay = "response";
    } else if (o.server_replay_kill_extra || o.server_replay_extra === "kill") {
      ctx.log.info(`server_playback: killed non-replay request ${f.request.url}`);
      f.kill();
    } else if (o.server_replay_extra !== "forward") {
      ctx.log.info(`server_playback: returned ${o.server_replay_extra} non-replay request ${f.request.url}`);
      f.response = Response.make(Number(o.server_replay_extra));
      f.isReplay = "response";
    }
  }
}
