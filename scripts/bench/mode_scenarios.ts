/**
 * Proxy mode scenarios: keep-alive plain HTTP (the origin's 1 KiB) through mitmdeno and mitmdump in the
 * same mode, in the same run.
 *
 * - upstream: wrk -> proxy in `upstream:` mode -> an upstream "proxy" -> origin. The upstream is a TCP relay
 *   to the origin in the bench process (plain HTTP goes to an upstream proxy in absolute form, which the
 *   origin accepts), so it costs both proxies the same and never is the bottleneck.
 * - socks5: socks_load.ts (its own process: SOCKS5 handshake once per connection, then back-to-back GETs)
 *   -> proxy in `socks5` mode -> origin.
 * @module
 */
import { findExecutable } from "./process.ts";
import type { Address, RunContext, Scenario } from "./scenarios.ts";
import {
  MITMDENO_CMD,
  MITMDENO_LISTEN,
  MITMDUMP_CMD,
  MITMDUMP_LISTEN,
  resolveDeno,
  viaProxy,
  withListen,
} from "./scenarios.ts";
import type { WrkResult } from "./wrk.ts";

/** Marker line printed by socks_load.ts. */
export const SOCKS_RESULT_MARKER = "SOCKS_RESULT ";

/** A TCP relay to `to`, listening on loopback (its port is known at once: Deno.listen is synchronous). */
export function startRelay(to: Address): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of listener) {
      conns.add(c);
      Deno.connect({ hostname: to.host, port: to.port }).then((up) => {
        conns.add(up);
        const done = () => {
          for (const x of [c, up]) {
            conns.delete(x);
            try {
              x.close();
            } catch { /* closed */ }
          }
        };
        Promise.allSettled([c.readable.pipeTo(up.writable), up.readable.pipeTo(c.writable)]).then(done);
      }, () => {
        conns.delete(c);
        c.close();
      });
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

let relay: { port: number; origin: string } | null = null;

/** The relay for this run's origin (one per bench run; it dies with the bench process). */
function relayFor(origin: Address): number {
  const key = `${origin.host}:${origin.port}`;
  if (!relay || relay.origin !== key) relay = { port: startRelay(origin).port, origin: key };
  return relay.port;
}

function unavailable(proxy: "mitmdeno" | "mitmdump") {
  return (ctx: RunContext | Parameters<NonNullable<Scenario["unavailable"]>>[0]) => {
    const cmd = proxy === "mitmdeno"
      ? resolveDeno(ctx.mitmdenoCmd ?? MITMDENO_CMD)
      : ctx.mitmdumpCmd ?? MITMDUMP_CMD;
    return findExecutable(cmd[0]) ? undefined : `${cmd[0]} not found`;
  };
}

/** `proxy` in upstream mode, chained to a relay to the origin; wrk sends absolute-form requests. */
export function upstreamScenario(name: string, proxy: "mitmdeno" | "mitmdump"): Scenario {
  return {
    name,
    description: `wrk -> ${proxy} --mode upstream -> relay -> origin (keep-alive)`,
    unavailable: unavailable(proxy),
    proxy: proxy === "mitmdeno"
      ? {
        command: (listen, ctx) =>
          resolveDeno(withListen(ctx.mitmdenoCmd ?? MITMDENO_CMD, listen, MITMDENO_LISTEN, [
            "--mode",
            `upstream:http://127.0.0.1:${relayFor(ctx.origin)}`,
          ])),
      }
      : {
        command: (listen, ctx) =>
          withListen(ctx.mitmdumpCmd ?? MITMDUMP_CMD, listen, MITMDUMP_LISTEN, [
            "--mode",
            `upstream:http://127.0.0.1:${relayFor(ctx.origin)}`,
          ]),
        readyTimeoutS: 60,
      },
    target: (run) => viaProxy(run.proxy!, run.origin),
  };
}

async function runSocksLoad(run: RunContext, durationS: number): Promise<WrkResult> {
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
    description: `SOCKS5 keep-alive GETs -> ${proxy} --mode socks5 -> origin`,
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
