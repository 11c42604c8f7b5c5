import assert from "node:assert/strict";
import {
  describeError,
  errorLocation,
  levelRank,
  LOG_LEVELS,
  type LogEntry,
  Logger,
} from "../../../lib/addons/log.ts";
import { Response } from "../../../lib/http/message.ts";

const THIS_FILE = new URL(import.meta.url).pathname;

/** The line of the caller of this function. */
function lineHere(): number {
  const frame = new Error().stack!.split("\n")[2];
  return Number(/:(\d+):\d+\)?$/.exec(frame)![1]);
}

Deno.test("LOG_LEVELS: are ordered most severe first and ranked with alert like info", () => {
  assert.deepEqual([...LOG_LEVELS], ["error", "warn", "info", "alert", "debug"]);
  assert.ok(levelRank("error") < levelRank("warn"));
  assert.ok(levelRank("warn") < levelRank("info"));
  assert.equal(levelRank("alert"), levelRank("info"));
  assert.ok(levelRank("info") < levelRank("debug"));
});

Deno.test("Logger: each level method sends an entry with level, message, source and timestamp", () => {
  const got: LogEntry[] = [];
  const log = new Logger((e) => got.push(e), "core");
  const before = Date.now() / 1000;
  log.error("e");
  log.warn("w");
  log.info("i");
  log.alert("a");
  log.debug("d");
  assert.deepEqual(got.map((e) => [e.level, e.msg, e.source]), [
    ["error", "e", "core"],
    ["warn", "w", "core"],
    ["info", "i", "core"],
    ["alert", "a", "core"],
    ["debug", "d", "core"],
  ]);
  assert.ok(got.every((e) => e.timestamp >= before && e.timestamp <= Date.now() / 1000 + 1));
});

Deno.test("Logger: joins several arguments, showing errors by message and objects inspected", () => {
  const got: LogEntry[] = [];
  const log = new Logger((e) => got.push(e));
  log.info("count", 3, { a: 1 }, new Error("bad thing"));
  assert.equal(got[0].msg, "count 3 { a: 1 } bad thing");
  assert.equal(got[0].source, undefined);
});

Deno.test("Logger: child loggers share the sink and tag entries with their source", () => {
  const got: LogEntry[] = [];
  const root = new Logger((e) => got.push(e));
  root.child("script.ts").warn("careful");
  root.info("plain");
  assert.deepEqual(got.map((e) => e.source), ["script.ts", undefined]);
});

Deno.test("errorLocation: points at the file, line and column where an error was thrown", () => {
  let line = 0;
  let err: unknown;
  try {
    line = lineHere() + 1;
    throw new Error("x");
  } catch (e) {
    err = e;
  }
  const loc = errorLocation(err)!;
  assert.ok(loc.startsWith(`${THIS_FILE}:${line}:`), loc);
  assert.ok(!loc.startsWith("file://"));
});

Deno.test("errorLocation: skips mitmdeno's own frames to find the user code that called it", () => {
  const r = new Response({ statusCode: 200, content: "{not json" });
  let line = 0;
  let err: unknown;
  try {
    line = lineHere() + 1;
    r.json();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SyntaxError);
  const loc = errorLocation(err)!;
  assert.ok(loc.startsWith(`${THIS_FILE}:${line}:`), `expected this test file, got ${loc}`);
});

Deno.test("errorLocation: falls back to the first frame when every frame is in the core", () => {
  const e = new Error("x");
  const core = new URL("../../../lib/http/message.ts", import.meta.url).href;
  e.stack = `Error: x\n    at f (${core}:10:5)\n    at g (${core}:20:7)`;
  assert.equal(errorLocation(e), `${new URL(core).pathname}:10:5`);
});

Deno.test("errorLocation: understands remote module URLs and frames without a function name", () => {
  const e = new Error("x");
  e.stack = "Error: x\n    at ext:core/01_core.js:1:1\n    at https://example.com/addon.ts:3:9";
  assert.equal(errorLocation(e), "https://example.com/addon.ts:3:9");
});

Deno.test("errorLocation: is undefined for non-errors and stacks without locations", () => {
  assert.equal(errorLocation("a string"), undefined);
  assert.equal(errorLocation(undefined), undefined);
  const e = new Error("x");
  e.stack = "Error: x\n    at <anonymous>";
  assert.equal(errorLocation(e), undefined);
});

Deno.test("describeError: gives the message, the error class when not plain Error, and the location", () => {
  let line = 0;
  let err: unknown;
  try {
    line = lineHere() + 1;
    throw new TypeError("wrong type");
  } catch (e) {
    err = e;
  }
  const d = describeError(err);
  assert.match(d, /^TypeError: wrong type \(at .+:\d+:\d+\)$/);
  assert.ok(d.includes(`log_test.ts:${line}:`), d);
  const plain = new Error("plain");
  plain.stack = "Error: plain";
  assert.equal(describeError(plain), "plain");
  assert.equal(describeError("just a string"), "just a string");
  assert.equal(describeError(42), "42");
});
