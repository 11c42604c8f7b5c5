/**
 * The driver against real sockets on 127.0.0.1: tiny test layers emit commands, the driver carries them out
 * on node:net/node:tls sockets and feeds events back.
 */
import assert from "node:assert/strict";
import { Client, Server } from "../../../lib/flow/connection.ts";
import { HTTPFlow } from "../../../lib/flow/flow.ts";
import { Request } from "../../../lib/http/message.ts";
import {
  CloseConnection,
  Command,
  Log,
  OpenConnection,
  Relay,
  RequestWakeup,
  SendData,
  SetReading,
  StartHook,
  WatchWrites,
} from "../../../lib/proxy/commands.ts";
import { ConnectionClosed, DataReceived, Start, WritesBlocked } from "../../../lib/proxy/events.ts";
import { Driver } from "../../../lib/proxy/driver.ts";
import { ProtocolError } from "../../../lib/proxy/errors.ts";
import {
  bytes,
  pending,
  Reader,
  Resources,
  runDriver,
  ScriptLayer,
  sleep,
  testMaster,
  text,
  until,
  within,
} from "./io_utils.ts";

/** An origin that echoes what it gets, prefixed with "echo:". */
async function echoOrigin(res: Resources, opts: { allowHalfOpen?: boolean } = {}) {
  return await res.listen((s) => s.on("data", (b: Uint8Array) => s.write(`echo:${text(b)}`)), opts);
}

/** Data the layer received on `conn`, as text. */
function received(l: ScriptLayer, conn: unknown): string {
  return l.seen(DataReceived).filter((e) => e.conn === conn).map((e) => text(e.data)).join("");
}

/** Records every hook it sees with a copy of what mattered. */
function hookRecorder() {
  const calls: string[] = [];
  return {
    calls,
    addon: {
      name: "recorder",
      client_connected: () => void calls.push("client_connected"),
      client_disconnected: () => void calls.push("client_disconnected"),
      server_connect: (d: { server: Server }) => void calls.push(`server_connect ${d.server.address?.[1]}`),
      server_connected: (d: { server: Server }) =>
        void calls.push(`server_connected ${d.server.peername?.[0]}:${d.server.peername?.[1]}`),
      server_connect_error: (d: { server: Server }) =>
        void calls.push(`server_connect_error ${d.server.error}`),
      server_disconnected: (d: { server: Server; client: Client }) =>
        void calls.push(`server_disconnected ${d.server.address?.[1]}`),
    },
  };
}

Deno.test("driver: client_connected, Start, data both ways, client close ends the run and fires client_disconnected", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const rec = hookRecorder();
    await master.addAddons(rec.addon);
    const r = await runDriver(res, master, (e, l) => {
      if (e instanceof DataReceived) l.cmd(new SendData(e.conn, bytes(`got ${text(e.data)}`)));
    }, { keepOpen: true });
    await r.layer.next(Start);
    assert.ok(r.layer.events[0] instanceof Start, "Start is the first event");
    assert.deepEqual(rec.calls, ["client_connected"]);
    assert.equal(r.driver.client.peername?.[0], "127.0.0.1");
    assert.equal(r.driver.client.peername?.[1], r.client.localPort);
    assert.equal(r.driver.client.sockname?.[1], r.client.remotePort);
    assert.equal(r.driver.client.proxyMode, "regular");
    r.client.write("ping");
    await r.reader.waitFor("got ping");
    r.client.end();
    await r.layer.next(ConnectionClosed, (e) => e.conn === r.driver.client);
    r.layer.cmd(new CloseConnection(r.driver.client));
    await within(r.done, "the run to end");
    assert.deepEqual(rec.calls, ["client_connected", "client_disconnected"]);
    assert.ok(r.driver.client.timestampEnd !== null, "the client's end time is set");
    await r.reader.waitClosed();
  } finally {
    await res.close();
  }
});

