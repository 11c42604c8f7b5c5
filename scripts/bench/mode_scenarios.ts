/**
 * Proxy mode scenarios: keep-alive plain HTTP (the origin's 1 KiB) through mitmdeno and mitmdump in the
 * same mode, in the same run.
 *
 * - upstream: wrk -> proxy in `upstream:` mode -> the origin as the upstream "proxy": plain HTTP goes to an
 *   upstream proxy in absolute form, which the origin answers like any request. No relay in between: on two
 *   cores a relay process takes CPU from the proxy under test (an earlier relay in the bench process, on
 *   Deno streams, capped mitmdeno and squeezed the ratio to mitmdump).
 * - socks5: wrk under proxychains4 (Debian's proxychains4: its connect() does the SOCKS5 handshake, then wrk
 *   sends keep-alive GETs at C speed) -> proxy in `socks5` mode -> origin. Without proxychains4: socks_load.ts
 *   (a Deno load generator in its own process; it costs more CPU, which the proxy then lacks on two cores).
 * @module
 */
import { findExecutable } from "./process.ts";
import type { RunContext, Scenario } from "./scenarios.ts";
import {
  MITMDENO_CMD,
  MITMDENO_LISTEN,
  MITMDUMP_CMD,
  MITMDUMP_LISTEN,
  resolveDeno,
  viaProxy,
  withListen,
} from "./scenarios.ts";
import { findWrk, runWrk, type WrkResult } from "./wrk.ts";

/** Marker line printed by socks_load.ts. */
export const SOCKS_RESULT_MARKER = "SOCKS_RESULT ";

function unavailable(proxy: "mitmdeno" | "mitmdump") {
  return (ctx: RunContext | Parameters<NonNullable<Scenario["unavailable"]>>[0]) => {
    const cmd = proxy === "mitmdeno"
      ? resolveDeno(ctx.mitmdenoCmd ?? MITMDENO_CMD)
      : ctx.mitmdumpCmd ?? MITMDUMP_CMD;
    return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not found`;
  };
}

/** `proxy` in upstream mode with the origin as its upstream; wrk sends absolute-form requests. */
export function upstreamScenario(name: string, proxy: "mitmdeno" | "mitmdump"): Scenario {
  return {
    name,
    description: `wrk -> ${proxy} --mode upstream -> origin as the upstream proxy (keep-alive)`,
    unavailable: unavailable(proxy),
    proxy: proxy === "mitmdeno"
      ? {
        command: (listen, ctx) =>
          resolveDeno(withListen(ctx.mitmdenoCmd ?? MITMDENO_CMD, listen, MITMDENO_LISTEN, [
            "--mode",
            `upstream:http://${ctx.origin.host}:${ctx.origin.port}`,
          ])),
      }
      : {
        command: (listen, ctx) =>
          withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN, [
            "--mode",
            `upstream:http://${ctx.origin.host}:${ctx.origin.port}`,
          ]),
        readyTimeoutS: 60,
      },
    target: (run) => viaProxy(run.proxy!, run.origin),
  };
}

/** wrk through the SOCKS5 proxy of `run` with proxychains4 (a config file made for the run). */
async function runSocksWrk(run: RunContext, durationS: number, proxychains: string): Promise<WrkResult> {
  const conf = await Deno.makeTempFile({ prefix: "mitmdeno-bench-proxychains-", suffix: ".conf" });
  try {
    await Deno.writeTextFile(
      conf,
      `strict_chain\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\n` +
        `socks5 ${run.proxy!.host} ${run.proxy!.port}\n`,
    );
    const { stdout: _stdout, ...result } = await runWrk(
      { url: `http://${run.origin.host}:${run.origin.port}/` },
      { ...run.load, durationS },
      { prefix: [proxychains, "-q", "-f", conf] },
    );
    return result;
  } finally {
    await Deno.remove(conf).catch(() => {});
  }
}

async function runSocksLoad(run: RunContext, durationS: number): Promise<WrkResult> {
  const proxychains = findExecutable("proxychains4");
  if (proxychains && findWrk()) return await runSocksWrk(run, durationS, proxychains);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("./socks_load.ts", import.meta.url).pathname,
      "--proxy",
      `${run.proxy!.host}:${run.proxy!.port}`,
      "--target",
      `${run.origin.host}:${run.origin.port}`,
      "--concurrency",
      String(run.load.connections),
      "--duration",
      String(durationS),
    ],
    cwd: run.repoRoot,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const err = new TextDecoder().decode(out.stderr).trim();
  const line = stdout.split("\n").find((l) => l.startsWith(SOCKS_RESULT_MARKER));
  if (!line) throw new Error(`socks_load.ts printed no result: ${err.slice(-500)}`);
  const r = JSON.parse(line.slice(SOCKS_RESULT_MARKER.length)) as WrkResult;
  if (err && r.requests === 0) throw new Error(err.slice(-500));
  return r;
}

/** `proxy` in socks5 mode, loaded by socks_load.ts. */
export function socks5Scenario(name: string, proxy: "mitmdeno" | "mitmdump"): Scenario {
  return {
    name,
    description:
      `SOCKS5 keep-alive GETs (wrk under proxychains4, else socks_load.ts) -> ${proxy} --mode socks5 -> origin`,
    unavailable: unavailable(proxy),
    proxy: proxy === "mitmdeno"
      ? {
        command: (listen, ctx) =>
          resolveDeno(
            withListen(ctx.mitmdenoCmd ?? MITMDENO_CMD, listen, MITMDENO_LISTEN, ["--mode", "socks5"]),
          ),
      }
      : {
        command: (listen, ctx) =>
          withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN, ["--mode", "socks5"]),
        readyTimeoutS: 60,
      },
    target: (run) => ({ url: `http://${run.proxy!.host}:${run.proxy!.port}/` }),
    measure: (run, _target, durationS) => runSocksLoad(run, durationS),
  };
}
