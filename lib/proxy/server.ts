/**
 * The proxyserver addon: validates the server options and runs one listener per mode
 * (mitmproxy's `proxyserver.py`).
 */
import net from "node:net";
import type { Master } from "../master.ts";
import { OptionsError } from "../addons/options.ts";
import type { Loader } from "../addons/manager.ts";
import { type ModeSpec, parseMode } from "./mode.ts";
import { Driver } from "./driver.ts";
import { parseSize } from "../http/bytes.ts";
import { hostPort } from "../http/message.ts";
import { injectTcp, injectWebSocket } from "./inject.ts";

/** Runs the proxy listeners. */
export class ProxyServer {
  readonly name = "proxyserver";
  readonly #master: Master;
  #servers: net.Server[] = [];
  #sockets = new Set<net.Socket>();
  #modes: ModeSpec[] = [];
  /** Addresses actually bound, e.g. for listen_port 0. */
  readonly listenAddresses: { mode: string; host: string; port: number }[] = [];

  constructor(master: Master) {
    this.#master = master;
  }

  load(loader: Loader): void {
    loader.addCommand(
      "proxyserver.active_connections",
      () => this.#sockets.size,
      "Number of open client connections.",
    );
    loader.addCommand(
      "inject.websocket",
      (flow, toClient, message, isText = true) =>
        injectWebSocket(this.#master.log, flow, toClient, message, isText),
      "Inject a WebSocket message into a live flow: inject.websocket FLOW TO_CLIENT MESSAGE [IS_TEXT].",
    );
    loader.addCommand(
      "inject.tcp",
      (flow, toClient, message) => injectTcp(this.#master.log, flow, toClient, message),
      "Inject a TCP message into a live flow: inject.tcp FLOW TO_CLIENT MESSAGE.",
    );
  }

  configure(updated: Set<string>): void {
    const o = this.#master.options;
    if (updated.has("mode")) {
      const modes: ModeSpec[] = [];
      for (const m of o.mode as string[]) {
        let spec: ModeSpec;
        try {
          spec = parseMode(m);
        } catch (e) {
          throw new OptionsError(`Option "mode": invalid mode "${m}": ${(e as Error).message}`);
        }
        const known = this.#master.proxy.modes;
        if (!known.has(spec.kind)) {
          throw new OptionsError(
            `Option "mode": ${spec.kind} mode is not supported by mitmdeno (supported: ${
              [...known.values()].map((d) => d.syntax).join(", ")
            })`,
          );
        }
        modes.push(spec);
      }
      const seen = new Set<string>();
      for (const m of modes) {
        const key = `${m.listenHost ?? o.listen_host}:${this.#port(m)}`;
        // port 0: each listener gets its own ephemeral port
        if (seen.has(key) && this.#port(m) !== 0) {
          throw new OptionsError(`Option "mode": two modes listen on the same address ${key}`);
        }
        seen.add(key);
      }
      this.#modes = modes;
    }
    for (const name of ["body_size_limit", "stream_large_bodies"]) {
      if (!updated.has(name) || o[name] === null) continue;
      try {
        parseSize(o[name]);
      } catch (e) {
        throw new OptionsError(`Option "${name}": ${(e as Error).message}`);
      }
    }
    if (updated.has("connect_addr") && o.connect_addr && net.isIP(o.connect_addr) === 0) {
      throw new OptionsError(
        `Option "connect_addr": invalid connection address "${o.connect_addr}", specify a valid IP address.`,
      );
    }
    if (
      updated.has("listen_port") && o.listen_port !== null && (o.listen_port < 0 || o.listen_port > 65535)
    ) {
      throw new OptionsError(`Option "listen_port": ${o.listen_port} is not a port number (0-65535)`);
    }
    for (
      const name of [
        "tcp_timeout",
        "connect_timeout",
        "http_header_timeout",
        "http_response_timeout",
        "max_header_size",
        "max_header_count",
      ]
    ) {
      if (updated.has(name) && o[name] < 0) throw new OptionsError(`Option "${name}": must not be negative`);
    }
    for (const name of ["ignore_hosts", "allow_hosts", "tcp_hosts"]) {
      if (!updated.has(name)) continue;
      for (const p of o[name] as string[]) {
        try {
          new RegExp(p, "i");
        } catch (e) {
          throw new OptionsError(
            `Option "${name}": invalid regular expression "${p}": ${(e as Error).message}`,
          );
        }
      }
    }
  }

  async running(): Promise<void> {
    if (!this.#master.options.server) return;
    for (const mode of this.#modes) await this.#listen(mode);
  }

  /** The port of a mode's listener: from the spec, else `listen_port`, else the mode's default. */
  #port(mode: ModeSpec): number {
    const def = this.#master.proxy.modes.get(mode.kind);
    return mode.listenPort ?? this.#master.options.listen_port ?? def?.defaultPort ?? 8080;
  }

  #listen(mode: ModeSpec): Promise<void> {
    const o = this.#master.options;
    const host = mode.listenHost ?? (o.listen_host || "0.0.0.0");
    const port = this.#port(mode);
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
      const core = this.#master.proxy;
      const driver = Driver.accept(core, socket, mode);
      driver.run(core.modes.get(mode.kind)!.layer(driver.context, mode)).catch((e) =>
        this.#master.log.error(`connection handler failed: ${e?.stack ?? e}`)
      );
    });
    return new Promise((resolve) => {
      // one error line naming the option to change; the start-up error check then exits with status 1
      server.once("error", (e: Error & { code?: string }) => {
        this.#master.log.error(`Cannot listen on ${hostPort(host, port)}: ${listenError(e, host, port)}`);
        resolve();
      });
      server.listen({ host, port }, () => {
        const addr = server.address() as net.AddressInfo;
        this.#servers.push(server);
        this.listenAddresses.push({ mode: mode.full, host: addr.address, port: addr.port });
        this.#master.proxy.listeningPorts.add(addr.port);
        const what = this.#master.proxy.modes.get(mode.kind)!.label(mode);
        this.#master.log.info(
          `${what} listening at ${
            host === "0.0.0.0" && !(mode.listenHost ?? o.listen_host)
              ? `*:${addr.port}`
              : hostPort(addr.address, addr.port)
          }.`,
        );
        server.on("error", (e) => this.#master.log.error(`listener error: ${e.message}`));
        resolve();
      });
    });
  }

  done(): Promise<void> {
    for (const a of this.listenAddresses) this.#master.proxy.listeningPorts.delete(a.port);
    for (const s of this.#sockets) s.destroy();
    return Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => {
      this.#servers = [];
    });
  }
}

/** Why a listen failed, blaming the option the user should change. */
function listenError(e: Error & { code?: string }, host: string, port: number): string {
  switch (e.code) {
    case "EADDRINUSE":
      return `address already in use (listen_port ${port}: is another proxy running? choose another port with -p)`;
    case "EACCES":
      return `permission denied (listen_port ${port}: ports below 1024 need privileges; choose another with -p)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EADDRNOTAVAIL":
    case "EINVAL":
      return `listen_host "${host}" is not an address of this machine (${e.code})`;
    default:
      return e.message;
  }
}
