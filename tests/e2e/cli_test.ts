/** The command line: help, version, option listing, and start-up errors that name the option. */
import assert from "node:assert/strict";
import { runCli } from "./helpers.ts";

Deno.test("cli: --help lists mitmdump's flags with their defaults", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0);
  for (const f of ["--listen-port", "--listen-host", "--mode", "--flow-detail", "--ignore-hosts", "--set"]) {
    assert.ok(r.stdout.includes(f), `${f} missing from --help`);
  }
  assert.match(r.stdout, /-p, --listen-port N +Port to bind the proxy server\(s\) to\. \(default: 8080\)\n/);
  assert.doesNotMatch(r.stdout, /default: (null|""|\[\]|false)/, "no empty defaults");
  for (const c of ["dump", "web", "ca", "new-addon"]) assert.match(r.stdout, new RegExp(`^  ${c} +\\S`, "m"));
  for (
    const f of ["--server-replay-nopop", "--server-replay-kill-extra", "--server-replay-extra {forward,"]
  ) {
    assert.ok(r.stdout.includes(f), `${f} missing from --help`);
  }
});

Deno.test("cli: mistyped subcommands are reported instead of starting a proxy with a filter", async () => {
  const cases: [string[], RegExp][] = [
    [["console"], /"console" is not a command: mitmproxy's console UI has no mitmdeno equivalent/],
    [["cert"], /"cert" is not a command: did you mean `mitmdeno ca`\?/],
    [["new_addon", "foo"], /"new_addon" is not a command: did you mean `mitmdeno new-addon`\?/],
    [["dumpp"], /did you mean `mitmdeno dump`\?/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, re);
    assert.match(r.stderr, /Commands: dump, web, ca, new-addon/);
    assert.match(r.stderr, new RegExp(`"~u ${args[0]}"`));
  }
  // a filter expression still works as the first argument, and so does a word after --
  const f = await runCli(["~d example.com", "--options"]);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, /^dumper_filter: "~d example.com"$/m);
  const w = await runCli(["--options", "--", "word"]);
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /^dumper_filter: "word"$/m);
  // a command after options: say to put it first (mitmdeno --confdir X ca would otherwise start a proxy)
  const late = await runCli(["--confdir", "/tmp/x", "ca"]);
  assert.equal(late.code, 1);
  assert.match(late.stderr, /"ca" is a command: write it first: `mitmdeno ca --confdir \/tmp\/x`/);
  const quoted = await runCli(["--options", "--", "ca"]);
  assert.equal(quoted.code, 0, quoted.stderr);
  assert.match(quoted.stdout, /^dumper_filter: "ca"$/m);
});

