import assert from "node:assert/strict";
import {
  Options,
  OptionsError,
  type OptionSpec,
  parseValues,
  typecheck,
} from "../../../lib/addons/options.ts";

const spec = (name: string, type: OptionSpec["type"], def: unknown, choices?: string[]): OptionSpec => ({
  name,
  type,
  default: def,
  help: `help for ${name}`,
  choices,
});

function opts(): Options {
  const o = new Options();
  o.add(spec("flag", "bool", false));
  o.add(spec("name", "str", "def"));
  o.add(spec("count", "int", 3));
  o.add(spec("maybe_str", "optional str", null));
  o.add(spec("maybe_int", "optional int", null));
  o.add(spec("list", "strs", ["x"]));
  o.add(spec("level", "str", "info", ["debug", "info", "warn"]));
  return o;
}

function recording(o: Options) {
  const calls: string[][] = [];
  o.onChange = (u) => {
    calls.push([...u].sort());
  };
  return calls;
}

// ---------------------------------------------------------------- typecheck

Deno.test("typecheck: accepts values of the declared type", () => {
  assert.equal(typecheck(spec("a", "bool", false), true), true);
  assert.equal(typecheck(spec("a", "int", 0), -5), -5);
  assert.equal(typecheck(spec("a", "str", ""), ""), "");
  assert.equal(typecheck(spec("a", "optional str", null), null), null);
  assert.equal(typecheck(spec("a", "optional str", null), "s"), "s");
  assert.equal(typecheck(spec("a", "optional int", null), null), null);
  assert.equal(typecheck(spec("a", "optional int", null), 7), 7);
  assert.deepEqual(typecheck(spec("a", "strs", []), ["a", "b"]), ["a", "b"]);
  assert.equal(typecheck(spec("a", "str", "x", ["x", "y"]), "y"), "y");
});

Deno.test("typecheck: returns a copy of sequences", () => {
  const v = ["a"];
  const out = typecheck(spec("a", "strs", []), v) as string[];
  assert.notEqual(out, v);
  v.push("b");
  assert.deepEqual(out, ["a"]);
});

Deno.test("typecheck: rejects wrong types with an OptionsError naming the option", () => {
  const bad: [OptionSpec, unknown][] = [
    [spec("b", "bool", false), "true"],
    [spec("b", "bool", false), 1],
    [spec("i", "int", 0), 1.5],
    [spec("i", "int", 0), "1"],
    [spec("i", "int", 0), null],
    [spec("i", "int", 0), NaN],
    [spec("s", "str", ""), 5],
    [spec("s", "str", ""), null],
    [spec("os", "optional str", null), 5],
    [spec("os", "optional str", null), undefined],
    [spec("oi", "optional int", null), "5"],
    [spec("l", "strs", []), "a"],
    [spec("l", "strs", []), ["a", 1]],
    [spec("c", "str", "x", ["x", "y"]), "z"],
  ];
  for (const [s, v] of bad) {
    assert.throws(() => typecheck(s, v), (e: unknown) => {
      assert.ok(e instanceof OptionsError);
      assert.match(e.message, new RegExp(`Option "${s.name}": expected`));
      return true;
    }, `${s.name} ${JSON.stringify(v)}`);
  }
});

Deno.test("typecheck: the message describes the expected type", () => {
  assert.throws(() => typecheck(spec("c", "str", "x", ["x", "y"]), "z"), /expected one of x, y, got "z"/);
  assert.throws(() => typecheck(spec("i", "int", 0), "q"), /expected an integer/);
  assert.throws(() => typecheck(spec("b", "bool", false), 0), /expected true or false/);
});

// ---------------------------------------------------------------- parseValues

Deno.test("parseValues: bools accept true/false and treat a bare or empty value as true", () => {
  const b = spec("b", "bool", false);
  assert.equal(parseValues(b, [undefined]), true);
  assert.equal(parseValues(b, [""]), true);
  assert.equal(parseValues(b, ["true"]), true);
  assert.equal(parseValues(b, ["false"]), false);
  assert.throws(() => parseValues(b, ["yes"]), /expected true, false or toggle, got "yes"/);
  assert.throws(() => parseValues(b, ["True"]), OptionsError);
});

