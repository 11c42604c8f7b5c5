/**
 * WebSocket echo scenarios: {@linkcode WS_CONNECTIONS} WebSockets, each sending a {@linkcode WS_MESSAGE_BYTES}
 * text message and the next one when its echo is back, for the run's duration; the rate is echoed messages
 * (round trips) per second, the latencies are round trips. Directly to the echo origin, through mitmdeno
 * (regular mode: a CONNECT tunnel, then the HTTP/1 Upgrade; the proxy's WebSocket layer reads every
 * message), through mitmdeno with a sandboxed script (`-s`) whose `websocket_message` rewrites every
 * message, and through mitmdump. The origin is the runner's (`origin.ts` echoes WebSocket messages), the
 * load generator `ws_load.ts` runs in its own process.
 *
 * @module
 */
import { findExecutable } from "./process.ts";
import {
  MITMDENO_CMD,
  MITMDENO_LISTEN,
  MITMDUMP_CMD,
  MITMDUMP_LISTEN,
  resolveDeno,
  type RunContext,
  type Scenario,
  withListen,
} from "./scenarios.ts";
import type { WrkResult } from "./wrk.ts";

/** Marker line printed by ws_load.ts. */
export const WS_RESULT_MARKER = "WS_RESULT ";
/** Concurrent WebSocket connections. */
export const WS_CONNECTIONS = 32;
/** Size of every message (text). */
export const WS_MESSAGE_BYTES = 64;

/**
 * The sandboxed script of the `mitmdeno-ws-script` scenario: every message, in both directions, gets its
 * first "x" replaced (the load generator checks that each echo came back changed).
 */
export const WS_REWRITE_SCRIPT = `// written by scripts/bench/ws_scenarios.ts
export function websocket_message(flow: any): void {
  const message = flow.websocket.messages.at(-1);
  message.text = message.text.replace("x", "y");
}
`;

let scriptPath: string | null = null;

/** WS_REWRITE_SCRIPT in a temp file (written once per bench run). */
function rewriteScript(): string {
  if (!scriptPath) {
    scriptPath = Deno.makeTempFileSync({ prefix: "mitmdeno-bench-ws-rewrite-", suffix: ".ts" });
    Deno.writeTextFileSync(scriptPath, WS_REWRITE_SCRIPT);
  }
  return scriptPath;
}

/** Run ws_load.ts against the origin of `run`, through its proxy if it has one. */
export async function runWsLoad(
  run: RunContext,
  opts: { durationS: number; connections: number; size: number; expect: "same" | "rewritten" },
): Promise<WrkResult> {
  const args = [
    "run",
    "--allow-all",
    `--lock=${new URL("../../tests/deno.lock", import.meta.url).pathname}`, // npm:ws: a test-only dependency
    new URL("./ws_load.ts", import.meta.url).pathname,
    "--origin",
    `${run.origin.host}:${run.origin.port}`,
    "--connections",
    String(opts.connections),
    "--size",
    String(opts.size),
    "--duration",
    String(opts.durationS),
    "--expect",
    opts.expect,
  ];
  if (run.proxy) args.push("--proxy", `${run.proxy.host}:${run.proxy.port}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr).trim();
  const line = stdout.split("\n").find((l) => l.startsWith(WS_RESULT_MARKER));
  if (!line) throw new Error(`ws_load.ts printed no result: ${stderr.slice(-500)}`);
  const r = JSON.parse(line.slice(WS_RESULT_MARKER.length)) as WrkResult;
  if (r.requests === 0) throw new Error(`no message came back: ${stderr.slice(-500)}`);
  return r;
}

/**
 * A WebSocket echo scenario: `proxy` null for direct; `script`: mitmdeno runs {@linkcode WS_REWRITE_SCRIPT}
 * sandboxed.
 */
export function wsScenario(
  name: string,
  proxy: "mitmdeno" | "mitmdump" | null,
  opts: { script?: boolean; default?: boolean } = {},
): Scenario {
  const via = proxy ? `${proxy}${opts.script ? " -s (a script rewriting every message)" : ""} -> ` : "";
  return {
    name,
    description:
      `WebSocket echo, ${WS_CONNECTIONS} conns x ${WS_MESSAGE_BYTES} B text, msg/s: ws -> ${via}origin`,
    default: opts.default,
    unit: "msg/s",
    unavailable(ctx) {
      if (proxy === null) return undefined;
      const cmd = proxy === "mitmdeno"
        ? resolveDeno(ctx.mitmdenoCmd ?? MITMDENO_CMD)
        : ctx.mitmdumpCmd ?? MITMDUMP_CMD;
      return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not found`;
    },
    proxy: proxy === "mitmdeno"
      ? {
        command: (listen, ctx) =>
          resolveDeno(
            withListen(
              ctx.mitmdenoCmd ?? MITMDENO_CMD,
              listen,
              MITMDENO_LISTEN,
              opts.script ? ["-s", rewriteScript()] : [],
            ),
          ),
        settleChildren: opts.script,
      }
      : proxy === "mitmdump"
      ? {
        command: (listen, ctx) => withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN),
        readyTimeoutS: 60,
      }
      : undefined,
    target: (run) => ({ url: `http://${run.origin.host}:${run.origin.port}/` }),
    measure: (run, _target, durationS) =>
      runWsLoad(run, {
        durationS,
        connections: WS_CONNECTIONS,
        size: WS_MESSAGE_BYTES,
        expect: opts.script ? "rewritten" : "same",
      }),
  };
}
