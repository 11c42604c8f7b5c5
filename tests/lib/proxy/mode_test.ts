import assert from "node:assert/strict";
import { parseMode, parseServerSpec } from "../../../lib/proxy/mode.ts";
import { Master } from "../../../lib/master.ts";

Deno.test("parseMode: a bare mode name has no data and no listen address", () => {
  assert.deepEqual(parseMode("regular"), {
    kind: "regular",
    data: "",
    listenHost: undefined,
    listenPort: undefined,
    full: "regular",
  });
});

Deno.test("parseMode: mode names are case-insensitive and surrounding space is ignored", () => {
  const m = parseMode("  Regular ");
  assert.equal(m.kind, "regular");
  assert.equal(parseMode("REVERSE:http://h:81").kind, "reverse");
  assert.equal(parseMode("  regular@8081 ").full, "regular@8081");
});

Deno.test("parseMode: @port and @host:port set the listen address", () => {
  assert.equal(parseMode("regular@8081").listenPort, 8081);
  assert.equal(parseMode("regular@8081").listenHost, undefined);
  const m = parseMode("regular@127.0.0.1:9090");
  assert.equal(m.listenHost, "127.0.0.1");
  assert.equal(m.listenPort, 9090);
  const v6 = parseMode("regular@[::1]:9090");
  assert.equal(v6.listenHost, "::1");
  assert.equal(v6.listenPort, 9090);
  assert.equal(parseMode("regular@0").listenPort, 0);
  assert.equal(parseMode("regular@65535").listenPort, 65535);
});

Deno.test("parseMode: splits at the last @ so the data may contain one", () => {
  const m = parseMode("wireguard:/p@th/wg.conf@8080");
  assert.equal(m.listenPort, 8080);
  assert.equal(m.data, "/p@th/wg.conf");
});

Deno.test("parseMode: rejects bad listen ports", () => {
  for (
    const spec of [
      "regular@",
      "regular@65536",
      "regular@99999",
      "regular@-1",
      "regular@abc",
      "regular@1.2.3.4:",
    ]
  ) {
    assert.throws(() => parseMode(spec), /invalid port/, spec);
  }
});

Deno.test("parseMode: rejects unknown modes, listing the known ones", () => {
  assert.throws(
    () => parseMode("bogus"),
    /unknown mode "bogus" \(known: regular, transparent, socks5, reverse/,
  );
  assert.throws(() => parseMode(""), /unknown mode/);
  assert.throws(() => parseMode("@8080"), /unknown mode/);
});

Deno.test("parseMode: regular, transparent, socks5 and dns take no arguments", () => {
  for (const k of ["regular", "transparent", "socks5", "dns"]) {
    assert.throws(() => parseMode(`${k}:something`), new RegExp(`mode ${k} takes no arguments`));
    assert.equal(parseMode(k).kind, k);
  }
  // an empty argument is the same as none
  assert.equal(parseMode("regular:").kind, "regular");
});

Deno.test("parseMode: reverse parses its target with https by default", () => {
  const m = parseMode("reverse:http://127.0.0.1:3000");
  assert.equal(m.kind, "reverse");
  assert.equal(m.data, "http://127.0.0.1:3000");
  assert.deepEqual(m.target, { scheme: "http", host: "127.0.0.1", port: 3000 });
  assert.deepEqual(parseMode("reverse:example.com").target, {
    scheme: "https",
    host: "example.com",
    port: 443,
  });
  assert.deepEqual(parseMode("reverse:http://example.com/").target, {
    scheme: "http",
    host: "example.com",
    port: 80,
  });
  assert.deepEqual(parseMode("reverse:HTTPS://[::1]:8443").target, {
    scheme: "https",
    host: "::1",
    port: 8443,
  });
});

Deno.test("parseMode: reverse with a listen address", () => {
  const m = parseMode("reverse:https://example.com@127.0.0.1:8443");
  assert.deepEqual(m.target, { scheme: "https", host: "example.com", port: 443 });
  assert.equal(m.listenHost, "127.0.0.1");
  assert.equal(m.listenPort, 8443);
  assert.equal(m.full, "reverse:https://example.com@127.0.0.1:8443");
});

Deno.test("parseMode: reverse needs a valid target", () => {
  assert.throws(() => parseMode("reverse"), /reverse mode needs a target/);
  assert.throws(() => parseMode("reverse:"), /reverse mode needs a target/);
  assert.throws(() => parseMode("reverse:http://example.com/path"), /invalid server specification/);
  assert.throws(() => parseMode("reverse:http://example.com:99999"), /invalid port/);
  assert.throws(() => parseMode("reverse:ftp://example.com"), /invalid scheme "ftp"/);
  assert.throws(() => parseMode("reverse:http://"), /invalid server specification/);
});

Deno.test("parseMode: upstream parses its proxy with http by default and only http/https", () => {
  assert.deepEqual(parseMode("upstream:proxy.local:3128").target, {
    scheme: "http",
    host: "proxy.local",
    port: 3128,
  });
  assert.deepEqual(parseMode("upstream:https://proxy.local").target, {
    scheme: "https",
    host: "proxy.local",
    port: 443,
  });
  assert.deepEqual(parseMode("upstream:proxy.local").target, {
    scheme: "http",
    host: "proxy.local",
    port: 80,
  });
  assert.throws(() => parseMode("upstream"), /upstream mode needs a proxy/);
  assert.throws(() => parseMode("upstream:socks5://p:1080"), /invalid scheme "socks5"/);
});

Deno.test("parseMode: modes with free-form data keep it", () => {
  assert.equal(parseMode("local:curl,wget").data, "curl,wget");
  assert.equal(parseMode("local:!curl").data, "!curl");
  assert.equal(parseMode("wireguard:/path/to/wg.conf@51821").data, "/path/to/wg.conf");
  assert.equal(parseMode("tun:utun3").data, "utun3");
});

Deno.test("the mode registry on the master lists exactly the modes that are implemented", () => {
  const m = new Master();
  assert.deepEqual([...m.proxy.modes.keys()].sort(), [
    "regular",
    "reverse",
    "socks5",
    "transparent",
    "upstream",
  ]);
});

Deno.test("parseServerSpec: default ports by scheme, and a required port for tls/others", () => {
  assert.deepEqual(parseServerSpec("example.com", "https", ["http", "https"]), {
    scheme: "https",
    host: "example.com",
    port: 443,
  });
  assert.deepEqual(parseServerSpec("dns://1.1.1.1", "http", ["dns"]), {
    scheme: "dns",
    host: "1.1.1.1",
    port: 53,
  });
  assert.throws(() => parseServerSpec("tcp://h", "http", ["tcp"]), /a port is required for scheme tcp/);
  assert.deepEqual(parseServerSpec("tcp://h:22", "http", ["tcp"]), { scheme: "tcp", host: "h", port: 22 });
  assert.throws(() => parseServerSpec("http://a:b", "http", ["http"]), /invalid server specification/);
  for (
    const bad of ["http://h?x", "http://h#f", "http://user@h", "http://a b", "http://[zz]:80", "http://a]:80"]
  ) {
    assert.throws(() => parseServerSpec(bad, "http", ["http"]), /invalid server specification/, bad);
  }
  assert.throws(() => parseMode("reverse:http://user@example.com@8080"), /invalid server specification/);
});