Deno.test("cli: --server-replay-nopop and --server-replay-kill-extra are accepted like mitmdump's", async () => {
  const r = await runCli(["--server-replay-nopop", "--server-replay-kill-extra", "--options"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^server_replay_nopop: true$/m);
  assert.match(r.stdout, /^server_replay_kill_extra: true$/m);
  // each deprecation said once, not once per configure pass
  assert.equal(r.stderr.match(/renamed to server_replay_reuse/g)?.length, 1, r.stderr);
  assert.equal(r.stderr.match(/server_replay_kill_extra has been deprecated/g)?.length, 1, r.stderr);
});

Deno.test("cli: -s with a Python script says to port it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/x.py`, "def request(flow):\n    pass\n");
    const r = await runCli(["-s", `${dir}/x.py`, "-p", "0"]);
    assert.equal(r.code, 1);
    const out = r.stdout + r.stderr;
    assert.match(out, /x\.py is a Python script; mitmdeno runs TypeScript or JavaScript addons/);
    assert.match(out, /docs\/scripts\.md/);
    assert.ok(out.length < 400, `short: ${out}`);
    assert.doesNotMatch(out, /data:/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a script's bad option value points at the option and the script, not mitmdeno's code", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/limit.ts`,
      `import { ctx, type Loader, OptionsError } from "mitmdeno";
export function load(loader: Loader) {
  loader.addOption("addheader", "optional int", null, "Add a header to responses");
}
export function configure(updated: Set<string>) {
  if (updated.has("addheader") && ctx.options.addheader > 100) throw new OptionsError("addheader must be <= 100");
}
`,
    );
    const r = await runCli([
      "-s",
      `${dir}/limit.ts`,
      "--set",
      "addheader=200",
      "-p",
      "0",
      "--listen-host",
      "127.0.0.1",
    ]);
    assert.equal(r.code, 1);
    const out = r.stdout + r.stderr;
    assert.match(
      out,
      new RegExp(
        `error in script ${dir}/limit\\.ts: addheader must be <= 100 \\(at ${dir}/limit\\.ts:6:\\d+\\)`,
      ),
    );
    assert.doesNotMatch(out, /lib\/addons/);
    const t = await runCli([
      "-s",
      `${dir}/limit.ts`,
      "--set",
      "addheader=abc",
      "-p",
      "0",
      "--listen-host",
      "127.0.0.1",
    ]);
    assert.match(t.stdout + t.stderr, /Option "addheader": expected an integer, got "abc"/);
    assert.doesNotMatch(t.stdout + t.stderr, /lib\/addons/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
    [["--set", "no_such_option=1"], /--set: unknown option "no_such_option"/],
    [["--set", "flow_detal=2"], /--set: unknown option "flow_detal" \(did you mean "flow_detail"\?\)/],
    [
      ["--set", "tls_ecdh_curve_client=prime256v1"],
      /--set: option "tls_ecdh_curve_client" is not supported by mitmdeno yet/,
    ],
    [["--set", "web_port=9"], /--set: "web_port" is an option of mitmweb/],
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

Deno.test("cli: a config.yaml shared with mitmproxy and mitmweb works; typos are errors naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      file,
      "anticache: true\nweb_port: 8082\nconsole_mouse: false\nview_filter: '~s'\ntls_ecdh_curve_client: prime256v1\n" +
        "command_history: true\ndns_name_servers: [1.1.1.1]\n",
    );
    const r = await runCli(["--confdir", dir, "--options"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^anticache: true$/m);
    assert.match(r.stdout, /^dns_name_servers: \["1.1.1.1"\]$/m, "dns_* accepted");
    for (
      const re of [
        new RegExp(
          `${file}: "web_port" is an option of mitmweb, not of mitmdeno dump \\(use mitmdeno web\\); ignored`,
        ),
        new RegExp(`${file}: "console_mouse" is an option of mitmproxy`),
        new RegExp(`${file}: "view_filter" is an option of mitmproxy`),
        new RegExp(`${file}: option "tls_ecdh_curve_client" is not supported by mitmdeno yet; ignored`),
      ]
    ) assert.match(r.stderr, re);
    await Deno.writeTextFile(file, "anticache: true\nlisten_prot: 9000\n");
    const typo = await runCli(["--confdir", dir, "--options"]);
    assert.equal(typo.code, 1);
    assert.match(
      typo.stderr,
      new RegExp(`${file}: unknown option "listen_prot" \\(did you mean "listen_port"\\?\\)`),
    );
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
    const out = r.stdout + r.stderr;
    assert.match(
      out,
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port}: address already in use \\(listen_port ${port}`),
    );
    assert.equal(out.match(/address already in use/g)?.length, 1, `reported once: ${out}`);
    assert.doesNotMatch(out, /\.ts:\d+/, "no internal paths");
    const host = await runCli(["--listen-host", "1.2.3.4.5", "-p", "0"]);
    assert.equal(host.code, 1);
    assert.match(host.stdout + host.stderr, /listen_host "1\.2\.3\.4\.5" is not an address of this machine/);
    assert.doesNotMatch(host.stdout + host.stderr, /listen_port/);
  } finally {
    server.close();
  }
});