Deno.test("driver: an addon that sets client.error in client_connected kills the connection before any layer runs", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const rec = hookRecorder();
    await master.addAddons({
      name: "killer",
      client_connected: (c: Client) => void (c.error = "not welcome"),
    }, rec.addon);
    const r = await runDriver(res, master);
    await within(r.done, "the run to end");
    await r.reader.waitClosed();
    assert.equal(r.layer.events.length, 0, "the layer never started");
    assert.deepEqual(rec.calls, ["client_connected", "client_disconnected"]);
  } finally {
    await res.close();
  }
});

Deno.test("driver: clientHooks false runs no client hooks and leaves the client's end time alone", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const rec = hookRecorder();
    await master.addAddons(rec.addon);
    const r = await runDriver(res, master, () => {}, { clientHooks: false });
    await r.layer.next(Start);
    r.client.destroy();
    await within(r.done, "the run to end");
    assert.deepEqual(rec.calls, []);
    assert.equal(r.driver.client.timestampEnd, null);
  } finally {
    await res.close();
  }
});

Deno.test("driver: OpenConnection connects, fires server_connect/server_connected, data both ways, server close is an event and server_disconnected", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const rec = hookRecorder();
    await master.addAddons(rec.addon);
    const origin = await echoOrigin(res);
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    const result = await within(r.layer.ask(new OpenConnection(server)), "the connection");
    assert.equal(result, null);
    assert.deepEqual(rec.calls, [
      "client_connected",
      `server_connect ${origin.port}`,
      `server_connected 127.0.0.1:${origin.port}`,
    ]);
    assert.deepEqual(server.peername, ["127.0.0.1", origin.port]);
    assert.equal(server.sockname?.[0], "127.0.0.1");
    assert.ok(server.timestampStart !== null && server.timestampTcpSetup === server.timestampStart);
    assert.ok(server.connected);
    r.layer.cmd(new SendData(server, bytes("hi")));
    await until(() => received(r.layer, server) === "echo:hi", "the echo");
    // the origin hangs up: the layer hears of it (the connection stays half-open until the layer closes it)
    origin.accepted[0].end();
    await r.layer.next(ConnectionClosed, (e) => e.conn === server);
    assert.ok(server.connected, "still open until the layer closes it");
    r.layer.cmd(new CloseConnection(server));
    await until(() => rec.calls.includes(`server_disconnected ${origin.port}`), "server_disconnected");
    assert.ok(server.timestampEnd !== null && !server.connected);
    // sending to a closed connection is a no-op, not a crash
    r.layer.cmd(new SendData(server, bytes("late")));
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: connection refused is a 502 ProtocolError of kind connect, with server_connect_error", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const rec = hookRecorder();
    await master.addAddons(rec.addon);
    const port = await res.freePort();
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", port]);
    const err = await within(r.layer.ask(new OpenConnection(server)), "the failure");
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.kind, "connect");
    assert.equal(err.status, 502);
    assert.equal(err.message, `Cannot connect to 127.0.0.1:${port}: connection refused`);
    assert.equal(server.error, err.message);
    assert.deepEqual(rec.calls.slice(1), [`server_connect ${port}`, `server_connect_error ${err.message}`]);
    r.client.destroy();
    await within(r.done, "the run to end");
    assert.ok(!rec.calls.some((c) => c.startsWith("server_disconnected")), "nothing was connected");
  } finally {
    await res.close();
  }
});

