import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { ModifyHeaders } from "../../addons/modifyheaders.ts";

Deno.test("modifyheaders: set, replace, delete, filters evaluated first", async () => {
  const mh = new ModifyHeaders();
  await using tctx = await context(mh);
  await tctx.configure(mh, {
    modify_headers: ["/~q/one/two", "/~s/one/three", "/~q/header/", "/~q & ~h one/marker/seen"],
  });
  const f = tflow();
  f.request.headers.set("one", "xxx");
  await tctx.invoke(mh, "requestheaders", f);
  assert.equal(f.request.headers.get("one"), "two");
  assert.equal(f.request.headers.has("header"), false);
  assert.equal(f.request.headers.get("marker"), "seen");
  const g = tflow({ resp: true });
  g.response!.headers.set("one", "xxx");
  await tctx.invoke(mh, "responseheaders", g);
  assert.equal(g.response!.headers.get("one"), "three");
});

Deno.test("modifyheaders: several values, @file values, escapes, errors", async () => {
  const file = await Deno.makeTempFile();
  await Deno.writeTextFile(file, "from-file");
  try {
    const mh = new ModifyHeaders();
    await using tctx = await context(mh);
    await tctx.configure(mh, { modify_headers: ["/x-multi/a", "/x-multi/b", `|x-file|@${file}`] });
    const f = tflow();
    await tctx.invoke(mh, "requestheaders", f);
    assert.deepEqual(f.request.headers.getAll("x-multi"), ["a", "b"]);
    assert.equal(f.request.headers.get("x-file"), "from-file");
    await assert.rejects(
      tctx.configure(mh, { modify_headers: ["|x|@/nonexistent/file"] }),
      /Option "modify_headers".*invalid file path/,
    );
    await assert.rejects(tctx.configure(mh, { modify_headers: ["/onlyone"] }), /Option "modify_headers"/);
  } finally {
    await Deno.remove(file);
  }
});
