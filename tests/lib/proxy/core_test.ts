import assert from "node:assert/strict";
import { Master } from "../../../lib/master.ts";
import { ProxyCore } from "../../../lib/proxy/core.ts";
import { ScriptLayer } from "./io_utils.ts";

Deno.test("ProxyCore: per master (no shared state), modes registry, limits re-read when options change", async () => {
  const a = new Master();
  const b = new Master();
  a.onLog(() => {});
  b.onLog(() => {});
  assert.notEqual(a.proxy, b.proxy);
  assert.notEqual(a.proxy.conns, b.proxy.conns);
  assert.notEqual(a.proxy.timers, b.proxy.timers);
  assert.ok(a.proxy.modes.has("regular") && a.proxy.modes.has("reverse"));
  assert.ok(!a.proxy.modes.has("wireguard"));
  a.proxy.addMode({
    name: "wireguard",
    syntax: "wireguard",
    description: "test",
    label: () => "test",
    defaultPort: 51820,
    layer: (ctx) => new ScriptLayer(ctx),
  });
  assert.equal(a.proxy.modes.get("wireguard")?.defaultPort, 51820);
  assert.ok(!b.proxy.modes.has("wireguard"), "registries are per master");
  const first = a.proxy.limits;
  assert.equal(first.idleTimeout, 600_000);
  assert.equal(a.proxy.limits, first, "cached while the options stay");
  await a.options.update({ tcp_timeout: 5 });
  assert.equal(a.proxy.limits.idleTimeout, 5000);
  assert.equal(b.proxy.limits.idleTimeout, 600_000);
  const standalone = new ProxyCore(a);
  assert.equal(standalone.master, a);
  assert.deepEqual(standalone.layers, {});
});

Deno.test("ProxyCore.isProxyItself: a local address on a port the proxy listens on", () => {
  const m = new Master();
  m.onLog(() => {});
  const core = m.proxy;
  assert.equal(core.isProxyItself("127.0.0.1", 8080), false, "no listener yet");
  core.listeningPorts.add(8080);
  for (
    const h of [
      "127.0.0.1",
      "127.1.2.3",
      "localhost",
      "LOCALHOST",
      "::1",
      "0.0.0.0",
      "::",
      "::ffff:127.0.0.1",
    ]
  ) {
    assert.ok(core.isProxyItself(h, 8080), h);
  }
  assert.equal(core.isProxyItself("example.com", 8080), false);
  assert.equal(core.isProxyItself("10.0.0.1", 8080), false);
  assert.equal(core.isProxyItself("127.0.0.1", 8081), false);
});