Deno.test("driver: an addon refusing in server_connect, and a server without address, fail without connecting", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    let accepted = 0;
    const origin = await res.listen(() => accepted++);
    await master.addAddons({
      name: "refuser",
      server_connect: (d: { server: Server }) => void (d.server.error = "blocked by policy"),
    });
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const refused = await r.layer.ask(new OpenConnection(new Server(["127.0.0.1", origin.port])));
    assert.ok(refused instanceof ProtocolError);
    assert.equal(refused.kind, "refused");
    assert.equal(refused.status, 502);
    assert.match(refused.message, /refused by an addon: blocked by policy/);
    const none = await r.layer.ask(new OpenConnection(new Server(null)));
    assert.ok(none instanceof ProtocolError);
    assert.equal(none.kind, "connect");
    assert.equal(none.message, "no server address");
    await sleep(50);
    assert.equal(accepted, 0, "nothing connected to the origin");
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: the client closing while a server connection is open closes it too (server_disconnected)", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const rec = hookRecorder();
    await master.addAddons(rec.addon);
    const origin = await echoOrigin(res);
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    await until(() => origin.accepted.length === 1, "the origin to accept");
    const originReader = new Reader(origin.accepted[0]);
    r.client.destroy();
    await within(r.done, "the run to end");
    await originReader.waitClosed();
    assert.ok(server.timestampEnd !== null);
    assert.deepEqual(rec.calls.slice(-2), [`server_disconnected ${origin.port}`, "client_disconnected"]);
  } finally {
    await res.close();
  }
});

