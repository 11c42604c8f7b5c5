/**
 * Flow files through the real CLI: record with -w, read with -r (the dumper prints), convert with a filter,
 * truncated files, HAR export/import, and interop with the installed mitmdump 8.1.1 both ways.
 */
import assert from "node:assert/strict";
import { curl, runCli, startOrigin, startProxy } from "./helpers.ts";
import { readFlowStates, readFlowsToArray } from "../../lib/io/flowfile.ts";
import { validateHar } from "../../lib/io/har.ts";

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}
const MITMDUMP = "/usr/bin/mitmdump";
const HAS_MITMDUMP = exists(MITMDUMP);
const SKIP = HAS_MITMDUMP ? "" : " [ignored: /usr/bin/mitmdump not installed]";

function origin() {
  return startOrigin(async (req) => {
    const u = new URL(req.url);
    const body = await req.text();
    if (u.pathname === "/missing") return new Response("nope", { status: 404 });
    return new Response(`${req.method} ${u.pathname} ${body}`, { headers: { "content-type": "text/plain" } });
  });
}

/** Record four exchanges through mitmdeno with `-w path` (+ extra args). */
async function record(path: string, extra: string[] = []): Promise<string> {
  const o = origin();
  const proxy = await startProxy(["-w", path, ...extra]);
  try {
    assert.equal((await curl(["-x", proxy.url, `${o.url}/a?x=1`])).status, 200);
    assert.equal((await curl(["-x", proxy.url, "-d", "k=v", `${o.url}/form`])).status, 200);
    assert.equal((await curl(["-x", proxy.url, `${o.url}/missing`])).status, 404);
    // the save addon writes at the response hook, before the client gets the response
    assert.equal((await curl(["-x", proxy.url, `${o.url}/b`])).status, 200);
  } finally {
    assert.equal(await proxy.stop(), 0);
    await o.close();
  }
  return o.url;
}

