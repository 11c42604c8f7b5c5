/// <reference lib="dom" />
/** Talking to the mitmdeno web server: REST calls (with the XSRF header) and the /updates socket. */

function cookie(name: string): string {
  const m = new RegExp(`(?:^|; )${name}=([^;]*)`).exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : "";
}

/** A REST call; throws with the server's message on an error status. */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("X-XSRFToken", cookie("_xsrf"));
  if (typeof init.body === "string") headers.set("content-type", "application/json");
  const r = await fetch(path, { ...init, headers, credentials: "same-origin" });
  if (!r.ok) throw new Error((await r.text()) || `${r.status} ${r.statusText}`);
  return r;
}

/** A REST call returning JSON. */
export async function apiJson<T = any>(path: string, init: RequestInit = {}): Promise<T> {
  return await (await api(path, init)).json() as T;
}

/** Run a command (mitmweb's /commands/NAME); returns its value or throws its error. */
export async function runCommand(cmd: string, ...args: string[]): Promise<any> {
  const r = await apiJson(`/commands/${cmd}`, { method: "POST", body: JSON.stringify({ arguments: args }) });
  if (r.error) throw new Error(r.error);
  return r.value;
}

type Handler = (msg: any) => void;

/** The /updates WebSocket with request/response pairing for view queries. */
export class Updates {
  #ws!: WebSocket;
  #next = 1;
  #waiting = new Map<number, (m: any) => void>();
  #queue: string[] = [];
  onMessage: Handler = () => {};
  onStatus: (connected: boolean) => void = () => {};
  /** Whether the socket is open now. */
  connected = false;

  constructor() {
    this.#connect();
  }

  #connect(): void {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/updates");
    this.#ws = ws;
    ws.onopen = () => {
      this.connected = true;
      this.onStatus(true);
      for (const m of this.#queue.splice(0)) ws.send(m);
    };
    ws.onclose = () => {
      this.connected = false;
      this.onStatus(false);
      setTimeout(() => this.#connect(), 2000);
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      const w = msg.req !== undefined ? this.#waiting.get(msg.req) : undefined;
      if (w) {
        this.#waiting.delete(msg.req);
        w(msg);
      } else this.onMessage(msg);
    };
  }

  /** Send a message and wait for the answer carrying the same `req`. */
  ask(msg: Record<string, unknown>): Promise<any> {
    const req = this.#next++;
    const s = JSON.stringify({ ...msg, req });
    return new Promise((resolve) => {
      this.#waiting.set(req, resolve);
      if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(s);
      else this.#queue.push(s);
    });
  }
}