Deno.test("driver: CloseConnection halfClose sends FIN and keeps reading; a full close ends the server connection", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    // an origin that answers after our FIN, then closes
    const origin = await res.listen((s) => {
      let got = "";
      s.on("data", (b: Uint8Array) => (got += text(b)));
      s.on("end", () => {
        s.write(`after FIN: ${got}`);
        s.end();
      });
    }, { allowHalfOpen: true });
    const r = await runDriver(res, master, () => {}, { keepOpen: true });
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    r.layer.cmd(new SendData(server, bytes("request")));
    r.layer.cmd(new CloseConnection(server, { halfClose: true }));
    await r.layer.next(ConnectionClosed, (e) => e.conn === server);
    assert.equal(received(r.layer, server), "after FIN: request");
    // the client half-closes too: the driver tells the layer and still writes to it
    r.client.end();
    await r.layer.next(ConnectionClosed, (e) => e.conn === r.driver.client);
    r.layer.cmd(new SendData(r.driver.client, bytes("bye")));
    r.layer.cmd(new CloseConnection(r.driver.client));
    await r.reader.waitFor("bye");
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: CloseConnection reuse of a plain connection cannot park it: it is closed", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    master.proxy.conns.setTlsConfig({ insecure: true, alpn: [], reuse: true });
    const origin = await echoOrigin(res);
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    await until(() => origin.accepted.length === 1, "the origin to accept");
    const originReader = new Reader(origin.accepted[0]);
    r.layer.cmd(new CloseConnection(server, { reuse: true }));
    await originReader.waitEnd();
    assert.equal(master.proxy.conns.idle.size, 0);
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: SetReading false stops data events of a connection until SetReading true", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const client = r.driver.client;
    r.layer.cmd(new SetReading(client, false));
    r.client.write("held back");
    await sleep(150);
    assert.equal(received(r.layer, client), "", "no data while reading is off");
    r.layer.cmd(new SetReading(client, true));
    await until(() => received(r.layer, client) === "held back", "the data after resuming");
    // SetReading on a connection the driver does not know is ignored
    r.layer.cmd(new SetReading(new Server(["127.0.0.1", 1]), false));
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: a full write buffer towards the client stops reading from the server until it drains", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const origin = await res.listen(() => {});
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    await until(() => origin.accepted.length === 1, "the origin to accept");
    // the client does not read; more than the kernel buffers can hold goes to it
    r.client.pause();
    const big = new Uint8Array(48 * 1024 * 1024).fill(120);
    r.layer.cmd(new SendData(r.driver.client, big));
    origin.accepted[0].write("from the server");
    await sleep(300);
    assert.equal(received(r.layer, server), "", "server data waits while the client's buffer is full");
    // the client reads everything: the buffer drains and the server's data comes through
    let n = 0;
    r.client.on("data", (b: Uint8Array) => (n += b.length));
    r.client.resume();
    await until(() => n + r.reader.length >= big.length, "the client to read everything", 20000);
    await until(() => received(r.layer, server) === "from the server", "the server's data after the drain");
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: a watched connection's full write buffer is told to the layer (WritesBlocked), the others go on reading", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const origin = await res.listen((s) => s.pause());
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    await until(() => origin.accepted.length === 1, "the origin to accept");
    r.layer.cmd(new WatchWrites(server));
    // the origin reads nothing; more than the kernel buffers can hold goes to it
    const big = new Uint8Array(48 * 1024 * 1024).fill(120);
    r.layer.cmd(new SendData(server, big));
    await r.layer.next(WritesBlocked, (e) => e.conn === server && e.blocked);
    r.client.write("from the client");
    await until(
      () => received(r.layer, r.driver.client) === "from the client",
      "the client's data, unpaused",
    );
    // the origin reads everything: the layer hears the buffer drained
    let n = 0;
    origin.accepted[0].on("data", (b: Uint8Array) => (n += b.length));
    origin.accepted[0].resume();
    await r.layer.next(WritesBlocked, (e) => e.conn === server && !e.blocked);
    await until(() => n === big.length, "the origin to read everything", 20000);
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: RequestWakeup fires after its delay (coarse), a cancelled one never", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const t0 = Date.now();
    let firedAt = 0;
    let cancelledFired = false;
    r.layer.cmd(new RequestWakeup(300, () => (firedAt = Date.now())));
    const c = new RequestWakeup(100, () => (cancelledFired = true));
    r.layer.cmd(c);
    c.cancel();
    assert.equal(c.onCancel, null, "cancel released the timer");
    await until(() => firedAt !== 0, "the wakeup", 3000);
    const after = firedAt - t0;
    assert.ok(after >= 290 && after < 1500, `fired after ${after} ms`);
    assert.equal(cancelledFired, false);
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: StartHook runs the addons' hook with its data and replies when async handlers finish; a failing handler is logged and still replies", async () => {
  const res = new Resources();
  try {
    const { master, logText } = testMaster();
    let release!: () => void;
    const seen: unknown[] = [];
    await master.addAddons({
      name: "slow",
      tcp_start: async (d: unknown) => {
        seen.push(d);
        await new Promise<void>((r) => (release = r));
      },
      tcp_end: () => {
        throw new Error("boom in tcp_end");
      },
    });
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const data = { marker: 1 };
    const slow = new StartHook("tcp_start", data);
    const replied = r.layer.ask(slow);
    await until(() => seen.length === 1, "the hook to run");
    assert.equal(seen[0], data);
    await pending(replied, 100, "the hook reply");
    release();
    await within(replied, "the hook reply");
    assert.ok(slow.done);
    // a hook nobody handles replies at once
    const none = new StartHook("tcp_error", {});
    r.layer.cmd(none);
    assert.ok(none.done, "replied synchronously");
    const failing = new StartHook("tcp_end", {});
    await within(r.layer.ask(failing), "the failing hook's reply");
    assert.match(logText(), /boom in tcp_end/);
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: a flow hook waits while the flow is intercepted, and runs update", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const updates: unknown[] = [];
    await master.addAddons({
      name: "interceptor",
      request: (f: HTTPFlow) => f.intercept(),
      update: (flows: unknown[]) => void updates.push(...flows),
    });
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const flow = new HTTPFlow(
      r.driver.client,
      new Server(["example.com", 80]),
      Request.make("GET", "http://example.com/"),
    );
    const reply = r.layer.ask(new StartHook("request", flow, flow));
    await pending(reply, 150, "the intercepted hook");
    assert.ok(flow.intercepted);
    assert.deepEqual(updates, [flow]);
    flow.resume();
    await within(reply, "the hook after resume");
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: Log goes to the master's log at its level; proxy_debug traces events and commands", async () => {
  const res = new Resources();
  try {
    const { master, logs } = testMaster();
    await master.options.update({ proxy_debug: true });
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    r.layer.cmd(new Log("a warning from a layer", "warn"));
    assert.ok(logs.some((e) => e.level === "warn" && e.msg === "a warning from a layer"));
    r.client.write("abcd");
    await r.layer.next(DataReceived);
    r.layer.cmd(new SendData(r.driver.client, bytes("xy")));
    await r.reader.waitFor("xy");
    const debug = logs.filter((e) => e.level === "debug").map((e) => e.msg).join("\n");
    assert.match(debug, />> DataReceived\(client, 4b\)/);
    assert.match(debug, /<< SendData\(client, 2b\)/);
    r.client.end();
    await r.layer.next(ConnectionClosed);
    assert.match(logs.map((e) => e.msg).join("\n"), />> ConnectionClosed\(client\)/);
    r.client.destroy();
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: a layer that throws (or emits an unknown command) is logged as a proxy error and its connections close", async () => {
  const res = new Resources();
  try {
    const { master, logText } = testMaster();
    const origin = await echoOrigin(res);
    class Bogus extends Command {}
    const r = await runDriver(res, master, (e, l) => {
      if (e instanceof DataReceived && text(e.data) === "unknown") l.cmd(new Bogus());
    });
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    await until(() => origin.accepted.length === 1, "the origin to accept");
    const originReader = new Reader(origin.accepted[0]);
    r.client.write("unknown");
    await within(r.done, "the run to end");
    assert.match(logText(), /proxy error: .*unknown command Bogus/);
    await r.reader.waitClosed();
    await originReader.waitClosed();
  } finally {
    await res.close();
  }
});

Deno.test("driver: a layer that throws on Start ends the run", async () => {
  const res = new Resources();
  try {
    const { master, logText } = testMaster();
    const r = await runDriver(res, master, (e) => {
      if (e instanceof Start) throw new Error("start failed");
    });
    await within(r.done, "the run to end");
    assert.match(logText(), /proxy error: .*start failed/);
    await r.reader.waitClosed();
  } finally {
    await res.close();
  }
});

Deno.test("driver: tcp_timeout closes a connection without traffic, and traffic keeps it open", async () => {
  const res = new Resources();
  try {
    const { master, logText } = testMaster();
    await master.options.update({ tcp_timeout: 1 });
    // silent from the start: closed after about tcp_timeout
    const quiet = await runDriver(res, master);
    const t0 = Date.now();
    await within(quiet.done, "the idle connection to close", 4000);
    const waited = Date.now() - t0;
    assert.ok(waited >= 900 && waited < 1800, `closed after ${waited} ms`);
    assert.match(logText(), /no traffic for 1s \(tcp_timeout\): closing/);
    await quiet.reader.waitClosed();
    // a client that talks every 300 ms stays, then goes quiet and is closed
    const busy = await runDriver(res, master);
    const t1 = Date.now();
    for (let i = 0; i < 6; i++) {
      busy.client.write("x");
      await sleep(300);
    }
    assert.ok(!busy.reader.closed, `open after ${Date.now() - t1} ms of traffic`);
    const quietFrom = Date.now();
    await within(busy.done, "the connection to close once quiet", 4000);
    const idle = Date.now() - quietFrom;
    assert.ok(idle < 2500, `closed ${idle} ms after the last byte`);
  } finally {
    await res.close();
  }
});

Deno.test("driver: a finished connection leaves no deadline behind (tcp_timeout, pending wakeups: they hold its layers)", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const timers = master.proxy.timers;
    const before = timers.size;
    let woke = 0;
    const r = await runDriver(res, master, (e, l) => {
      if (e instanceof Start) {
        l.cmd(new RequestWakeup(600_000, () => woke++));
        l.cmd(new RequestWakeup(600_000, () => woke++));
      }
    });
    await r.layer.next(Start);
    assert.equal(timers.size, before + 3, "tcp_timeout and two wakeups while the connection is open");
    r.client.end();
    await within(r.done, "the connection to end");
    assert.equal(timers.size, before);
    assert.equal(woke, 0);
  } finally {
    await res.close();
  }
});

