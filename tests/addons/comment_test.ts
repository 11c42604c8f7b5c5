import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import type { Flow } from "mitmdeno";
import { Comment } from "../../addons/comment.ts";

Deno.test("comment: flow.comment sets comments and fires update", async () => {
  const updates: Flow[][] = [];
  const watcher = { name: "watcher", update: (flows: Flow[]) => void updates.push(flows) };
  await using tctx = await context(new Comment(), watcher);
  const a = tflow();
  const b = tflow();
  await tctx.command("flow.comment", [a, b], "hello");
  assert.equal(a.comment, "hello");
  assert.equal(b.comment, "hello");
  await tctx.command("flow.comment", a, "single");
  assert.equal(a.comment, "single");
  assert.equal(updates.length, 2);
  assert.deepEqual(updates[0], [a, b]);
});
