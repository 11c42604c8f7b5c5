/**
 * The outer shell of a script worker: a web Worker started by the proxy with the script's Deno
 * permissions, whose only job is to start the script's real worker, a `node:worker_threads` Worker, and
 * report how it ended. Two reasons for the two layers (both measured in Deno 2.9.6):
 *
 * - Heap limits: only `node:worker_threads` Workers take `resourceLimits`; one that reaches its limit is
 *   terminated ("ERR_WORKER_OUT_OF_MEMORY") and the process lives on, while any isolate that reaches its
 *   heap limit without one aborts the whole process ("Fatal JavaScript out of memory").
 * - Permissions: only web Workers take Deno permissions; a node Worker inherits its parent's. Started from
 *   here, the script's worker has exactly the script's permissions, and every module it loads, static
 *   imports included, is checked against them.
 *
 * The script's worker talks to the proxy over a MessagePort the proxy created (this shell relays nothing),
 * and shares the proxy's message ring and heartbeat buffers. Terminating this shell ends the script's
 * worker too, even in the middle of a busy loop, because the worker holds a Web Lock (see worker.ts).
 */
/// <reference lib="deno.worker" />
import { Worker as NodeWorker } from "node:worker_threads";
import type { SandboxEvent, SandboxInit } from "./protocol.ts";

self.onmessage = (e: MessageEvent<SandboxInit>) => {
  self.onmessage = null;
  const init = e.data;
  const report = (m: SandboxEvent) => self.postMessage(m);
  let inner: NodeWorker;
  try {
    inner = new NodeWorker(new URL(init.entry), {
      name: init.name,
      workerData: init.data,
      transferList: [init.data.port as unknown as import("node:worker_threads").TransferListItem],
      resourceLimits: { maxOldGenerationSizeMb: init.heapMb },
      // the script's own output goes to its log (confine.ts); nothing to pipe here
      stdout: true,
      stderr: true,
    });
  } catch (err) {
    report({ t: "exit", oom: false, message: `could not start the script worker: ${String(err)}` });
    return;
  }
  let ended = false;
  inner.on("error", (err: Error & { code?: string }) => {
    if (ended) return;
    ended = true;
    const oom = err?.code === "ERR_WORKER_OUT_OF_MEMORY";
    report({ t: "exit", oom, message: oom ? "ran out of memory" : String(err?.message ?? err) });
  });
  inner.on("exit", (code: number) => {
    if (ended) return;
    ended = true;
    report({ t: "exit", oom: false, message: `the script worker exited (code ${code})` });
  });
  // messages the script posts to its parent are not read: drain them so they cannot pile up here
  inner.on("message", () => {});
  inner.stdout?.resume();
  inner.stderr?.resume();
};