Deno.test("driver: Relay pipes both ways natively, pending bytes first, and completes when both sides closed", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const origin = await res.listen((s) => {
      s.write("banner;");
      s.on("data", (b: Uint8Array) => s.write(`echo:${text(b)};`));
      s.on("end", () => s.end());
    }, { allowHalfOpen: true });
    const r = await runDriver(res, master, () => {}, { allowHalfOpen: true, keepOpen: true });
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    await until(() => received(r.layer, server) === "banner;", "the banner as an event");
    await until(() => origin.accepted.length === 1, "the origin to accept");
    const originReader = new Reader(origin.accepted[0]);
    const relayed = r.layer.ask(new Relay(r.driver.client, server, bytes("early"), bytes("pending;")));
    await r.reader.waitFor("pending;echo:early;");
    r.client.write("ping");
    await r.reader.waitFor("echo:ping;");
    assert.equal(originReader.text, "earlyping");
    assert.equal(received(r.layer, r.driver.client), "", "relayed bytes are no events");
    r.client.end();
    await within(relayed, "the relay to complete");
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: Relay of a connection that already ended passes the end on; Relay of an unknown connection completes at once", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const origin = await res.listen((s) => {
      s.end("last words");
    }, { allowHalfOpen: true });
    const r = await runDriver(res, master, () => {}, { allowHalfOpen: true, keepOpen: true });
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    await r.layer.next(ConnectionClosed, (e) => e.conn === server);
    const unknown = new Relay(r.driver.client, new Server(["127.0.0.1", 9]));
    r.layer.cmd(unknown);
    assert.ok(unknown.done, "completed at once");
    const relayed = r.layer.ask(new Relay(r.driver.client, server));
    await r.reader.waitEnd();
    r.client.end();
    await within(relayed, "the relay to complete");
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: Relay after the client already ended passes its end to the server", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    const origin = await res.listen((s) => s.on("end", () => s.end("done")), { allowHalfOpen: true });
    const r = await runDriver(res, master, () => {}, { allowHalfOpen: true, keepOpen: true });
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    assert.equal(await r.layer.ask(new OpenConnection(server)), null);
    r.client.end("bye");
    await r.layer.next(ConnectionClosed, (e) => e.conn === r.driver.client);
    await until(() => origin.accepted.length === 1, "the origin to accept");
    const originReader = new Reader(origin.accepted[0]);
    const relayed = r.layer.ask(new Relay(r.driver.client, server, bytes("bye")));
    await originReader.waitEnd();
    assert.equal(originReader.text, "bye");
    await r.reader.waitFor("done");
    await within(relayed, "the relay to complete");
    await within(r.done, "the run to end");
  } finally {
    await res.close();
  }
});

