/** The command line: help, version, option listing, and start-up errors that name the option. */
import assert from "node:assert/strict";
import { runCli } from "./helpers.ts";

Deno.test("cli: --help lists mitmdump's flags with their defaults", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0);
  for (const f of ["--listen-port", "--listen-host", "--mode", "--flow-detail", "--ignore-hosts", "--set"]) {
    assert.ok(r.stdout.includes(f), `${f} missing from --help`);
  }
  assert.match(r.stdout, /-p, --listen-port N/);
});

Deno.test("cli: --version and --options", async () => {
  const v = await runCli(["--version"]);
  assert.match(v.stdout, /^mitmdeno \d+\.\d+\.\d+/);
  const o = await runCli(["--options", "--set", "flow_detail=3"]);
  assert.equal(o.code, 0);
  assert.match(o.stdout, /^flow_detail: 3$/m);
  assert.match(o.stdout, /^stream_large_bodies: null$/m);
});

Deno.test("cli: bad option values are rejected at start-up with the option's name", async () => {
  const cases: [string[], RegExp][] = [
    [["--flow-detail", "9"], /Option "flow_detail": 9 is out of range, expected 0 to 4/],
    [["--flow-detail", "lots"], /Option "flow_detail": expected an integer, got "lots"/],
    [["--listen-port", "99999"], /Option "listen_port": 99999 is not a port number/],
    [["--mode", "sideways"], /Option "mode": invalid mode "sideways": unknown mode "sideways"/],
    [["--set", "stream_large_bodies=huge"], /Option "stream_large_bodies": invalid size "huge"/],
    [["--set", "connection_strategy=maybe"], /Option "connection_strategy".*one of eager, lazy/],
    [["--ignore-hosts", "(unclosed"], /Option "ignore_hosts": invalid regular expression "\(unclosed"/],
    [["--set", "no_such_option=1"], /Unknown option\(s\): no_such_option/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli([...args, "--options"]);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

Deno.test("cli: an unknown flag exits 2 with a pointer to --help", async () => {
  const r = await runCli(["--frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--frobnicate/);
  assert.match(r.stderr, /mitmdeno --help/);
});

Deno.test("cli: config.yaml in the confdir sets options, flags override it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/config.yaml`, "flow_detail: 3\nignore_hosts:\n  - example\\.com\n");
    const r = await runCli(["--set", `confdir=${dir}`, "--options"]);
    assert.match(r.stdout, /^flow_detail: 3$/m);
    assert.match(r.stdout, /^ignore_hosts: \["example\\\\.com"\]$/m);
    const o = await runCli(["--set", `confdir=${dir}`, "--flow-detail", "1", "--options"]);
    assert.match(o.stdout, /^flow_detail: 1$/m);
    await Deno.writeTextFile(`${dir}/config.yaml`, "flow_detail: [oops\n");
    const bad = await runCli(["--set", `confdir=${dir}`, "--options"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /config\.yaml/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a port already in use is a clear start-up error", async () => {
  const net = await import("node:net");
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  try {
    const r = await runCli(["--listen-host", "127.0.0.1", "-p", String(port)]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`),
    );
  } finally {
    server.close();
  }
});
