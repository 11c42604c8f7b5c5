/** The onboarding app: http://mitm.it/ through the proxy is answered by the proxy itself. */
import assert from "node:assert/strict";
import { curl, startInProcess } from "../e2e/helpers.ts";
import { TlsConfig } from "../../addons/tlsconfig.ts";
import { Onboarding } from "../../addons/onboarding.ts";

Deno.test("onboarding: page with install steps and CA downloads, never reaching a server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mitmdeno-onboarding-" });
  const serverConnects: string[] = [];
  const spy = {
    name: "spy",
    server_connect: (d: { server: { address: [string, number] } }) =>
      serverConnects.push(d.server.address[0]),
  };
  const proxy = await startInProcess([new TlsConfig(), new Onboarding(), spy], [`confdir=${dir}/conf`]);
  try {
    const page = await curl(["-x", proxy.url, "http://mitm.it/"]);
    assert.equal(page.status, 200);
    assert.match(page.headers, /content-type: text\/html/i);
    for (const p of ["Windows", "Linux", "macOS", "iOS", "Android", "Firefox"]) {
      assert.match(page.body, new RegExp(p));
    }
    assert.match(page.body, /href="\/cert\/pem"/);
    const ca = (proxy.master.addons.get("tlsconfig") as TlsConfig).ca!;
    assert.ok(page.body.includes(ca.fingerprintSha256));

    const pem = await curl(["-x", proxy.url, "http://mitm.it/cert/pem"]);
    assert.equal(pem.body, await Deno.readTextFile(`${dir}/conf/mitmdeno-ca-cert.pem`));
    assert.match(pem.headers, /content-disposition: attachment; filename="mitmdeno-ca-cert.pem"/i);
    for (const [kind, file] of [["cer", "mitmdeno-ca-cert.cer"], ["p12", "mitmdeno-ca-cert.p12"]]) {
      const out = `${dir}/dl.${kind}`;
      const r = await new Deno.Command("curl", {
        args: ["-sS", "-x", proxy.url, "-o", out, `http://mitm.it/cert/${kind}`],
      }).output();
      assert.equal(r.code, 0);
      assert.deepEqual(await Deno.readFile(out), await Deno.readFile(`${dir}/conf/${file}`));
    }
    const missing = await curl(["-x", proxy.url, "http://mitm.it/nope"]);
    assert.equal(missing.status, 404);
    assert.deepEqual(serverConnects, []);

    // another host name
    await proxy.master.options.set(["onboarding_host=setup.test"]);
    const other = await curl(["-x", proxy.url, "http://setup.test/"]);
    assert.equal(other.status, 200);
    assert.match(other.body, /Install the mitmdeno certificate authority/);
    assert.deepEqual(serverConnects, []);

    // onboarding_port: the app answers only on that port (mitmproxy's asgiapp matches host and port)
    await proxy.master.options.set(["onboarding_port=8123"]);
    const onPort = await curl(["-x", proxy.url, "http://setup.test:8123/"]);
    assert.equal(onPort.status, 200);
    assert.match(onPort.body, /Install the mitmdeno certificate authority/);
    assert.deepEqual(serverConnects, []);
    const offPort = await curl(["-x", proxy.url, "http://setup.test/"]);
    assert.notEqual(offPort.status, 200, "port 80 is no longer the app");
    assert.deepEqual(serverConnects, ["setup.test"]);
  } finally {
    await proxy.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