Deno.test("flowfile e2e: record with -w, read back with -r -n (dumper prints), convert with a filter", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/rec.mitm`;
    const url = await record(path);
    const flows = await readFlowsToArray(path);
    assert.deepEqual(flows.map((f) => `${f.request.method} ${f.request.path} ${f.response?.statusCode}`), [
      "GET /a?x=1 200",
      "POST /form 200",
      "GET /missing 404",
      "GET /b 200",
    ]);
    assert.equal(flows[1].request.text, "k=v");
    assert.equal(flows[1].response!.text, "POST /form k=v");
    assert.ok(flows[0].clientConn.peername && flows[0].serverConn.peername);

    const read = await runCli(["-n", "-r", path]);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, new RegExp(`GET ${url}/a\\?x=1\\n\\s+<< 200 OK`));
    assert.match(read.stdout, /GET http:\/\/127\.0\.0\.1:\d+\/missing\n\s+<< 404 Not Found 4b/);
    assert.equal(read.stdout.match(/<< /g)?.length, 4);

    // positional filter: sets readfile_filter, save_stream_filter and dumper_filter
    const out = `${dir}/ok.mitm`;
    const conv = await runCli(["-n", "-r", path, "-w", out, "~s & !~c 404"]);
    assert.equal(conv.code, 0, conv.stderr);
    assert.equal(conv.stdout.match(/<< /g)?.length, 3);
    assert.deepEqual((await readFlowsToArray(out)).map((f) => f.request.path), ["/a?x=1", "/form", "/b"]);
    const post = await runCli([
      "-n",
      "-r",
      path,
      "-w",
      `+${out}`,
      "--set",
      "save_stream_filter=~m POST",
      "-q",
    ]);
    assert.equal(post.code, 0, post.stderr);
    assert.equal((await readFlowsToArray(out)).length, 4, "+ appends");

    const bad = await runCli(["-n", "-r", path, "~q ("]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Option "(dumper|save_stream|readfile)_filter"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flowfile e2e: -n -r in -s script.ts -w out transforms saved traffic (SEEDS 5)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/rec.mitm`;
    await record(path, ["--flow-detail", "0"]);
    await Deno.writeTextFile(
      `${dir}/shout.ts`,
      `export function response(flow: any) {
  flow.response.headers.set("x-script", "shouted");
  flow.response.text = flow.response.text.toUpperCase();
}
`,
    );
    const r = await runCli(["-n", "-r", path, "-s", `${dir}/shout.ts`, "-w", `${dir}/out.mitm`, "~c 200"]);
    assert.equal(r.code, 0, r.stderr);
    const out = await readFlowsToArray(`${dir}/out.mitm`);
    assert.deepEqual(out.map((f) => [f.response!.text, f.response!.headers.get("x-script")]), [
      ["GET /A ", "shouted"],
      ["POST /FORM K=V", "shouted"],
      ["GET /B ", "shouted"],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flowfile e2e: a truncated file: complete flows printed, then one error with the byte offset, exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/rec.mitm`;
    await record(path, ["--flow-detail", "0"]);
    const offsets: number[] = [];
    for await (const s of readFlowStates(path)) offsets.push(s.offset);
    const data = await Deno.readFile(path);
    await Deno.writeFile(`${dir}/cut.mitm`, data.subarray(0, offsets[2] + 37));
    const r = await runCli(["-n", "-r", `${dir}/cut.mitm`]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout.match(/<< /g)?.length, 2, r.stdout);
    const errors = r.stderr.split("\n").filter((l) => /error|Error/.test(l));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0], new RegExp(`cut\\.mitm: .*truncated.*byte offset ${offsets[2]}\\b`));
    const missing = await runCli(["-n", "-r", `${dir}/none.mitm`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /none\.mitm.*No such file|cannot open flow file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flowfile e2e: -r - reads stdin; --set hardump writes a valid HAR that -r reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/rec.mitm`;
    await record(path, ["--flow-detail", "0"]);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../main.ts", import.meta.url).pathname,
        "-n",
        "-r",
        "-",
        "--set",
        `hardump=${dir}/o.har`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(await Deno.readFile(path));
    await w.close();
    const r = await child.output();
    const stdout = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.equal(stdout.match(/<< /g)?.length, 4);
    const har = JSON.parse(await Deno.readTextFile(`${dir}/o.har`));
    assert.deepEqual(validateHar(har), []);
    assert.equal(har.log.entries.length, 4);
    assert.equal(har.log.entries[1].request.postData.text, "k=v");
    const back = await runCli(["-n", "-r", `${dir}/o.har`]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /POST http:\/\/127\.0\.0\.1:\d+\/form\n\s+<< 200 OK 14b/);
    assert.equal(back.stdout.match(/<< /g)?.length, 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "flowfile e2e: mitmdump 8.1.1 reads what we record with --set flow_format_version=17" + SKIP,
  ignore: !HAS_MITMDUMP,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/ours17.mitm`;
      const url = await record(path, ["--set", "flow_format_version=17", "--flow-detail", "0"]);
      const versions: number[] = [];
      for await (const s of readFlowStates(path)) versions.push(Number(s.storedVersion));
      assert.deepEqual(versions, [17, 17, 17, 17]);
      const r = await new Deno.Command(MITMDUMP, {
        args: ["-n", "-r", path],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      const out = new TextDecoder().decode(r.stdout);
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      assert.match(out, new RegExp(`GET ${url}/a\\?x=1\\n\\s+<< 200 OK 7b`));
      assert.match(out, new RegExp(`POST ${url}/form\\n\\s+<< 200 OK 14b`));
      assert.match(out, /<< 404 Not Found 4b/);
      // and mitmdump can convert it (read + write) without complaint
      const conv = await new Deno.Command(MITMDUMP, {
        args: ["-n", "-q", "-r", path, "-w", `${dir}/py.mitm`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(conv.code, 0);
      assert.equal((await readFlowsToArray(`${dir}/py.mitm`)).length, 4);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "flowfile e2e: we read what mitmdump 8.1.1 records with -w through itself" + SKIP,
  ignore: !HAS_MITMDUMP,
  async fn() {
    const dir = await Deno.makeTempDir();
    const o = origin();
    const child = new Deno.Command(MITMDUMP, {
      args: ["--listen-host", "127.0.0.1", "-p", "0", "--set", "flow_detail=0", "-w", `${dir}/py.mitm`],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const dec = new TextDecoder();
    const pump = (async () => {
      for await (const c of child.stdout) out += dec.decode(c);
    })();
    const pumpErr = (async () => {
      for await (const c of child.stderr) out += dec.decode(c);
    })();
    try {
      const deadline = Date.now() + 20000;
      let port = 0;
      while (!port) {
        const m = /listening at 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) port = Number(m[1]);
        else if (Date.now() > deadline) throw new Error(`mitmdump did not start: ${out}`);
        else await new Promise((r) => setTimeout(r, 100));
      }
      const proxy = `http://127.0.0.1:${port}`;
      assert.equal((await curl(["-x", proxy, `${o.url}/py?q=1`])).body, "GET /py ");
      assert.equal((await curl(["-x", proxy, "-d", "x=y", `${o.url}/pypost`])).body, "POST /pypost x=y");
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await pump;
      await pumpErr;
      await o.close();
    }
    try {
      const flows = await readFlowsToArray(`${dir}/py.mitm`);
      assert.equal(flows.length, 2);
      assert.equal(flows[1].request.text, "x=y");
      assert.equal(flows[1].response!.text, "POST /pypost x=y");
      const r = await runCli(["-n", "-r", `${dir}/py.mitm`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`GET ${o.url}/py\\?q=1\\n\\s+<< 200 OK 8b`));
      assert.match(r.stdout, new RegExp(`POST ${o.url}/pypost\\n\\s+<< 200 OK 16b`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
