/**
 * Every built-in addon of issue 6 through the real CLI: options given as mitmdump flags / --set, traffic
 * sent with curl through the running proxy to a loopback origin. The command-only addons (export, cut,
 * comment) are driven through the CLI's own setup (setupDump) in-process, since commands are called on
 * flows the proxy captured.
 */
import assert from "node:assert/strict";
import { curl, runCli, startOrigin, startProxy } from "./helpers.ts";
import { setupDump } from "../../lib/cli.ts";
import type { HTTPFlow } from "../../mod.ts";

function echoOrigin() {
  return startOrigin((req) => {
    const url = new URL(req.url);
    const headers = Object.fromEntries(req.headers);
    if (url.pathname === "/setcookie") {
      return new Response("set", { headers: { "set-cookie": "sticky=1; Path=/" } });
    }
    if (url.pathname === "/body") return new Response("before REPLACEME after");
    if (url.pathname === "/altsvc") {
      return new Response("alt", { headers: { "alt-svc": `h3="127.0.0.1:${url.port || 80}"; ma=60` } });
    }
    return Response.json({ path: url.pathname + url.search, headers });
  });
}

Deno.test("builtins e2e: regular mode with every request/response addon", async () => {
  const origin = echoOrigin();
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/local.txt`, "served locally");
  const proxy = await startProxy([
    "--flow-detail",
    "0",
    "--anticache",
    "--anticomp",
    "--set",
    "block_list=/~u blocked/403",
    "--set",
    "block_list=|~u killme|444",
    "--set",
    "block_private=true",
    "-M",
    "|/mapme|/remapped",
    "--map-local",
    `|/local/|${dir}`,
    "-B",
    "|~s|REPLACEME|replaced",
    "-H",
    "|~q|x-added|yes",
    "-H",
    "|~s|x-resp|resp",
    "--stickycookie",
    ".*",
    "--stickyauth",
    ".*",
    "--proxyauth",
    "user:pass",
  ]);
  try {
    const via = ["-x", proxy.url, "-U", "user:pass"];
    const echo = async (path: string, extra: string[] = []) => {
      const r = await curl([...via, ...extra, `${origin.url}${path}`]);
      assert.equal(r.status, 200, r.body + r.stderr);
      return JSON.parse(r.body) as { path: string; headers: Record<string, string> };
    };
    // proxyauth: 407 without credentials, the header is stripped with them
    const denied = await curl(["-x", proxy.url, `${origin.url}/echo`]);
    assert.equal(denied.status, 407);
    assert.match(denied.headers, /Proxy-Authenticate: Basic realm="mitmproxy"/i);
    let e = await echo("/echo", ["-H", "If-None-Match: x", "-H", "If-Modified-Since: y", "--compressed"]);
    assert.equal(e.headers["proxy-authorization"], undefined);
    // anticache, anticomp, modify_headers (request), block_private (loopback still allowed)
    assert.equal(e.headers["if-none-match"], undefined);
    assert.equal(e.headers["if-modified-since"], undefined);
    assert.equal(e.headers["accept-encoding"], "identity");
    assert.equal(e.headers["x-added"], "yes");
    // map_remote
    e = await echo("/mapme?q=1");
    assert.equal(e.path, "/remapped?q=1");
    // disable_h2c
    e = await echo("/echo", [
      "-H",
      "Upgrade: h2c",
      "-H",
      "Connection: Upgrade, HTTP2-Settings",
      "-H",
      "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA",
    ]);
    assert.equal(e.headers["upgrade"], undefined);
    assert.equal(e.headers["http2-settings"], undefined);
    // modify_headers (response) + modify_body
    const body = await curl([...via, `${origin.url}/body`]);
    assert.equal(body.body, "before replaced after");
    assert.match(body.headers, /x-resp: resp/i);
    // map_local
    const local = await curl([...via, `${origin.url}/local/local.txt`]);
    assert.equal(local.body, "served locally");
    assert.match(local.headers, /content-type: text\/plain/i);
    // block_list: status and kill
    const blocked = await curl([...via, `${origin.url}/blocked`]);
    assert.equal(blocked.status, 403);
    assert.match(blocked.headers, /server: mitmdeno/i);
    const killed = await curl([...via, `${origin.url}/killme`]);
    assert.notEqual(killed.code, 0);
    // stickycookie
    await curl([...via, `${origin.url}/setcookie`]);
    e = await echo("/echo");
    assert.equal(e.headers["cookie"], "sticky=1");
    // stickyauth
    await echo("/echo", ["-H", "Authorization: Basic c2VjcmV0"]);
    e = await echo("/echo");
    assert.equal(e.headers["authorization"], "Basic c2VjcmV0");
    // proxyauth: an authenticated CONNECT keeps the tunnel authenticated
    const tunneled = await curl(["-p", ...via, `${origin.url}/echo`]);
    assert.equal(tunneled.status, 200, tunneled.stderr);
    const deniedTunnel = await curl(["-p", "-x", proxy.url, `${origin.url}/echo`]);
    assert.notEqual(deniedTunnel.status, 200);
  } finally {
    await proxy.stop();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("builtins e2e: reverse mode with upstream_auth and update_alt_svc", async () => {
  const origin = echoOrigin();
  const proxy = await startProxy([
    "--flow-detail",
    "0",
    "--mode",
    `reverse:http://127.0.0.1:${origin.port}`,
    "--upstream-auth",
    "u:p",
  ]);
  try {
    const r = await curl([`${proxy.url}/echo`]);
    assert.equal(JSON.parse(r.body).headers["authorization"], `Basic ${btoa("u:p")}`);
    const alt = await curl([`${proxy.url}/altsvc`]);
    assert.match(alt.headers, new RegExp(`alt-svc: h3=":${proxy.port}"; ma=60`, "i"));
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

Deno.test("builtins e2e: a bad spec stops start-up with the option name; commands are listed", async () => {
  const bad = await runCli(["--listen-port", "0", "-M", "|only-one-part"]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /Option "map_remote": cannot parse "\|only-one-part": invalid number of parameters/,
  );
  const badAuth = await runCli(["--listen-port", "0", "--set", "block_list=/~q/999"]);
  assert.equal(badAuth.code, 1);
  assert.match(badAuth.stderr, /Option "block_list".*invalid HTTP status code: 999/);
  const cmds = await runCli(["--commands"]);
  for (const c of ["export", "export.file", "export.formats", "cut", "cut.save", "flow.comment"]) {
    assert.match(cmds.stdout, new RegExp(`^${c.replace(".", "\\.")}\\s`, "m"));
  }
});

Deno.test("builtins e2e: export, cut and comment on a flow captured through the CLI's proxy", async () => {
  const origin = echoOrigin();
  const flows: HTTPFlow[] = [];
  const capture = { name: "capture", response: (f: HTTPFlow) => void flows.push(f) };
  const { master, exit } = await setupDump(
    ["--listen-host", "127.0.0.1", "--listen-port", "0", "--flow-detail", "0", "-q"],
    [capture],
  );
  assert.equal(exit, null);
  const running = master.run();
  const dir = await Deno.makeTempDir();
  try {
    const server = master.addons.get("proxyserver") as { listenAddresses: { port: number }[] };
    const deadline = Date.now() + 10000;
    while (server.listenAddresses.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const r = await curl([
      "-x",
      `http://127.0.0.1:${server.listenAddresses[0].port}`,
      "-d",
      "a=1",
      `${origin.url}/echo`,
    ]);
    assert.equal(r.status, 200);
    assert.equal(flows.length, 1);
    const f = flows[0];
    const cmd = await master.commands.call("export", "curl", f) as string;
    assert.match(cmd, new RegExp(`^curl .*-X POST ${origin.url}/echo -d a=1$`));
    // the exported command works
    const again = await new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped" }).output();
    assert.equal(JSON.parse(new TextDecoder().decode(again.stdout)).path, "/echo");
    await master.commands.call("export.file", "har", f, `${dir}/entry.har.json`);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/entry.har.json`)).response.status, 200);
    await master.commands.call("flow.comment", [f], "looked at");
    assert.equal(f.comment, "looked at");
    await master.commands.call(
      "cut.save",
      [f],
      ["request.method", "response.status_code", "comment"],
      `${dir}/cut.csv`,
    );
    assert.equal(await Deno.readTextFile(`${dir}/cut.csv`), "POST,200,looked at\r\n");
  } finally {
    master.shutdown();
    await running;
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
});
