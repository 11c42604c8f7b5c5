import assert from "node:assert/strict";
import { Server } from "../../../lib/flow/connection.ts";
import { tctx } from "./tutils.ts";

Deno.test("Context.fork: same connections and services, its own copy of the layer names", () => {
  const t = tctx();
  t.ctx.layers.push("RegularMode");
  t.ctx.server = new Server(["example.com", 80]);
  const f = t.ctx.fork();
  assert.equal(f.client, t.client);
  assert.equal(f.server, t.ctx.server);
  assert.equal(f.core, t.ctx.core);
  assert.deepEqual(f.layers, ["RegularMode"]);
  f.layers.push("HttpLayer");
  assert.deepEqual(t.ctx.layers, ["RegularMode"], "the parent's list is untouched");
  f.server = new Server(["other.example", 443]);
  assert.equal(t.ctx.server.address![0], "example.com", "a fork may point at another server");
  assert.equal(t.ctx.master, t.master);
  assert.equal(t.ctx.options, t.master.options);
});