Deno.test("driver: a connection that completes after the client went away is dropped (client-closed)", async () => {
  const res = new Resources();
  try {
    const { master } = testMaster();
    let release!: () => void;
    let connecting = false;
    await master.addAddons({
      name: "slow",
      server_connect: async () => {
        connecting = true;
        await new Promise<void>((r) => (release = r));
      },
    });
    const origin = await res.listen(() => {});
    const r = await runDriver(res, master);
    await r.layer.next(Start);
    const server = new Server(["127.0.0.1", origin.port]);
    const open = new OpenConnection(server);
    r.layer.cmd(open);
    await until(() => connecting, "server_connect");
    r.client.destroy();
    await within(r.done, "the run to end");
    release();
    await until(() => open.done, "the reply");
    assert.ok(open.reply instanceof ProtocolError);
    assert.equal(open.reply.kind, "client-closed");
    await until(
      () => origin.accepted.length === 1 && origin.accepted[0].destroyed,
      "the origin's socket to close",
    );
  } finally {
    await res.close();
  }
});

Deno.test("driver: a connection without a client socket (replay) ends when its layer closes the client", async () => {
  const { master } = testMaster();
  const client = new Client({ peername: ["127.0.0.1", 1], sockname: ["127.0.0.1", 2] });
  const driver = new Driver(master.proxy, client, null);
  const layer = new ScriptLayer(driver.context, (e, l) => {
    if (e instanceof Start) l.cmd(new CloseConnection(client));
  });
  await within(driver.run(layer, { clientHooks: false }), "the run to end");
  assert.equal(layer.events.length, 1);
});
