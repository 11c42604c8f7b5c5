import assert from "node:assert/strict";
import { context, tflow } from "../../../testing.ts";
import { example, sandboxed } from "./_sandbox.ts";

Deno.test("add_header: in-process, as an addon author tests it", async () => {
  await using tctx = await context();
  const addon = await tctx.script(example("add_header.ts"));
  const f = tflow({ resp: true });
  await tctx.cycle(addon, f);
  assert.equal(f.response!.headers.get("newheader"), "foo");
});

Deno.test("add_header: sandboxed, as -s runs it", async () => {
  await using tctx = await sandboxed([example("add_header.ts")]);
  const f = tflow({ resp: true });
  await tctx.master.addons.handleLifecycle("response", f);
  assert.equal(f.response!.headers.get("newheader"), "foo");
});
