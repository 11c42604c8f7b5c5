/**
 * End-to-end test helpers: run the real CLI as a subprocess, start origins on loopback, drive curl.
 * Everything binds to 127.0.0.1 on ephemeral ports and is stopped by the test that started it.
 */
import net from "node:net";
import { Buffer } from "node:buffer";
import { RUNTIME_FLAGS } from "../../scripts/runtime_flags.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A running mitmdeno process. */
export interface ProxyProcess {
  port: number;
  pid: number;
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** Everything printed so far (stdout and stderr interleaved by arrival). */
  output(): string;
  /** Wait until the output matches `re` (bounded). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Stop with SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number>;
}

/**
 * Start `mitmdeno` from source with `args`, on 127.0.0.1 and an ephemeral port. `opts.command` runs another
 * executable instead (an installed `mitmdeno`, the compiled binary).
 */
export async function startProxy(
  args: string[] = [],
  opts: { cwd?: string; env?: Record<string, string>; command?: string } = {},
): Promise<ProxyProcess> {
  const cmd = new Deno.Command(opts.command ?? Deno.execPath(), {
    args: [
      ...(opts.command ? [] : ["run", "--allow-all", ...RUNTIME_FLAGS, `${ROOT}main.ts`]),
      // a subcommand (`web`, `dump`) must come first
      ...(args[0] === "web" || args[0] === "dump" ? [args[0]] : []),
      "--listen-host",
      "127.0.0.1",
      "--listen-port",
      "0",
      ...(args[0] === "web" || args[0] === "dump" ? args.slice(1) : args),
    ],
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
  const child = cmd.spawn();
  let out = "";
  const listeners: (() => void)[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      out += dec.decode(chunk, { stream: true });
      for (const l of listeners.splice(0)) l();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    for (const l of listeners.splice(0)) l();
    return s;
  });
  const waitFor = async (re: RegExp, timeoutMs = 15000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(out);
      if (m) return m[0];
      if (exited) throw new Error(`proxy exited before printing ${re}; output:\n${out}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; output:\n${out}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        listeners.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    const s = await status;
    clearTimeout(t);
    await pumps;
    return s.code;
  };
  try {
    const line = await waitFor(/listening at 127\.0\.0\.1:(\d+)/, 30000);
    const port = Number(/:(\d+)$/.exec(line)![1]);
    return { port, pid: child.pid, url: `http://127.0.0.1:${port}`, output: () => out, waitFor, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Run the CLI to completion (for --help, bad options...). */
export async function runCli(
  args: string[],
  opts: { cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ...RUNTIME_FLAGS, `${ROOT}main.ts`, ...args],
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** Result of a curl run. */
export interface CurlResult {
  code: number;
  status: number;
  headers: string;
  body: string;
  stderr: string;
}

/** Run curl with `-sS`, collecting status, response headers and body. */
export async function curl(args: string[]): Promise<CurlResult> {
  const hdrFile = await Deno.makeTempFile();
  try {
    const r = await new Deno.Command("curl", {
      args: ["-sS", "--max-time", "20", "-D", hdrFile, "-o", "-", "-w", "\n__STATUS__%{http_code}", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const text = dec.decode(r.stdout);
    const i = text.lastIndexOf("\n__STATUS__");
    return {
      code: r.code,
      status: Number(text.slice(i + 11)),
      body: text.slice(0, i),
      headers: await Deno.readTextFile(hdrFile),
      stderr: dec.decode(r.stderr),
    };
  } finally {
    await Deno.remove(hdrFile);
  }
}

/** An origin server on 127.0.0.1 (Deno.serve). */
export interface Origin {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Start a Deno.serve origin with `handler`. */
export function startOrigin(handler: (req: Request) => Response | Promise<Response>): Origin {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const port = server.addr.port;
  return { port, url: `http://127.0.0.1:${port}`, close: () => server.shutdown() };
}

/** A raw TCP origin: `onData` gets each connection's received bytes so far and may write a reply. */
export async function startRawOrigin(
  onConnection: (socket: net.Socket) => void,
): Promise<Origin & { connections: number }> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Send raw bytes to host:port and collect everything until the peer closes or `idleMs` passes. */
export function rawExchange(port: number, data: string | Uint8Array, idleMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let buf = "";
    let t = setTimeout(() => s.destroy(), idleMs);
    s.on("data", (d: Uint8Array) => {
      buf += new TextDecoder("latin1").decode(d);
      clearTimeout(t);
      t = setTimeout(() => s.destroy(), idleMs);
    });
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(t);
      resolve(buf);
    });
    s.write(data);
  });
}

/** Collect a whole request head from a raw socket, then call `reply`. */
export function onRequestHead(s: net.Socket, reply: (head: string) => void): void {
  let buf = "";
  s.on("data", (d: Uint8Array) => {
    buf += new TextDecoder("latin1").decode(d);
    let i: number;
    while ((i = buf.indexOf("\r\n\r\n")) !== -1) {
      const head = buf.slice(0, i + 4);
      buf = buf.slice(i + 4);
      const cl = /content-length: *(\d+)/i.exec(head);
      if (cl) buf = buf.slice(Number(cl[1]));
      reply(head);
    }
  });
}

/** An in-process proxy (Master + ProxyServer + given addons) for tests that need hooks. */
export interface InProcessProxy {
  master: import("../../lib/master.ts").Master;
  port: number;
  url: string;
  /** Log lines (level: message). */
  logs: string[];
  stop(): Promise<void>;
}

/** Start a master in this process with `addons` after the proxy server, and `--set`-style options. */
export async function startInProcess(addons: object[] = [], sets: string[] = []): Promise<InProcessProxy> {
  const { Master } = await import("../../lib/master.ts");
  const { ProxyServer } = await import("../../lib/proxy/server.ts");
  const master = new Master();
  const logs: string[] = [];
  master.onLog((e) => logs.push(`${e.level}: ${e.msg}`));
  const server = new ProxyServer(master);
  await master.addAddons(server, ...addons);
  await master.options.set(["listen_host=127.0.0.1", "listen_port=0", ...sets]);
  const running = master.run();
  const deadline = Date.now() + 10000;
  while (server.listenAddresses.length === 0) {
    if (Date.now() > deadline) throw new Error(`proxy did not start: ${logs.join("\n")}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const port = server.listenAddresses[0].port;
  return {
    master,
    port,
    url: `http://127.0.0.1:${port}`,
    logs,
    stop: async () => {
      master.shutdown();
      await running;
    },
  };
}

/** Resident memory of a process in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Sequential keep-alive GETs of `/k9/<conn>/<n>` on one connection through an HTTP proxy (for the kill -9
 * tests); `got` lists the paths whose complete response arrived, in order.
 */
export function keepAliveClient(proxyPort: number, originPort: number, conn: number) {
  const got: string[] = [];
  const sock = net.connect(proxyPort, "127.0.0.1");
  let buf = Buffer.alloc(0);
  let n = 0;
  let current = "";
  let stopped = false;
  const send = () => {
    if (stopped) return;
    current = `/k9/${conn}/${n++}`;
    sock.write(
      `GET http://127.0.0.1:${originPort}${current} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`,
    );
  };
  sock.on("connect", send);
  sock.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    // a bounded number of responses per read
    for (let i = 0; i < 1000; i++) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1");
      const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      buf = buf.subarray(end + 4 + len);
      got.push(current);
      send();
    }
  });
  sock.on("error", () => {});
  return {
    got,
    stop: () => {
      stopped = true;
      sock.destroy();
    },
  };
}
