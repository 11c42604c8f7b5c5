/** `deno task install`: a `mitmdeno` command with the runtime flags and the import map, usable from any folder. */
import assert from "node:assert/strict";
import { binDir, installArgs } from "../../scripts/install.ts";
import { RUNTIME_FLAGS } from "../../scripts/runtime_flags.ts";
import { curl, startOrigin, startProxy } from "../e2e/helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DENO_BIN_DIR = Deno.execPath().replace(/\/[^/]+$/, "");

Deno.test("install: the arguments carry the runtime flags, the config and the lock", () => {
  const args = installArgs({ root: "/tmp/x" });
  for (const f of RUNTIME_FLAGS) assert.ok(args.includes(f), `${f} missing`);
  for (const f of ["--global", "--force", "--allow-all"]) assert.ok(args.includes(f), `${f} missing`);
  assert.equal(args[args.indexOf("--config") + 1], `${ROOT}deno.json`);
  assert.equal(args[args.indexOf("--root") + 1], "/tmp/x");
  assert.equal(args[args.indexOf("--name") + 1], "mitmdeno");
  assert.ok(args.at(-1)!.endsWith("/main.ts"));
  assert.equal(binDir("/tmp/x/"), "/tmp/x/bin");
});

Deno.test("install: `mitmdeno` from DENO_INSTALL_ROOT prints its version and proxies with a script", async () => {
  const root = await Deno.makeTempDir({ prefix: "mitmdeno-install-" });
  const work = await Deno.makeTempDir({ prefix: "mitmdeno-user-" });
  const origin = startOrigin(() => new Response("from origin"));
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  try {
    const env = { PATH: `${DENO_BIN_DIR}:${Deno.env.get("PATH") ?? ""}`, NO_COLOR: "1" };
    const inst = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}scripts/install.ts`, "--root", root],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(inst.stdout) + new TextDecoder().decode(inst.stderr);
    assert.equal(inst.code, 0, out);
    assert.match(out, new RegExp(`${root}/bin/mitmdeno runs`));
    const bin = `${root}/bin/mitmdeno`;
    const shim = await Deno.readTextFile(bin);
    for (const f of RUNTIME_FLAGS) assert.ok(shim.includes(f), `the command lacks ${f}:\n${shim}`);

    // from an unrelated folder, as a user would
    const v = await new Deno.Command(bin, {
      args: ["--version"],
      cwd: work,
      env,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const vout = new TextDecoder().decode(v.stdout);
    assert.equal(v.code, 0, new TextDecoder().decode(v.stderr));
    assert.match(vout, /^mitmdeno \d+\.\d+\.\d+/);

    // a script importing "mitmdeno" resolves through the installed import map
    await Deno.writeTextFile(
      `${work}/tag.ts`,
      `import type { HTTPFlow } from "mitmdeno";\n` +
        `export function response(flow: HTTPFlow) {\n  flow.response!.headers.set("x-installed", "yes");\n}\n`,
    );
    proxy = await startProxy(["--confdir", `${work}/conf`, "-s", "tag.ts"], { command: bin, cwd: work, env });
    await proxy.waitFor(/Loading script/);
    const r = await curl(["-x", proxy.url, `${origin.url}/hello`]);
    assert.equal(r.status, 200, r.stderr);
    assert.equal(r.body, "from origin");
    assert.match(r.headers, /x-installed: yes/i);
    await proxy.waitFor(/GET http:\/\/127\.0\.0\.1:\d+\/hello/);
  } finally {
    await proxy?.stop();
    await origin.close();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("install: with no deno on PATH (run through npx) the command runs the installing Deno", async () => {
  const root = await Deno.makeTempDir({ prefix: "mitmdeno-install-" });
  try {
    const env = { PATH: "/usr/bin:/bin", NO_COLOR: "1" };
    assert.ok(
      !DENO_BIN_DIR.startsWith("/usr/bin") && !DENO_BIN_DIR.startsWith("/bin"),
      "deno is in /usr/bin",
    );
    const inst = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}scripts/install.ts`, "--root", root],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(inst.stdout);
    assert.equal(inst.code, 0, out + new TextDecoder().decode(inst.stderr));
    assert.match(out, /no deno on PATH/);
    const shim = await Deno.readTextFile(`${root}/bin/mitmdeno`);
    assert.ok(shim.includes(`exec '${Deno.execPath()}' run`), shim);
    const v = await new Deno.Command(`${root}/bin/mitmdeno`, { args: ["--version"], env, stdout: "piped" })
      .output();
    assert.equal(v.code, 0);
    assert.match(new TextDecoder().decode(v.stdout), /^mitmdeno /);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