Deno.test("parseValues: ints parse decimal numbers, optional ints accept a bare name as null", () => {
  assert.equal(parseValues(spec("i", "int", 0), ["42"]), 42);
  assert.equal(parseValues(spec("i", "int", 0), ["-7"]), -7);
  assert.equal(parseValues(spec("i", "optional int", null), [undefined]), null);
  assert.equal(parseValues(spec("i", "optional int", null), [""]), null);
  assert.equal(parseValues(spec("i", "optional int", null), ["8080"]), 8080);
  assert.throws(() => parseValues(spec("i", "int", 0), [undefined]), /"i" is required/);
  assert.throws(() => parseValues(spec("i", "int", 0), [""]), /"i" is required/);
  for (const bad of ["1.5", "abc", "0x10", "1e3", "12a"]) {
    assert.throws(() => parseValues(spec("i", "int", 0), [bad]), /expected an integer/, bad);
  }
});

Deno.test("parseValues: strings keep the value, a bare optional string is null, a bare str is an error", () => {
  assert.equal(parseValues(spec("s", "str", ""), ["a=b=c"]), "a=b=c");
  assert.equal(parseValues(spec("s", "str", "x"), [""]), "");
  assert.equal(parseValues(spec("s", "optional str", null), [undefined]), null);
  assert.equal(parseValues(spec("s", "optional str", null), [""]), "");
  assert.throws(() => parseValues(spec("s", "str", ""), [undefined]), /"s" is required/);
});

Deno.test("parseValues: choices are enforced", () => {
  const c = spec("c", "str", "a", ["a", "b"]);
  assert.equal(parseValues(c, ["b"]), "b");
  assert.throws(() => parseValues(c, ["z"]), /"z" is not allowed, expected one of a, b/);
});

Deno.test("parseValues: sequences collect every value and a bare name gives an empty list", () => {
  const l = spec("l", "strs", []);
  assert.deepEqual(parseValues(l, ["a", "b", "a"]), ["a", "b", "a"]);
  assert.deepEqual(parseValues(l, [undefined]), []);
  assert.deepEqual(parseValues(l, ["a", undefined]), ["a"]);
});

Deno.test("parseValues: several values for a non-sequence option are an error", () => {
  for (const s of [spec("b", "bool", false), spec("i", "int", 0), spec("s", "str", "")]) {
    assert.throws(() => parseValues(s, ["1", "2"]), /received multiple values/, s.type);
  }
});

// ---------------------------------------------------------------- Options.add

Deno.test("Options.add: declares an option readable as a property, with get/default/spec/has", () => {
  const o = opts();
  assert.equal(o.flag, false);
  assert.equal(o.count, 3);
  assert.deepEqual(o.list, ["x"]);
  assert.equal(o.get("name"), "def");
  assert.equal(o.default("count"), 3);
  assert.equal(o.spec("count")!.type, "int");
  assert.ok(o.has("flag"));
  assert.ok(!o.has("nope"));
  assert.equal(o.default("nope"), undefined);
  assert.throws(() => o.get("nope"), /Unknown option "nope"/);
});

Deno.test("Options.add: the value of a sequence option is a copy of its default", () => {
  const def = ["a"];
  const o = new Options();
  o.add(spec("l", "strs", def));
  (o.l as string[]).push("mutated");
  assert.deepEqual(def, ["a"]);
});

Deno.test("Options.add: a default of the wrong type is refused", () => {
  const o = new Options();
  assert.throws(() => o.add(spec("bad", "int", "3")), OptionsError);
  assert.ok(!o.has("bad"));
  assert.throws(() => o.add(spec("c", "str", "z", ["a"])), OptionsError);
});

Deno.test("Options.add: re-declaring with the same signature keeps the current value", async () => {
  const o = opts();
  await o.update({ count: 10 });
  o.add(spec("count", "int", 3));
  assert.equal(o.count, 10);
});

