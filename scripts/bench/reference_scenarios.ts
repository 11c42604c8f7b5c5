/**
 * Reference scenarios: HAProxy (C, event-driven, one thread like mitmdeno's proxy) in the proxy's seat,
 * as a reverse proxy in HTTP mode in front of the same origins. They are not targets: they show what a
 * production proxy written in C reaches on this machine, where the load generator, the origin and the
 * proxy share the CPUs, so a target above it is a target for the machine, not for mitmdeno.
 *
 * - `haproxy`: wrk -> haproxy -> origin, keep-alive, 1 KiB (compare with `mitmdeno` and `direct`).
 * - `stream-haproxy` / `stream-haproxy-tls`: the 1 GiB download of the stream scenarios through
 *   haproxy; with TLS haproxy terminates the client's TLS and opens its own to the origin, as an
 *   intercepting proxy does (compare with `stream-mitmdeno-tls` and `stream-direct-tls`). No splicing:
 *   haproxy's default HTTP mode copies the body through user space, as any proxy that sees it must.
 *
 * Skipped when `haproxy` is not installed (Debian: `apt-get install haproxy`).
 * @module
 */
import { findExecutable, freePort, spawnManaged, waitForPort } from "./process.ts";
import { type RunContext, type Scenario, urlOf } from "./scenarios.ts";
import { download, STREAM_BYTES, streamOrigin } from "./stream_scenarios.ts";
import { loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";

const HOST = "127.0.0.1";

/** A haproxy configuration: one HTTP-mode frontend on `listen` to `server`, one thread. */
function config(listen: string, server: string, tls: { cert: string } | null): string {
  return [
    "global",
    "  nbthread 1",
    "  maxconn 1000",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    "  timeout client 300s",
    "  timeout server 300s",
    "  option http-keep-alive",
    "frontend f",
    `  bind ${listen}${tls ? ` ssl crt ${tls.cert}` : ""}`,
    "  default_backend b",
    "backend b",
    "  http-reuse always",
    `  server origin ${server}${tls ? " ssl verify none" : ""}`,
    "",
  ].join("\n");
}

function unavailable(): string | undefined {
  return findExecutable("haproxy") ? undefined : "haproxy not installed";
}

/** wrk -> haproxy (reverse, HTTP mode) -> the origin, keep-alive. */
export function haproxyScenario(name = "haproxy"): Scenario {
  return {
    name,
    description: "reference: wrk -> haproxy (C, 1 thread, HTTP mode, reverse) -> origin (keep-alive)",
    unavailable,
    proxy: {
      command(listen, ctx) {
        const file = Deno.makeTempFileSync({ prefix: "mitmdeno-bench-haproxy-", suffix: ".cfg" });
        Deno.writeTextFileSync(
          file,
          config(`${listen.host}:${listen.port}`, `${ctx.origin.host}:${ctx.origin.port}`, null),
        );
        return ["haproxy", "-db", "-f", file];
      },
    },
    target: (run) => ({ url: urlOf(run.proxy!), host: `${run.origin.host}:${run.origin.port}` }),
  };
}

/** haproxy's certificate file (chain + key) for `localhost`, signed by the stream origin's CA. */
async function certFile(dir: string): Promise<string> {
  const ca = await loadOrCreateCA(dir, { basename: "streamorigin" });
  const leaf = new CertStore(ca, { secureContext: false }).getCert({
    commonName: "localhost",
    sans: ["localhost", "127.0.0.1"],
  });
  const file = `${dir}/haproxy-localhost.pem`;
  await Deno.writeTextFile(file, leaf.chainPem + leaf.keyPem);
  return file;
}

/** The stream download through haproxy (started per measurement, after the stream origin). */
export function haproxyStreamScenario(name: string, tls: boolean): Scenario {
  return {
    name,
    description: `reference: 1 GiB ${
      tls ? "HTTPS (TLS on both sides)" : "plain HTTP"
    } download, MB/s -> haproxy`,
    unit: "MB/s",
    unavailable,
    target: () => ({ url: "http://127.0.0.1/" }),
    async measure(run: RunContext, _target, _durationS, phase) {
      const o = await streamOrigin(run);
      const port = freePort(HOST);
      const file = `${o.dir}/haproxy-${tls ? "tls" : "plain"}.cfg`;
      const cert = tls ? { cert: await certFile(o.dir) } : null;
      await Deno.writeTextFile(file, config(`${HOST}:${port}`, `${HOST}:${tls ? o.https : o.http}`, cert));
      const proc = spawnManaged(["haproxy", "-db", "-f", file], { name, cwd: run.repoRoot });
      try {
        await waitForPort(HOST, port, 10_000, proc);
        const base = `${tls ? "https://localhost" : `http://${HOST}`}:${port}`;
        return await download(run, tls, phase === "measure" ? STREAM_BYTES : 64 * 1024 * 1024, base);
      } finally {
        await proc.stop();
      }
    },
  };
}
