/**
 * mitmproxy's DNS options, accepted so a shared config.yaml or `--set` line works: `dns_name_servers`,
 * `dns_use_hosts_file` (mitmproxy's `dns_resolver.py`) and the 8.x `dns_server`, `dns_listen_host`,
 * `dns_listen_port`, `dns_mode`. mitmdeno has no DNS mode yet, so they have no effect; a value other than
 * the default is noted once in the log.
 */
import type { Loader } from "../lib/addons/manager.ts";
import { ctx } from "../lib/addons/ctx.ts";

const NOTE = "Accepted for mitmproxy compatibility; no effect until mitmdeno has a DNS mode.";

/** The dns_* options (no DNS mode yet). */
export class DnsResolver {
  readonly name = "dnsresolver";

  load(loader: Loader): void {
    loader.addOption(
      "dns_use_hosts_file",
      "bool",
      true,
      `Use the hosts file for DNS lookups in regular DNS mode/wireguard mode. ${NOTE}`,
    );
    loader.addOption(
      "dns_name_servers",
      "strs",
      [],
      `Name servers to use for lookups in regular DNS mode. Default: operating system's name servers. ${NOTE}`,
    );
    loader.addOption("dns_server", "bool", false, `Start a DNS server (mitmproxy 8). ${NOTE}`);
    loader.addOption(
      "dns_listen_host",
      "str",
      "",
      `Address to bind the DNS server to (mitmproxy 8). ${NOTE}`,
    );
    loader.addOption("dns_listen_port", "int", 53, `DNS server service port (mitmproxy 8). ${NOTE}`);
    loader.addOption("dns_mode", "str", "regular", `The DNS server mode (mitmproxy 8). ${NOTE}`);
  }

  configure(updated: Set<string>): void {
    for (const name of updated) {
      if (!name.startsWith("dns_") || !ctx.options.has(name)) continue;
      if (JSON.stringify(ctx.options.get(name)) === JSON.stringify(ctx.options.default(name))) continue;
      ctx.log.info(`Option "${name}" is accepted but has no effect: mitmdeno has no DNS mode yet.`);
    }
  }
}