Deno.test("Options.add: re-declaring with a different default replaces the option and resets the value", async () => {
  const o = opts();
  await o.update({ count: 10 });
  o.add(spec("count", "int", 5));
  assert.equal(o.count, 5);
  assert.equal(o.default("count"), 5);
});

Deno.test("Options: properties are read-only; assignment explains how to change a value", () => {
  const o = opts();
  assert.throws(() => {
    o.count = 5;
  }, /use options\.update\(\{ count: \.\.\. \}\)/);
  assert.equal(o.count, 3);
});

Deno.test("Options: specs() is sorted by name and toObject() lists every value", () => {
  const o = opts();
  assert.deepEqual(o.specs().map((s) => s.name), [
    "count",
    "flag",
    "level",
    "list",
    "maybe_int",
    "maybe_str",
    "name",
  ]);
  assert.deepEqual(o.toObject(), {
    count: 3,
    flag: false,
    level: "info",
    list: ["x"],
    maybe_int: null,
    maybe_str: null,
    name: "def",
  });
});

// ---------------------------------------------------------------- Options.update

Deno.test("Options.update: sets typed values and notifies once with the updated names", async () => {
  const o = opts();
  const calls = recording(o);
  await o.update({ flag: true, count: 9 });
  assert.equal(o.flag, true);
  assert.equal(o.count, 9);
  assert.deepEqual(calls, [["count", "flag"]]);
});

Deno.test("Options.update: an empty update does not notify", async () => {
  const o = opts();
  const calls = recording(o);
  await o.update({});
  assert.deepEqual(calls, []);
});

Deno.test("Options.update: awaits an async onChange", async () => {
  const o = opts();
  let finished = false;
  o.onChange = async () => {
    await new Promise((r) => setTimeout(r, 5));
    finished = true;
  };
  await o.update({ flag: true });
  assert.ok(finished);
});

Deno.test("Options.update: an unknown name throws and changes nothing", async () => {
  const o = opts();
  const calls = recording(o);
  await assert.rejects(() => o.update({ count: 99, nope: 1 }), /Unknown option "nope"/);
  assert.equal(o.count, 3, "earlier keys of a failed update must not be applied");
  assert.deepEqual(calls, []);
});

Deno.test("Options.update: a wrong type throws and changes nothing", async () => {
  const o = opts();
  const calls = recording(o);
  await assert.rejects(() => o.update({ flag: true, count: "x" }), OptionsError);
  assert.equal(o.flag, false, "earlier keys of a failed update must not be applied");
  assert.deepEqual(calls, []);
});

Deno.test("Options.update: an OptionsError from onChange rolls back every key and re-notifies", async () => {
  const o = opts();
  const seen: { updated: string[]; count: number; name: string }[] = [];
  o.onChange = (u) => {
    seen.push({ updated: [...u].sort(), count: o.count, name: o.name });
    if (o.count === 13) throw new OptionsError("unlucky count");
  };
  await assert.rejects(() => o.update({ count: 13, name: "new" }), (e: unknown) => {
    assert.ok(e instanceof OptionsError);
    assert.equal(e.message, "unlucky count");
    return true;
  });
  assert.equal(o.count, 3);
  assert.equal(o.name, "def");
  assert.deepEqual(seen, [
    { updated: ["count", "name"], count: 13, name: "new" },
    { updated: ["count", "name"], count: 3, name: "def" },
  ]);
});

Deno.test("Options.update: a rollback notification that throws again does not hide the first error", async () => {
  const o = opts();
  let n = 0;
  o.onChange = () => {
    n++;
    throw new OptionsError(`fail ${n}`);
  };
  await assert.rejects(() => o.update({ count: 1 }), /fail 1/);
  assert.equal(o.count, 3);
  assert.equal(n, 2);
});

Deno.test("Options.update: other errors from onChange restore the values and propagate", async () => {
  const o = opts();
  let n = 0;
  o.onChange = () => {
    n++;
    throw new TypeError("boom");
  };
  await assert.rejects(() => o.update({ count: 1 }), TypeError);
  assert.equal(o.count, 3);
  assert.equal(n, 1, "only OptionsError triggers the re-notification");
});

