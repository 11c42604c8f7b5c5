/** The coarse timer: deadlines fire once after their time, cancelled ones never; the interval stops when idle. */
import assert from "node:assert/strict";
import { type Deadline, TICK_MS, Timers } from "../../../lib/proxy/timers.ts";
import { RequestWakeup } from "../../../lib/proxy/commands.ts";
import { sleep, until } from "./io_utils.ts";

Deno.test("Timers: deadlines fire once, after their time (within a tick or so); deleted and cancelled ones never", async () => {
  const timers = new Timers();
  const t0 = Date.now();
  const fired: string[] = [];
  const at = (name: string, ms: number): Deadline => ({ at: t0 + ms, fire: () => void fired.push(name) });
  const soon = at("soon", 50);
  const later = at("later", 400);
  const deleted = at("deleted", 50);
  const cancelled = at("cancelled", 50);
  for (const d of [later, soon, deleted, cancelled]) timers.add(d);
  timers.delete(deleted);
  cancelled.cancelled = true;
  await until(() => fired.includes("soon"), "the first deadline", 2000);
  const first = Date.now() - t0;
  assert.ok(first >= 50 && first < 50 + TICK_MS + 200, `fired after ${first} ms`);
  await until(() => fired.includes("later"), "the second deadline", 2000);
  assert.ok(Date.now() - t0 >= 400);
  assert.deepEqual(fired, ["soon", "later"]);
  // idle: the interval stops at the next tick (the op sanitizer fails the test if a timer is left)
  await sleep(TICK_MS + 100);
});

Deno.test("Timers.wakeup: runs onWake once; a cancel removes it at once; a cancelled wakeup is not scheduled", async () => {
  const timers = new Timers();
  let woke = 0;
  const w = new RequestWakeup(30, () => woke++);
  timers.wakeup(w);
  assert.ok(w.onCancel, "cancellable");
  await until(() => woke === 1, "the wakeup", 2000);
  assert.equal(w.onCancel, null, "forgotten once fired");
  w.cancel();
  let other = 0;
  const c = new RequestWakeup(30, () => other++);
  timers.wakeup(c);
  c.cancel();
  const pre = new RequestWakeup(10, () => other++);
  pre.cancel();
  timers.wakeup(pre);
  assert.equal(pre.onCancel, null);
  await sleep(TICK_MS * 2 + 50);
  assert.equal(other, 0);
  assert.equal(woke, 1);
});

Deno.test("Timers.wakeup: a wakeup is in its group until it fires or is cancelled", async () => {
  const timers = new Timers();
  const group = new Set<Deadline>();
  let woke = 0;
  const fires = new RequestWakeup(30, () => woke++);
  const cancelled = new RequestWakeup(30, () => woke++);
  timers.wakeup(fires, group);
  timers.wakeup(cancelled, group);
  assert.equal(group.size, 2);
  assert.equal(timers.size, 2);
  cancelled.cancel();
  assert.equal(group.size, 1);
  assert.equal(timers.size, 1);
  await until(() => woke === 1, "the wakeup", 2000);
  assert.equal(group.size, 0);
  assert.equal(timers.size, 0);
  await sleep(TICK_MS + 100); // the interval stops
});
