/**
 * The proxyserver addon: option checks at configure, listeners per mode on 127.0.0.1 ephemeral ports, a
 * client connection run by the mode's layer from the master's registry, the port-in-use and bad-host errors,
 * and shutdown.
 */
import assert from "node:assert/strict";
import { ProxyServer } from "../../../lib/proxy/server.ts";
import { OptionsError } from "../../../lib/addons/options.ts";
import { CloseConnection, SendData } from "../../../lib/proxy/commands.ts";
import { ConnectionClosed, DataReceived } from "../../../lib/proxy/events.ts";
import type { Master } from "../../../lib/master.ts";
import { bytes, Reader, Resources, ScriptLayer, testMaster, text, until, within } from "./io_utils.ts";

/** A master with the proxyserver addon; the "regular" and "transparent" modes answer "<mode>:<data>". */
async function setup() {
  const t = testMaster();
  const server = new ProxyServer(t.master);
  await t.master.addAddons(server);
  for (const name of ["regular", "transparent"]) {
    t.master.proxy.addMode({
      name,
      syntax: name,
      description: `test ${name}`,
      label: () => `test ${name} proxy`,
      defaultPort: 8080,
      layer: (ctx, spec) =>
        new ScriptLayer(ctx, (e, l) => {
          if (e instanceof DataReceived) l.cmd(new SendData(e.conn, bytes(`${spec.kind}:${text(e.data)}`)));
          if (e instanceof ConnectionClosed) l.cmd(new CloseConnection(e.conn));
        }),
    });
  }
  return { ...t, server };
}

async function rejects(master: Master, values: Record<string, unknown>, message: string | RegExp) {
  await assert.rejects(master.options.update(values), (e: Error) => {
    assert.ok(e instanceof OptionsError, `an OptionsError, got ${e}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

Deno.test("ProxyServer.configure: bad values are refused naming the option and what is allowed", async () => {
  const { master } = testMaster();
  await master.addAddons(new ProxyServer(master));
  await rejects(master, { mode: ["bogus"] }, /^Option "mode": invalid mode "bogus": unknown mode "bogus"/);
  await rejects(
    master,
    { mode: ["wireguard"] },
    /^Option "mode": wireguard mode is not supported by mitmdeno \(supported: regular, .*reverse:URL\)$/,
  );
  await rejects(
    master,
    { mode: ["regular@8081", "reverse:http://example.com@8081"] },
    'Option "mode": two modes listen on the same address :8081',
  );
  await rejects(master, { body_size_limit: "12q" }, /^Option "body_size_limit": /);
  await rejects(master, { stream_large_bodies: "lots" }, /^Option "stream_large_bodies": /);
  await rejects(master, { listen_port: 70000 }, 'Option "listen_port": 70000 is not a port number (0-65535)');
  await rejects(master, { connect_timeout: -1 }, 'Option "connect_timeout": must not be negative');
  await rejects(master, { max_header_count: -5 }, 'Option "max_header_count": must not be negative');
  await rejects(
    master,
    { ignore_hosts: ["ok\\.com", "(unclosed"] },
    /^Option "ignore_hosts": invalid regular expression "\(unclosed": /,
  );
  // the values stayed as they were; good ones are taken
  assert.deepEqual(master.options.mode, ["regular"]);
  await master.options.update({
    mode: ["regular", "reverse:http://127.0.0.1:3000@8082"],
    body_size_limit: "3m",
  });
  assert.equal(master.options.body_size_limit, "3m");
});

Deno.test("ProxyServer: one listener per mode on ephemeral ports, connections run by the mode's layer, shutdown closes all", async () => {
  const res = new Resources();
  const { master, server, logText } = await setup();
  try {
    const second = await res.freePort();
    await master.options.update({
      listen_host: "127.0.0.1",
      listen_port: 0,
      mode: ["regular", `transparent@${second}`],
    });
    await within(server.running(), "the listeners");
    assert.equal(server.listenAddresses.length, 2);
    const [reg, trans] = server.listenAddresses;
    assert.equal(reg.mode, "regular");
    assert.equal(trans.mode, `transparent@${second}`);
    assert.equal(reg.host, "127.0.0.1");
    assert.equal(trans.port, second);
    assert.notEqual(reg.port, 0);
    assert.ok(master.proxy.listeningPorts.has(reg.port) && master.proxy.listeningPorts.has(trans.port));
    assert.ok(master.proxy.isProxyItself("127.0.0.1", reg.port));
    assert.match(logText(), new RegExp(`test regular proxy listening at 127\\.0\\.0\\.1:${reg.port}\\.`));
    assert.match(
      logText(),
      new RegExp(`test transparent proxy listening at 127\\.0\\.0\\.1:${trans.port}\\.`),
    );

    const a = res.socket(await res.connect(reg.port));
    const b = res.socket(await res.connect(trans.port));
    const ra = new Reader(a);
    const rb = new Reader(b);
    a.write("x");
    b.write("y");
    await ra.waitFor("regular:x");
    await rb.waitFor("transparent:y");
    assert.equal(await master.commands.call("proxyserver.active_connections"), 2);
    b.end();
    await rb.waitClosed();
    let active = -1;
    await until(() => {
      master.commands.call("proxyserver.active_connections").then((n) => (active = n as number));
      return active === 1;
    }, "one active connection");

    await within(server.done(), "shutdown");
    await ra.waitClosed();
    assert.equal(master.proxy.listeningPorts.size, 0);
    await assert.rejects(res.connect(reg.port), /ECONNREFUSED|refused/i);
  } finally {
    await server.done();
    await res.close();
  }
});

Deno.test("ProxyServer: a port in use is one error line blaming listen_port; the other listeners still start", async () => {
  const res = new Resources();
  const { master, server, logs } = await setup();
  try {
    const taken = await res.listen(() => {});
    await master.options.update({
      listen_host: "127.0.0.1",
      listen_port: taken.port,
      mode: ["regular", "transparent@0"],
    });
    await within(server.running(), "running");
    const errors = logs.filter((e) => e.level === "error").map((e) => e.msg);
    assert.deepEqual(errors, [
      `Cannot listen on 127.0.0.1:${taken.port}: address already in use (listen_port ${taken.port}: is another proxy running? choose another port with -p)`,
    ]);
    assert.equal(master.errorsAtStartup, 1, "counts as a start-up error (exit status 1)");
    assert.deepEqual(server.listenAddresses.map((a) => a.mode), ["transparent@0"]);
  } finally {
    await server.done();
    await res.close();
  }
});

Deno.test("ProxyServer: a listen_host that is no address of this machine is blamed by name", async () => {
  const { master, server, logs } = await setup();
  try {
    await master.options.update({ listen_host: "203.0.113.7", listen_port: 0, mode: ["regular"] });
    await within(server.running(), "running");
    const errors = logs.filter((e) => e.level === "error").map((e) => e.msg);
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(
      errors[0],
      /^Cannot listen on 203\.0\.113\.7:0: listen_host "203\.0\.113\.7" is not an address of this machine \((EADDRNOTAVAIL|EINVAL)\)$/,
    );
    assert.equal(server.listenAddresses.length, 0);
  } finally {
    await server.done();
  }
});

Deno.test("ProxyServer: server=false starts no listener", async () => {
  const { master, server } = await setup();
  await master.options.update({ server: false, listen_host: "127.0.0.1", listen_port: 0, mode: ["regular"] });
  await server.running();
  assert.equal(server.listenAddresses.length, 0);
  await server.done();
});
