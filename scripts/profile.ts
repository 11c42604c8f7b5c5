/**
 * CPU profile of the proxy under load, for finding hot spots: runs mitmdeno in this process with V8's
 * sampling profiler on (node:inspector), for `--seconds` after a warm-up, while the caller puts load on it
 * (e.g. wrk through `--listen-port`), then prints the functions with the most self time.
 *
 * Usage: `deno run -A --v8-flags=--max-semi-space-size=4,--expose-gc,--no-concurrent-array-buffer-sweeping scripts/profile.ts --seconds 10 -- [mitmdeno args]`
 * @module
 */
import { Session } from "node:inspector";
import { main } from "../lib/cli.ts";

const sep = Deno.args.indexOf("--");
const own = sep === -1 ? Deno.args : Deno.args.slice(0, sep);
const rest = sep === -1 ? [] : Deno.args.slice(sep + 1);
const secIdx = own.indexOf("--seconds");
const seconds = secIdx === -1 ? 10 : Number(own[secIdx + 1]);
const warmIdx = own.indexOf("--warmup");
const warmup = warmIdx === -1 ? 3 : Number(own[warmIdx + 1]);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const session = new Session();
session.connect();
const post = (method: string, params?: object) =>
  new Promise<unknown>((res, rej) => session.post(method, params ?? {}, (e, r) => (e ? rej(e) : res(r))));

setTimeout(async () => {
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 100 });
  await post("Profiler.start");
  setTimeout(async () => {
    const { profile } = await post("Profiler.stop") as { profile: Profile };
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let total = 0;
    for (const id of profile.samples) {
      const n = byId.get(id)!;
      const f = n.callFrame;
      const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\/(lib|addons|ext)\//, "$1/")}:${
        f.lineNumber + 1
      }`;
      self.set(key, (self.get(key) ?? 0) + 1);
      total++;
    }
    // self time by where the code lives
    const groups = new Map<string, number>();
    for (const [k, v] of self) {
      const g = /(^|\s)(lib|addons)\//.test(k)
        ? "mitmdeno"
        : /ext:|node:/.test(k)
        ? "runtime JS"
        : k.split(" ")[0];
      groups.set(g, (groups.get(g) ?? 0) + v);
    }
    for (const [g, v] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
      console.log(`[${g}] ${(100 * v / total).toFixed(1)}%`);
    }
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 45);
    for (const [k, v] of top) console.log(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
    Deno.exit(0);
  }, seconds * 1000);
}, warmup * 1000);

await main(rest);
