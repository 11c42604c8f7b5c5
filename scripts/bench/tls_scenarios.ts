/**
 * HTTPS benchmark scenarios: fresh CONNECT + TLS + GET connections per second, and keep-alive HTTPS
 * requests per second, through mitmdeno and mitmdump in the same run. Both proxies get their own
 * throwaway conf dir (so the client can trust their CA) and do not verify the origin (`-k` /
 * `--ssl-insecure`: the origin uses a throwaway CA). The HTTPS origin (`tls_origin.ts`) and the load
 * generator (`tls_load.ts`) run in their own processes.
 * @module
 */
import { findExecutable, spawnManaged } from "./process.ts";
import type { RunContext, Scenario } from "./scenarios.ts";
import {
  MITMDENO_CMD,
  MITMDENO_LISTEN,
  MITMDUMP_CMD,
  MITMDUMP_LISTEN,
  resolveDeno,
  withListen,
} from "./scenarios.ts";
import type { WrkResult } from "./wrk.ts";

/** Marker line printed by tls_load.ts. */
export const TLS_RESULT_MARKER = "TLS_RESULT ";

let originPromise: Promise<{ port: number; caFile: string }> | null = null;
let tmpRoot: string | null = null;

function tmp(): string {
  tmpRoot ??= Deno.makeTempDirSync({ prefix: "mitmdeno-bench-tls-" });
  return tmpRoot;
}

/** Start the HTTPS origin once per bench run (stopped by the runner's stopAll). */
function httpsOrigin(ctx: RunContext): Promise<{ port: number; caFile: string }> {
  originPromise ??= (async () => {
    const proc = spawnManaged([
      Deno.execPath(),
      "run",
      "--allow-all",
      new URL("./tls_origin.ts", import.meta.url).pathname,
      "--dir",
      `${tmp()}/origin`,
      "--size",
      "1024",
    ], { name: "https-origin", cwd: ctx.repoRoot });
    const m = await proc.waitForLine(/^LISTENING (\d+) (.+)$/, 30_000);
    return { port: Number(m[1]), caFile: m[2] };
  })();
  return originPromise;
}

/** Run tls_load.ts against the proxy of `run`. */
async function runLoad(
  run: RunContext,
  caFile: string,
  mode: "fresh" | "keepalive",
  concurrency: number,
  durationS: number,
): Promise<WrkResult> {
  const origin = await httpsOrigin(run);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("./tls_load.ts", import.meta.url).pathname,
      "--proxy",
      `${run.proxy!.host}:${run.proxy!.port}`,
      "--target",
      `localhost:${origin.port}`,
      "--ca",
      caFile,
      "--mode",
      mode,
      "--concurrency",
      String(concurrency),
      "--duration",
      String(durationS),
    ],
    cwd: run.repoRoot,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith(TLS_RESULT_MARKER));
  if (!line) {
    throw new Error(`tls_load.ts printed no result: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
  }
  const r = JSON.parse(line.slice(TLS_RESULT_MARKER.length)) as WrkResult;
  const err = new TextDecoder().decode(out.stderr).trim();
  if (err && r.requests === 0) throw new Error(err.slice(-500));
  return r;
}

/** An HTTPS scenario for `proxy` ("mitmdeno" or "mitmdump") in `mode`. */
export function tlsScenario(
  name: string,
  proxy: "mitmdeno" | "mitmdump",
  mode: "fresh" | "keepalive",
  opts: { default?: boolean; extraArgs?: string[] } = {},
): Scenario {
  const confdir = () => `${tmp()}/${name}`;
  const caFile = () => `${confdir()}/${proxy === "mitmdeno" ? "mitmdeno" : "mitmproxy"}-ca-cert.pem`;
  return {
    name,
    description: mode === "fresh"
      ? `fresh CONNECT+TLS+GET connections/s -> ${proxy} -> https origin (8 in flight)`
      : `keep-alive HTTPS requests/s -> ${proxy} -> https origin`,
    default: opts.default,
    unavailable(ctx) {
      const cmd = proxy === "mitmdeno"
        ? resolveDeno(ctx.mitmdenoCmd ?? MITMDENO_CMD)
        : ctx.mitmdumpCmd ?? MITMDUMP_CMD;
      return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not found`;
    },
    proxy: proxy === "mitmdeno"
      ? {
        command: (listen, ctx) =>
          resolveDeno(withListen(ctx.mitmdenoCmd ?? MITMDENO_CMD, listen, MITMDENO_LISTEN, [
            "--set",
            `confdir=${confdir()}`,
            "-k",
            ...(opts.extraArgs ?? []),
          ])),
      }
      : {
        command: (listen, ctx) =>
          withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN, [
            "--set",
            `confdir=${confdir()}`,
            "--ssl-insecure",
            ...(opts.extraArgs ?? []),
          ]),
        readyTimeoutS: 60,
      },
    target: (run) => ({ url: `http://${run.proxy!.host}:${run.proxy!.port}/` }),
    measure: (run, _target, durationS) =>
      runLoad(run, caFile(), mode, mode === "fresh" ? 8 : run.load.connections, durationS),
  };
}
