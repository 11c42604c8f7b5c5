/** Background type-checking of scripts reports errors with file:line. */
import assert from "node:assert/strict";
import { canTypecheck, parseCheckOutput, typecheckScript } from "../../../../lib/addons/script/typecheck.ts";

Deno.test("typecheck: parses deno check output into file:line:col diagnostics", () => {
  const out = [
    "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
    '  const n: number = "x";',
    "        ^",
    "    at file:///tmp/a%20b/s.ts:3:9",
    "",
    "error: Type checking failed.",
  ].join("\n");
  assert.deepEqual(parseCheckOutput(out), [
    { location: "/tmp/a b/s.ts:3:9", message: "TS2322: Type 'string' is not assignable to type 'number'." },
  ]);
});

Deno.test({
  name: "typecheck: a script importing the mitmdeno API is checked against it",
  ignore: !canTypecheck(),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/bad.ts`,
        'import type { HTTPFlow } from "mitmdeno";\nexport function response(flow: HTTPFlow) {\n' +
          '  flow.response!.headers.set("x", flow.response!.statusCode);\n}\n',
      );
      await Deno.writeTextFile(
        `${dir}/good.ts`,
        'import type { HTTPFlow } from "mitmdeno";\nexport function response(flow: HTTPFlow) {\n' +
          '  flow.response!.headers.set("x", String(flow.response!.statusCode));\n}\n',
      );
      const bad = await typecheckScript(`${dir}/bad.ts`, 300_000); // generous: CI machines can be loaded
      assert.equal(bad.length, 1);
      assert.equal(bad[0].location, `${dir}/bad.ts:3:35`);
      assert.match(bad[0].message, /^TS2345: Argument of type 'number'/);
      assert.deepEqual(await typecheckScript(`${dir}/good.ts`, 300_000), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
