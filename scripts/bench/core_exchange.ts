/**
 * One keep-alive client connection through the real layer stack of a checkout (regular mode, HTTP/1, the
 * dump tool's addons), without sockets: requests and responses are fed as events, commands are carried out
 * by a minimal in-memory driver (hooks run for real). The modules are loaded from `root`, so two checkouts
 * can run side by side in one process (`scripts/core_microbench.ts --against DIR`).
 *
 * @module
 */

/** A ready connection: `once()` runs one request/response exchange. */
export interface CoreExchange {
  once(): void;
  /** SendData commands seen so far, by side. */
  writes: { client: number; server: number };
}

// The layer stack's types are the checkout's own: only the members used here are described.
interface Cmd {
  conn: unknown;
  name: string;
  flow: unknown;
  complete(r?: unknown): void;
}
type Ctor = new (...args: never[]) => unknown;

/** Set up a connection with the core of the checkout at `root` (an absolute path). */
export async function coreExchange(root: string, opts: { bare?: boolean } = {}): Promise<CoreExchange> {
  const mod = (p: string) => import(new URL(p, `file://${root.replace(/\/?$/, "/")}`).href);
  const { Master } = await mod("lib/master.ts");
  const { dumpAddons } = await mod("lib/cli.ts");
  const { Client, Server } = await mod("lib/flow/connection.ts");
  const { Context } = await mod("lib/proxy/context.ts");
  const commands = await mod("lib/proxy/commands.ts") as Record<string, Ctor>;
  const { DataReceived, Start } = await mod("lib/proxy/events.ts");
  const { RegularMode } = await mod("lib/proxy/layers/modes.ts");
  const master = new Master();
  master.onLog(() => {});
  if (!opts.bare) {
    await master.addAddons(
      ...dumpAddons(master).filter((a: { name?: string }) => a.name !== "proxyserver"),
    );
  }
  await master.options.set(["flow_detail=0", "termlog_verbosity=error"]);
  await master.addons.trigger(
    "configure",
    new Set(master.options.specs().map((s: { name: string }) => s.name)),
  );
  const client = new Client({ peername: ["127.0.0.1", 50000], sockname: ["127.0.0.1", 8080] });
  const ctx = new Context(client, new Server(null), master.proxy);
  const writes = { client: 0, server: 0 };
  let server: unknown = null;
  const root_ = new RegularMode(ctx);
  const { SendData, StartHook, OpenConnection, RequestWakeup } = commands;
  root_.attach((c: Cmd) => {
    if (c instanceof SendData) {
      if (c.conn === client) writes.client++;
      else writes.server++;
    } else if (c instanceof StartHook) {
      const p = c.flow ? master.addons.runHook(c.name, c.flow) : undefined;
      if (p) p.then(() => c.complete());
      else c.complete();
    } else if (c instanceof OpenConnection) {
      server = c.conn;
      (c.conn as { timestampStart: number }).timestampStart = Date.now() / 1000;
      c.complete(null);
    } else if (c instanceof RequestWakeup) master.proxy.timers.wakeup(c);
    // CloseConnection, Log: nothing to do
  });
  root_.handle(new Start());
  const enc = new TextEncoder();
  const req = enc.encode(
    "GET http://127.0.0.1:18098/ HTTP/1.1\r\nHost: 127.0.0.1:18098\r\nUser-Agent: bench\r\n\r\n",
  );
  const body = "x".repeat(1024);
  const resp = enc.encode(
    `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
  );
  return {
    writes,
    once() {
      root_.handle(new DataReceived(client, req));
      root_.handle(new DataReceived(server, resp));
    },
  };
}
