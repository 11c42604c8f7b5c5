import assert from "node:assert/strict";
import { context, tflow } from "mitmdeno/testing";
import { Request } from "mitmdeno";
import { fileCandidates, MapLocal, parseMapLocalSpec } from "../../addons/maplocal.ts";

async function tree(): Promise<string> {
  const d = await Deno.makeTempDir();
  await Deno.mkdir(`${d}/sub`, { recursive: true });
  await Deno.writeTextFile(`${d}/index.html`, "root index");
  await Deno.writeTextFile(`${d}/sub/index.html`, "sub index");
  await Deno.writeTextFile(`${d}/app.js`, "js!");
  await Deno.writeTextFile(`${d}/a_b.txt`, "escaped");
  return await Deno.realPath(d);
}

Deno.test("maplocal: files, directories, index.html, 404", async () => {
  const d = await tree();
  try {
    const m = new MapLocal();
    await using tctx = await context(m);
    await tctx.configure(m, { map_local: [`|example.com/static|${d}`, `|one.test/file|${d}/app.js`] });
    const get = async (url: string) => {
      const f = tflow({ req: Request.make("GET", url) });
      await tctx.invoke(m, "request", f);
      return f.response;
    };
    let r = await get("http://example.com/static/app.js?v=1");
    assert.equal(r?.statusCode, 200);
    assert.equal(r?.text, "js!");
    assert.equal(r?.headers.get("content-type"), "text/javascript");
    assert.equal((await get("http://example.com/static"))?.text, "root index");
    assert.equal((await get("http://example.com/static/sub/"))?.text, "sub index");
    assert.equal((await get("http://example.com/static/a%20b.txt"))?.text, "escaped");
    assert.equal((await get("http://one.test/file/anything"))?.text, "js!");
    r = await get("http://example.com/static/missing.css");
    assert.equal(r?.statusCode, 404);
    assert.ok(tctx.hasLog("None of the local file candidates exist"));
    assert.equal(await get("http://other.com/static/app.js"), null);
    // no escape from the directory
    assert.equal((await get("http://example.com/static/..%2f..%2fetc%2fpasswd"))?.statusCode ?? 404, 404);
    assert.deepEqual(fileCandidates("http://x/static/../../etc", parseMapLocalSpec(`|static|${d}`)), []);
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});

Deno.test("maplocal: group(1) selects the file; missing path is a start-up error", async () => {
  const d = await tree();
  try {
    const m = new MapLocal();
    await using tctx = await context(m);
    await tctx.configure(m, { map_local: [`|/assets/(\\w+)\\.js|${d}`] });
    const f = tflow({ req: Request.make("GET", "http://x.test/assets/app.js") });
    await tctx.invoke(m, "request", f);
    assert.equal(f.response?.statusCode, 404); // candidate is "app", not "app.js"
    await tctx.configure(m, { map_local: [`|/assets/(\\w+\\.js)|${d}`] });
    const g = tflow({ req: Request.make("GET", "http://x.test/assets/app.js") });
    await tctx.invoke(m, "request", g);
    assert.equal(g.response?.text, "js!");
    await assert.rejects(
      tctx.configure(m, { map_local: ["|x|/does/not/exist"] }),
      /Option "map_local".*invalid file path/,
    );
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});
