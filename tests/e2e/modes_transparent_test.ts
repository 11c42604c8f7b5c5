/**
 * Transparent mode for real: the test makes two network namespaces joined by a veth pair, a "router" one
 * running an origin and mitmdeno with an iptables REDIRECT rule for the origin's ports, and a "client" one
 * routing through it, where curl runs. The proxy finds the original destination with SO_ORIGINAL_DST;
 * a request made to the proxy port directly falls back to the Host header. Skipped, with the reason,
 * where the machine does not allow namespaces or iptables.
 */
import assert from "node:assert/strict";
import { RUNTIME_FLAGS } from "../../scripts/runtime_flags.ts";
import { loadOrCreateCA } from "../../lib/tls/ca.ts";
import { CertStore } from "../../lib/tls/certs.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PID = Deno.pid % 100000;
const R = `mdr${PID}`;
const C = `mdc${PID}`;
const VR = `mdvr${PID}`;
const VC = `mdvc${PID}`;

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** Why this machine cannot run the test, or null. */
function whyNot(): string | null {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "needs root (network namespaces, iptables)";
  const probe = `mdp${PID}`;
  const add = run("ip", ["netns", "add", probe]);
  if (!add.ok) return `ip netns add refused: ${add.out.trim()}`;
  try {
    const ipt = run("ip", ["netns", "exec", probe, "iptables", "-t", "nat", "-L", "-n"]);
    if (!ipt.ok) return `iptables nat table not usable (install iptables): ${ipt.out.trim().slice(0, 200)}`;
  } finally {
    run("ip", ["netns", "del", probe]);
  }
  return null;
}

const reason = whyNot();

/** A process in a namespace, with its output collected. */
function spawnIn(ns: string, cmd: string, args: string[]) {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, cmd, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const c of s) out += dec.decode(c, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    output: () => out,
    async waitFor(re: RegExp, ms = 30000) {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (exited) throw new Error(`${cmd} exited:\n${out}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await status;
      clearTimeout(t);
      await pumps;
    },
  };
}

const ORIGIN_TS = `
const [certFile, keyFile] = Deno.args;
const handler = (req: Request) => {
  const u = new URL(req.url);
  // the authority asked for: the Host field over HTTP/1, :authority over HTTP/2 (the proxy offers h2 upstream)
  return new Response("origin " + u.pathname + " host=" + (req.headers.get("host") ?? u.host));
};
Deno.serve({ hostname: "10.213.1.1", port: 8000, onListen() {} }, handler);
Deno.serve({
  hostname: "10.213.1.1", port: 8443, cert: Deno.readTextFileSync(certFile), key: Deno.readTextFileSync(keyFile),
  onListen() { console.log("origin ready"); },
}, handler);
`;

Deno.test({
  name: `transparent: iptables REDIRECT in a network namespace, curl from another${
    reason ? ` (skipped: ${reason})` : ""
  }`,
  ignore: reason !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mitmdeno-transparent-" });
    const ca = await loadOrCreateCA(`${dir}/origin-ca`, { basename: "testorigin" });
    const leaf = new CertStore(ca, { secureContext: false }).getCert({
      commonName: "origin.test",
      sans: ["origin.test"],
    });
    await Deno.writeTextFile(`${dir}/origin.pem`, leaf.chainPem);
    await Deno.writeTextFile(`${dir}/origin.key`, leaf.keyPem);
    await Deno.writeTextFile(`${dir}/origin.ts`, ORIGIN_TS);
    const setup: [string, string[]][] = [
      ["ip", ["netns", "add", R]],
      ["ip", ["netns", "add", C]],
      ["ip", ["link", "add", VR, "type", "veth", "peer", "name", VC]],
      ["ip", ["link", "set", VR, "netns", R]],
      ["ip", ["link", "set", VC, "netns", C]],
      ["ip", ["-n", R, "addr", "add", "10.213.0.1/24", "dev", VR]],
      ["ip", ["-n", C, "addr", "add", "10.213.0.2/24", "dev", VC]],
      ["ip", ["-n", R, "link", "set", VR, "up"]],
      ["ip", ["-n", C, "link", "set", VC, "up"]],
      ["ip", ["-n", R, "link", "set", "lo", "up"]],
      ["ip", ["-n", C, "link", "set", "lo", "up"]],
      ["ip", ["-n", R, "addr", "add", "10.213.1.1/32", "dev", "lo"]],
      ["ip", ["-n", C, "route", "add", "default", "via", "10.213.0.1"]],
    ];
    for (const port of ["8000", "8443"]) {
      setup.push(["ip", [
        "netns",
        "exec",
        R,
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-i",
        VR,
        "-p",
        "tcp",
        "--dport",
        port,
        "-j",
        "REDIRECT",
        "--to-ports",
        "18080",
      ]]);
    }
    let origin: ReturnType<typeof spawnIn> | null = null;
    let proxy: ReturnType<typeof spawnIn> | null = null;
    try {
      for (const [cmd, args] of setup) {
        const r = run(cmd, args);
        assert.ok(r.ok, `${cmd} ${args.join(" ")}: ${r.out}`);
      }
      origin = spawnIn(R, Deno.execPath(), [
        "run",
        "-A",
        `${dir}/origin.ts`,
        `${dir}/origin.pem`,
        `${dir}/origin.key`,
      ]);
      proxy = spawnIn(R, Deno.execPath(), [
        "run",
        "--allow-all",
        ...RUNTIME_FLAGS,
        `${ROOT}main.ts`,
        "--mode",
        "transparent",
        "--listen-host",
        "0.0.0.0",
        "-p",
        "18080",
        "--set",
        `confdir=${dir}/conf`,
        "--set",
        `ssl_verify_upstream_trusted_ca=${ca.paths.certPem}`,
      ]);
      await origin.waitFor(/origin ready/);
      await proxy.waitFor(/Transparent Proxy listening at (\*|0\.0\.0\.0):18080/);
      const curlIn = (args: string[]) =>
        run("ip", ["netns", "exec", C, "curl", "-sS", "--max-time", "15", ...args]);
      // plain HTTP to the origin's address: redirected, the original destination recovered
      const a = curlIn(["http://10.213.1.1:8000/a"]);
      assert.ok(a.ok, a.out);
      assert.equal(a.out, "origin /a host=10.213.1.1:8000");
      await proxy.waitFor(/GET http:\/\/10\.213\.1\.1:8000\/a/);
      // HTTPS: intercepted with our certificate for the SNI, the origin verified against its CA
      const b = curlIn([
        "--cacert",
        `${dir}/conf/mitmdeno-ca-cert.pem`,
        "--resolve",
        "origin.test:8443:10.213.1.1",
        "https://origin.test:8443/b",
      ]);
      assert.ok(b.ok, b.out);
      assert.equal(b.out, "origin /b host=origin.test:8443");
      await proxy.waitFor(/GET https:\/\/10\.213\.1\.1:8443\/b/);
      assert.doesNotMatch(proxy.output(), /without the original destination/);
      // straight to the proxy's port (not redirected): the Host header says where, and a log line says so
      const c = curlIn(["-H", "Host: 10.213.1.1:8000", "http://10.213.0.1:18080/c"]);
      assert.ok(c.ok, c.out);
      assert.equal(c.out, "origin /c host=10.213.1.1:8000");
      await proxy.waitFor(
        /transparent mode without the original destination \([^)]*\): using the Host header/,
      );
    } finally {
      await proxy?.stop();
      await origin?.stop();
      run("ip", ["netns", "del", C]);
      run("ip", ["netns", "del", R]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
