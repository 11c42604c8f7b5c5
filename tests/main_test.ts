/** main.ts: what a proxy process loads at start-up. */
import assert from "node:assert/strict";

Deno.test("no npm package is part of the proxy's start-up: node-forge (PKCS#12), yaml, bcryptjs & co. load on demand", async () => {
  // every proxy process would otherwise carry them (~3 MiB of RSS for node-forge alone, measured at idle)
  const root = new URL("../", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--lock=tests/deno.lock", "main.ts"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    redirects: Record<string, string>;
    modules: { specifier: string; dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[] }[];
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const staticNpm = new Set<string>();
  const seen = new Set<string>();
  const todo = [...info.roots];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const spec = info.redirects[next] ?? next;
    if (seen.has(spec)) continue;
    seen.add(spec);
    for (const d of bySpec.get(spec)?.dependencies ?? []) {
      const target = d.code?.specifier;
      if (!target || d.isDynamic) continue;
      if (target.startsWith("npm:")) staticNpm.add(target.replace(/@[^@/]+$/, ""));
      else todo.push(target);
    }
  }
  assert.ok(seen.size > 50, `the walk saw only ${seen.size} modules`);
  // none of the npm packages is needed to start: each is loaded by the feature that uses it
  assert.deepEqual([...staticNpm], [], `statically imported: ${[...staticNpm].join(", ")}`);
  // ...but they are in the module graph (behind a dynamic import), so `deno compile` bundles them
  const inGraph = new Set(
    info.modules.flatMap((m) => m.dependencies ?? []).map((d) => d.code?.specifier ?? "")
      .filter((x) => x.startsWith("npm:")).map((x) => x.replace(/@[^@/]+$/, "")),
  );
  for (const p of ["node-forge", "yaml", "bcryptjs", "apache-md5", "apache-crypt", "@msgpack/msgpack"]) {
    assert.ok(inGraph.has(`npm:${p}`), `npm:${p} is not in the module graph`);
  }
});
