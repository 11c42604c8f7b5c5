/** The README's two set-up commands use the pinned Deno version and the tasks that exist. */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

Deno.test("README: set-up commands match .deno-version and deno.json tasks", async () => {
  const version = (await Deno.readTextFile(new URL(".deno-version", root))).trim();
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks;
  for (const task of ["start", "test"]) {
    assert.ok(
      readme.includes(`npx -y deno@${version} task ${task}`),
      `README lacks 'npx -y deno@${version} task ${task}'`,
    );
    assert.ok(tasks[task], `deno.json has no ${task} task`);
  }
  const ci = await Deno.readTextFile(new URL(".ci/run", root));
  assert.match(ci, /cat \.deno-version/);
  assert.match(ci, /task test/);
});

Deno.test("README: the first-run and HTTPS copy-paste steps work (offline, with the README's paths)", async () => {
  const { curl, startProxy } = await import("./e2e/helpers.ts");
  const { startHttpsOrigin } = await import("./e2e/tls_helpers.ts");
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const plain = /^curl -x http:\/\/127\.0\.0\.1:8080 (http:\/\/mitm\.it\/\S*)$/m.exec(readme);
  const https = /^curl --cacert ~\/(\.mitmdeno\/\S+) -x http:\/\/127\.0\.0\.1:8080 https:\/\/example\.com\/$/m
    .exec(readme);
  assert.ok(plain, "README lacks the offline first request");
  assert.ok(https, "README lacks the curl --cacert step");
  const home = await Deno.makeTempDir({ prefix: "mitmdeno-home-" });
  const origin = await startHttpsOrigin(home);
  // the default confdir is ~/.mitmdeno: a fresh HOME is a new user's first start
  const proxy = await startProxy(["--ssl-insecure"], { env: { HOME: home } });
  try {
    const cert = await curl(["-x", proxy.url, plain[1]]);
    assert.equal(cert.status, 200, cert.stderr);
    assert.match(cert.body, /^-----BEGIN CERTIFICATE-----/);
    const caPath = `${home}/${https[1]}`;
    assert.equal(
      (await Deno.readTextFile(caPath)).trim(),
      cert.body.trim(),
      "mitm.it serves the README's file",
    );
    const r = await curl(["--cacert", caPath, "-x", proxy.url, `https://localhost:${origin.port}/`]);
    assert.equal(r.status, 200, r.stderr);
    assert.match(r.body, /^hello \/ host=localhost:/);
    await proxy.waitFor(/GET https:\/\/localhost:\d+\//);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(home, { recursive: true });
  }
});
