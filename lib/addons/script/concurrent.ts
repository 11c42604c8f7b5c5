/**
 * `concurrent`: mitmproxy's `@concurrent` decorator, kept so scripts port directly.
 *
 * In mitmproxy a script runs on the proxy's single event loop, so a slow *synchronous* hook blocks every
 * flow; `@concurrent` moves it to a thread. In mitmdeno every script runs in its own worker and the
 * proxy never waits for a script except on the flow being handled: each hook call is dispatched to the
 * worker as soon as it happens, and async hooks of different flows interleave at their `await`s. So a
 * hook wrapped in `concurrent` does not hold the script's queue: other flows' hooks in the same script run
 * meanwhile, and only its own flow waits for it — which is how every async hook already behaves here.
 * What `concurrent` cannot do is make *synchronous* busy code run in parallel with other hooks of the same
 * script (JavaScript has no shared-memory threads for closures): write slow handlers as `async` and
 * `await` (timers, fetch, I/O).
 *
 * Like mitmproxy, it refuses `load` and `configure`, and checks the name when the function has one.
 *
 * @example
 * ```ts
 * import { concurrent, type HTTPFlow } from "mitmdeno";
 * export const request = concurrent(async (flow: HTTPFlow) => {
 *   await new Promise((r) => setTimeout(r, 1000)); // only this flow waits
 * });
 * ```
 */
import { EVENTS } from "../manager.ts";

/** Marks a hook as concurrent (see the module docs for what that means in mitmdeno). */
export function concurrent<A extends unknown[], R>(
  fn: (...args: A) => R,
): (...args: A) => Promise<Awaited<R>> {
  const name = fn.name;
  if (name === "load" || name === "configure" || (name && !(EVENTS as readonly string[]).includes(name))) {
    throw new Error(`Concurrent decorator not supported for '${name}' method.`);
  }
  const wrapped = async function (this: unknown, ...args: A): Promise<Awaited<R>> {
    return await fn.apply(this, args);
  };
  Object.defineProperty(wrapped, "concurrent", { value: true });
  return wrapped;
}
