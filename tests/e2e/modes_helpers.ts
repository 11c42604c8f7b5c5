/**
 * Helpers for the proxy mode tests: a real mitmdump (mitmproxy 8.1) on loopback, a free port, raw SOCKS5.
 */
import net from "node:net";

/** A free TCP port on 127.0.0.1 (bound and released: for tools that cannot listen on port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A running mitmdump. */
export interface Mitmdump {
  port: number;
  /** Its output so far. */
  output(): string;
  /** Wait until its output matches `re` (bounded). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Start `mitmdump` on 127.0.0.1 with `args` and its own confdir `confdir`. */
export async function startMitmdump(args: string[], confdir: string): Promise<Mitmdump> {
  const port = await freePort();
  const child = new Deno.Command("mitmdump", {
    args: ["--listen-host", "127.0.0.1", "-p", String(port), "--set", `confdir=${confdir}`, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const c of s) out += dec.decode(c, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const waitFor = async (re: RegExp, timeoutMs = 20000) => {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(out)) {
      if (exited) throw new Error(`mitmdump exited; output:\n${out}`);
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${re} from mitmdump; output:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await status;
    clearTimeout(t);
    await pumps;
  };
  try {
    await waitFor(/listening at/);
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, output: () => out, waitFor, stop };
}
