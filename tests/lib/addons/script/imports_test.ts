import assert from "node:assert/strict";
import { localImports, moduleGraph } from "../../../../lib/addons/script/imports.ts";

Deno.test("localImports: static, export-from, side effect, dynamic; not bare or remote", () => {
  const src = `
import { a } from "./a.ts";
import type { T } from '../t.ts';
export { b } from "./sub/b.ts";
import "./side.ts";
const m = await import("./dyn.ts");
import { ctx } from "mitmdeno";
import x from "npm:yaml";
// import { no } from "./commented.ts";
`;
  assert.deepEqual(localImports(src, "/p/s/script.ts").sort(), [
    "/p/s/a.ts",
    "/p/s/dyn.ts",
    "/p/s/side.ts",
    "/p/s/sub/b.ts",
    "/p/t.ts",
  ]);
});

Deno.test("moduleGraph: follows local imports transitively", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.ts`, `import { a } from "./a.ts";\nexport const x = a;`);
    await Deno.writeTextFile(`${dir}/a.ts`, `export { b as a } from "./lib/b.ts";`);
    await Deno.mkdir(`${dir}/lib`);
    await Deno.writeTextFile(`${dir}/lib/b.ts`, `import "./a.ts"; export const b = 1;`);
    await Deno.writeTextFile(`${dir}/lib/a.ts`, ``);
    const g = await moduleGraph(`${dir}/s.ts`);
    assert.deepEqual(g.sort(), [`${dir}/a.ts`, `${dir}/lib/a.ts`, `${dir}/lib/b.ts`, `${dir}/s.ts`].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