// ---------------------------------------------------------------- Options.set

Deno.test("Options.set: parses name=value strings for every option type", async () => {
  const o = opts();
  const calls = recording(o);
  await o.set(["flag", "name=hello=world", "count=12", "maybe_str=s", "maybe_int=5", "level=debug"]);
  assert.equal(o.flag, true);
  assert.equal(o.name, "hello=world");
  assert.equal(o.count, 12);
  assert.equal(o.maybe_str, "s");
  assert.equal(o.maybe_int, 5);
  assert.equal(o.level, "debug");
  assert.equal(calls.length, 1);
});

Deno.test("Options.set: a bare name unsets optional options and empties sequences", async () => {
  const o = opts();
  await o.update({ maybe_str: "x", maybe_int: 1, list: ["a"] });
  await o.set(["maybe_str", "maybe_int", "list"]);
  assert.equal(o.maybe_str, null);
  assert.equal(o.maybe_int, null);
  assert.deepEqual(o.list, []);
});

Deno.test("Options.set: repeated names build a sequence that replaces the old one", async () => {
  const o = opts();
  await o.set(["list=a", "list=b", "list=a"]);
  assert.deepEqual(o.list, ["a", "b", "a"]);
  await o.set(["list=c"]);
  assert.deepEqual(o.list, ["c"]);
});

Deno.test("Options.set: toggle flips a bool each time", async () => {
  const o = opts();
  await o.set(["flag=toggle"]);
  assert.equal(o.flag, true);
  await o.set(["flag=toggle"]);
  assert.equal(o.flag, false);
  await assert.rejects(() => o.set(["count=toggle"]), /expected an integer/);
});

Deno.test("Options.set: dashes in names map to underscores", async () => {
  const o = opts();
  await o.set(["maybe-int=8"]);
  assert.equal(o.maybe_int, 8);
});

Deno.test("Options.set: a bad value anywhere applies nothing", async () => {
  const o = opts();
  const calls = recording(o);
  await assert.rejects(() => o.set(["flag=true", "count=abc"]), /expected an integer, got "abc"/);
  assert.equal(o.flag, false);
  await assert.rejects(() => o.set(["count=1", "count=2"]), /multiple values/);
  await assert.rejects(() => o.set(["name"]), /"name" is required/);
  await assert.rejects(() => o.set(["level=verbose"]), /not allowed/);
  assert.equal(o.count, 3);
  assert.deepEqual(calls, []);
});

Deno.test("Options.set: unknown names are deferred, or rejected when defer is false", async () => {
  const o = opts();
  await o.set(["later=1", "later=2", "flag"]);
  assert.equal(o.flag, true);
  assert.deepEqual(o.deferredNames, ["later"]);
  await assert.rejects(() => o.set(["other=1"], false), /Unknown option "other"/);
  assert.deepEqual(o.deferredNames, ["later"]);
});

Deno.test("Options.processDeferred: applies deferred values once the option is declared", async () => {
  const o = opts();
  const calls = recording(o);
  await o.set(["hosts=a", "hosts=b", "switch", "still_unknown=x"]);
  await o.processDeferred();
  assert.deepEqual(calls, [], "nothing declared yet");
  o.add(spec("hosts", "strs", []));
  o.add(spec("switch", "bool", false));
  await o.processDeferred();
  assert.deepEqual(o.hosts, ["a", "b"]);
  assert.equal(o.switch, true);
  assert.deepEqual(o.deferredNames, ["still_unknown"]);
  assert.deepEqual(calls, [["hosts", "switch"]]);
  await o.processDeferred();
  assert.equal(calls.length, 1, "deferred values are applied only once");
});

Deno.test("Options.processDeferred: a deferred value of the wrong type raises OptionsError", async () => {
  const o = new Options();
  await o.set(["port=abc"]);
  o.add(spec("port", "int", 1));
  await assert.rejects(() => o.processDeferred(), /Option "port": expected an integer/);
  assert.equal(o.port, 1);
});
