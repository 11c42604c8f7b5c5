import assert from "node:assert/strict";
import {
  describePermissions,
  parseAllowSpec,
  parseScriptSpec,
  permissionsFor,
  shellSplit,
} from "../../../../lib/addons/script/spec.ts";
import { OptionsError } from "../../../../lib/addons/options.ts";

Deno.test("shellSplit: quotes and escapes like a shell", () => {
  assert.deepEqual(shellSplit(`a.ts html "fake html" 'x y' b\\ c`), [
    "a.ts",
    "html",
    "fake html",
    "x y",
    "b c",
  ]);
  assert.deepEqual(shellSplit(`a.ts ""`), ["a.ts", ""]);
  assert.throws(() => shellSplit(`a.ts "open`), OptionsError);
});

Deno.test("parseScriptSpec: path resolved against cwd, args kept", () => {
  const s = parseScriptSpec("  ./x/../s.ts html fakehtml ", "/work");
  assert.equal(s.path, "/work/s.ts");
  assert.deepEqual(s.args, ["html", "fakehtml"]);
  assert.equal(s.spec, "./x/../s.ts html fakehtml");
});

Deno.test("parseAllowSpec: lists, bare names, script prefix, paths", () => {
  const a = parseAllowSpec("net=127.0.0.1:8000,api.example.com:443,read=./data,env", "/cwd");
  assert.equal(a.script, null);
  assert.deepEqual(a.grants, {
    net: ["127.0.0.1:8000", "api.example.com:443"],
    read: ["/cwd/data"],
    env: true,
  });
  const b = parseAllowSpec("counter.ts:net=127.0.0.1:8000", "/cwd");
  assert.equal(b.script, "counter.ts");
  assert.deepEqual(b.grants, { net: ["127.0.0.1:8000"] });
  assert.equal(parseAllowSpec("all").all, true);
  assert.throws(() => parseAllowSpec("bogus=1"), /unknown permission "bogus"/);
  assert.throws(() => parseAllowSpec("x.ts:"), /no permission/);
});

Deno.test("permissionsFor: none by default, every key explicit, grants merged per script", () => {
  const allows = [parseAllowSpec("net=a:1", "/c"), parseAllowSpec("s.ts:net=b:2,read=/d", "/c")];
  const none = permissionsFor("/c/other.ts", []);
  assert.notEqual(none, "inherit");
  assert.ok(Object.values(none).every((v) => v === false), "never {} (that inherits)");
  const p = permissionsFor("/c/s.ts", allows, "/c");
  assert.deepEqual((p as Record<string, unknown>).net, ["a:1", "b:2"]);
  assert.equal(describePermissions(p), "net=a:1,b:2 read=/d");
  assert.deepEqual((permissionsFor("/c/t.ts", allows, "/c") as Record<string, unknown>).read, false);
  assert.equal(permissionsFor("/c/s.ts", [parseAllowSpec("s.ts:all")], "/c"), "inherit");
});
