import assert from "node:assert/strict";
import { context, tflow, tresp } from "mitmdeno/testing";
import { ModifyBody } from "../../addons/modifybody.ts";

Deno.test("modifybody: request and response bodies, filters", async () => {
  const mb = new ModifyBody();
  await using tctx = await context(mb);
  await tctx.configure(mb, { modify_body: ["/~q/foo/bar", "/~s/foo/bar"] });
  const f = tflow();
  f.request.content = "foo";
  await tctx.invoke(mb, "request", f);
  assert.equal(f.request.text, "bar");
  const g = tflow({ resp: true });
  g.response!.content = "foo";
  await tctx.invoke(mb, "response", g);
  assert.equal(g.response!.text, "bar");
  assert.equal(g.response!.headers.get("content-length"), "3");
});

Deno.test("modifybody: regex groups, DOTALL, escapes, gzip bodies, @file", async () => {
  const file = await Deno.makeTempFile();
  await Deno.writeTextFile(file, "[from file]");
  try {
    const mb = new ModifyBody();
    await using tctx = await context(mb);
    await tctx.configure(mb, {
      modify_body: [
        "/(\\d+)-(\\d+)/\\\\2-\\\\g<1>",
        "/a.b/X",
        "/NL/\\n",
        `|here|@${file}`,
        "/ü/ue",
        "/\\$/dollar",
      ],
    });
    const f = tflow({ resp: tresp({ headers: [["content-encoding", "gzip"]], content: "" }) });
    f.response!.content = "12-34 a\nb NL here über $";
    await tctx.cycle(mb, f);
    assert.equal(f.response!.headers.get("content-encoding"), "gzip");
    assert.equal(f.response!.text, "34-12 X \n [from file] ueber dollar");
    await assert.rejects(
      tctx.configure(mb, { modify_body: ["/(/x"] }),
      /Option "modify_body".*invalid regular expression/,
    );
    await assert.rejects(
      tctx.configure(mb, { modify_body: ["|x|@/nope/nope"] }),
      /Option "modify_body".*invalid file path/,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("modifybody: warns when combined with stream_large_bodies", async () => {
  const mb = new ModifyBody();
  await using tctx = await context(mb);
  await tctx.configure(mb, { modify_body: ["/a/b"], stream_large_bodies: "3m" });
  await tctx.waitForLog("Streamed bodies will not be modified");
});
