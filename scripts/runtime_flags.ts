/**
 * The Deno flags mitmdeno runs with, in one place: `deno task compile`, the benchmark and the end-to-end
 * tests take them from here; `deno task start` in deno.json spells them out (a test checks it matches).
 *
 * - `--unstable-worker-options`: each script worker gets its own Deno permissions.
 * - `--v8-flags=--max-semi-space-size=4`: under load V8 grows each isolate's young generation to 2 x 16 MiB
 *   semi-spaces; capped at 4 MiB, the proxy's RSS under `deno task bench` load stays at ~91 MiB instead of
 *   ~137 (~152 instead of ~230 with a script worker), at the same throughput (scavenges are cheap here: a
 *   few hundred µs each, a few dozen a second). Measured with 30 s wrk runs, 2026-12-01.
 * - `--expose-gc`: a streamed body asks for a young-generation collection every few MiB
 *   (lib/http1/body.ts): every chunk a socket delivers is a fresh ArrayBuffer, and V8 frees the garbage
 *   ones only when a collection runs, which it schedules by JS heap use, not by their size. Streaming 1 GiB
 *   through CONNECT+TLS: peak RSS 214 -> ~102 MiB, and faster (1.95 -> 1.43 s, less malloc churn).
 * - `--no-concurrent-array-buffer-sweeping`: V8 frees dead ArrayBuffers' memory on the main thread at the
 *   collection instead of in a background task. With three busy processes on two cores the task lags: a
 *   1 GiB download through CONNECT+TLS held ~20-35 MiB of dead 64 KiB chunks (seen as glibc's `[heap]`, or
 *   as anonymous mmaps with `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768`) waiting to be freed.
 *   Three alternating A/B runs (`deno task bench --only mitmdeno,mitmdeno-https-ka,mitmdeno-addon,
 *   stream-direct-tls,stream-mitmdeno-tls --proxy-cmd ...`, 2026-12-06): streamed TLS peak 98-102 MiB vs
 *   116-123, keep-alive, HTTPS keep-alive and script req/s within the runs' noise (medians 18.9k vs 18.6k,
 *   10.1k vs 11.1k, 11.5k vs 11.0k). `v8.setFlagsFromString` at run time does not change it: it must be
 *   given at start-up.
 */
export const RUNTIME_FLAGS: readonly string[] = [
  "--unstable-worker-options",
  "--v8-flags=--max-semi-space-size=4,--expose-gc,--no-concurrent-array-buffer-sweeping",
];
