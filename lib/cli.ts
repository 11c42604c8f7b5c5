/**
 * The command line: `mitmdeno [dump] [options] [filter]`. Flags are generated from the declared
 * options like mitmproxy's (`foo_bar` -> `--foo-bar`, bools get `--no-foo-bar`, lists repeat), plus
 * mitmproxy's short aliases. Precedence: `--set` first, then `<confdir>/config.yaml`, then flags.
 */
import { parseArgs } from "node:util";
import { Master } from "./master.ts";
import { OptionsError, type OptionSpec } from "./addons/options.ts";
import { ProxyServer } from "./proxy/server.ts";
import { TermLog } from "../addons/termlog.ts";
import { Dumper } from "../addons/dumper.ts";
import { Block } from "../addons/block.ts";
import { BlockList } from "../addons/blocklist.ts";
import { AntiCache } from "../addons/anticache.ts";
import { AntiComp } from "../addons/anticomp.ts";
import { Comment } from "../addons/comment.ts";
import { Cut } from "../addons/cut.ts";
import { DisableH2C } from "../addons/disable_h2c.ts";
import { Export } from "../addons/export.ts";
import { ProxyAuth } from "../addons/proxyauth.ts";
import { MapRemote } from "../addons/mapremote.ts";
import { MapLocal } from "../addons/maplocal.ts";
import { ModifyBody } from "../addons/modifybody.ts";
import { ModifyHeaders } from "../addons/modifyheaders.ts";
import { StickyAuth } from "../addons/stickyauth.ts";
import { StickyCookie } from "../addons/stickycookie.ts";
import { UpstreamAuth } from "../addons/upstream_auth.ts";
import { UpdateAltSvc } from "../addons/update_alt_svc.ts";
import { ClientPlayback } from "../addons/clientplayback.ts";
import { ServerPlayback } from "../addons/serverplayback.ts";
import { ScriptLoader } from "./addons/script/loader.ts";
import { Save } from "../addons/save.ts";
import { SaveHar } from "../addons/savehar.ts";
import { KeepServing } from "../addons/keepserving.ts";
import { ReadFile } from "../addons/readfile.ts";
import { TlsConfig } from "../addons/tlsconfig.ts";
import { Onboarding } from "../addons/onboarding.ts";
import { ConnectionLog } from "../addons/connection_log.ts";
import { DnsResolver } from "../addons/dns_resolver.ts";
import { CommandHistory } from "../addons/command_history.ts";
import { importCA, loadOrCreateCA } from "./tls/ca.ts";
import { VERSION } from "./version.ts";
import { expandHome } from "./paths.ts";
import { describeError } from "./addons/log.ts";
import { WebAddon } from "../addons/web.ts";
import { Intercept } from "../addons/intercept.ts";
import { describeUnknownOption, didYouMean } from "./mitmproxy_options.ts";

/** Short flags, as mitmdump has them. */
const SHORT: Record<string, string> = {
  listen_port: "p",
  mode: "m",
  rfile: "r",
  scripts: "s",
  save_stream_file: "w",
  ssl_insecure: "k",
  client_replay: "C",
  server_replay: "S",
  map_remote: "M",
  modify_body: "B",
  modify_headers: "H",
};

/** Options with a dedicated flag (the rest are reached with --set), as in mitmdump. */
const FLAGGED = new Set([
  "mode",
  "anticache",
  "showhost",
  "show_ignored_hosts",
  "rfile",
  "scripts",
  "stickycookie",
  "stickyauth",
  "save_stream_file",
  "anticomp",
  "listen_host",
  "listen_port",
  "server",
  "ignore_hosts",
  "allow_hosts",
  "tcp_hosts",
  "upstream_auth",
  "proxyauth",
  "store_streamed_bodies",
  "rawtcp",
  "http2",
  "certs",
  "cert_passphrase",
  "ssl_insecure",
  "client_replay",
  "server_replay",
  "server_replay_extra",
  "server_replay_kill_extra",
  "server_replay_nopop",
  "server_replay_reuse",
  "server_replay_refresh",
  "map_remote",
  "map_local",
  "modify_body",
  "modify_headers",
  "flow_detail",
  "confdir",
  "script_allow",
  "hardump",
]);

const flag = (name: string) => name.replaceAll("_", "-");

/** The built-in addons of the dump tool, in chain order. */
export function dumpAddons(master: Master): object[] {
  // mitmproxy's order: client playback first; scripts before server playback and save (so `-r in -s x -w
  // out` writes what the scripts changed); dumper, keepserving and readfile last.
  return [
    new Block(),
    new BlockList(),
    new AntiCache(),
    new AntiComp(),
    new ClientPlayback(),
    new CommandHistory(),
    new Comment(),
    new Cut(),
    new DisableH2C(),
    new Export(),
    new ProxyAuth(),
    new ProxyServer(master),
    new ConnectionLog(),
    new TlsConfig(master),
    new Onboarding(master),
    new ScriptLoader(master),
    new DnsResolver(),
    new ServerPlayback(),
    new MapRemote(),
    new MapLocal(),
    new ModifyBody(),
    new ModifyHeaders(),
    new StickyAuth(),
    new StickyCookie(),
    new Save(),
    new SaveHar(),
    new UpstreamAuth(),
    new UpdateAltSvc(),
    new Dumper(),
    new KeepServing(),
    new ReadFile(),
  ];
}

/** The subcommands, for --help and for telling a mistyped one from a filter. */
const COMMANDS: [string, string][] = [
  ["dump", "the proxy, printing flows (the mitmdump equivalent; the default)"],
  ["web", "the proxy with a browser UI on 127.0.0.1:8081 (the mitmweb equivalent)"],
  ["ca", "where the CA lives, its fingerprint; --export DIR, --import DIR (reuse a mitmproxy CA)"],
  ["new-addon", "scaffold an addon script and its test: new-addon NAME or new-addon DIR/NAME"],
];

/** A default worth showing in --help (not unset, empty or off). */
function shownDefault(s: OptionSpec): string {
  if (s.name === "listen_port") return " (default: 8080)";
  const d = s.default;
  if (d === null || d === "" || d === false || (Array.isArray(d) && d.length === 0) || s.type === "bool") {
    return "";
  }
  return ` (default: ${Array.isArray(d) ? d.join(", ") : String(d)})`;
}

function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line && line.length + 1 + w.length > width - indent) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join("\n" + " ".repeat(indent));
}

function usage(specs: OptionSpec[]): string {
  const col = 34;
  const width = 110;
  const row = (flag: string, help: string) =>
    flag.length >= col - 2
      ? `  ${flag}\n${" ".repeat(col)}${wrap(help, width, col)}`
      : `  ${flag.padEnd(col - 2)}${wrap(help, width, col)}`;
  const lines = [
    `mitmdeno ${VERSION}: an intercepting HTTP(S) proxy with mitmproxy's options, filters and addon events`,
    "",
    "Usage: mitmdeno [dump] [options] [filter expression]",
    "       mitmdeno web [options]",
    "       mitmdeno ca [--export DIR | --import DIR]",
    "       mitmdeno new-addon NAME | DIR/NAME [--force | --update]",
    "",
    "Commands:",
    ...COMMANDS.map(([c, h]) => row(c, h)),
    "",
    "Options:",
    row("-h, --help", "Show this help."),
    row("--version", "Show the version."),
    row("--options", "Show all options and their current values (YAML)."),
    row("--commands", "Show all commands."),
    row("--set option[=value]", "Set any option (repeat for lists). A bare bool option means true."),
    row("-q, --quiet", "Quiet: flow_detail=0, termlog_verbosity=error."),
    row("-v, --verbose", "Verbose: flow_detail=2, termlog_verbosity=debug."),
    row("-n, --no-server", "Do not start a proxy server."),
  ];
  for (const s of specs.filter((s) => FLAGGED.has(s.name))) {
    const short = SHORT[s.name] ? `-${SHORT[s.name]}, ` : "";
    let f = `${short}--${flag(s.name)}`;
    if (s.type === "bool") f = `${short}--${flag(s.name)} / --no-${flag(s.name)}`;
    else f += s.type.includes("int") ? " N" : s.choices ? ` {${s.choices.join(",")}}` : " VALUE";
    lines.push(row(f, s.help + shownDefault(s)));
  }
  lines.push(
    "",
    "Every option: mitmdeno --options (current values), docs/options.md. Set any with --set name=value or in",
    "<confdir>/config.yaml (shared with mitmproxy: other tools' options are skipped with a warning).",
    "Filter expressions as mitmproxy's (~d example.com & ~m POST): docs/filters.md.",
  );
  return lines.join("\n");
}

function optionsYaml(master: Master): string {
  const lines: string[] = [];
  for (const s of master.options.specs()) {
    lines.push(
      `# ${s.help}${s.choices ? ` Valid values are: ${s.choices.join(", ")}.` : ""} Type ${s.type}.`,
    );
    lines.push(`${s.name}: ${JSON.stringify(master.options.get(s.name))}`, "");
  }
  return lines.join("\n");
}

/** Read `<confdir>/config.yaml` and `config.yml` (later wins) into `--set`-style strings. */
async function readConfigFile(confdir: string): Promise<{ file: string; sets: string[] }[]> {
  const out: { file: string; sets: string[] }[] = [];
  for (const name of ["config.yaml", "config.yml"]) {
    const file = `${expandHome(confdir)}/${name}`;
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    let data: unknown;
    try {
      // loaded only when a config file exists: the package is not part of every start-up
      const { parse } = await import("yaml");
      data = parse(text);
    } catch (e) {
      throw new OptionsError(`Error reading ${file}: ${(e as Error).message}`);
    }
    if (data === null || data === undefined) continue;
    if (typeof data !== "object" || Array.isArray(data)) {
      throw new OptionsError(`${file}: expected a mapping of options`);
    }
    const sets: string[] = [];
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
      if (Array.isArray(v)) {
        if (v.length === 0) sets.push(k);
        for (const x of v) {
          sets.push(
            `${k}=${k === "scripts" && !String(x).startsWith("/") ? `${expandHome(confdir)}/${x}` : x}`,
          );
        }
      } else if (v === null) sets.push(k);
      else sets.push(`${k}=${v}`);
    }
    out.push({ file, sets });
  }
  return out;
}

/** Result of parsing the command line. */
export interface CliResult {
  master: Master;
  /** Exit code if the CLI already finished (help, version, error), else null: run the master. */
  exit: number | null;
}

/** The web tool's addons (mitmweb's): the dump tool's without the dumper and keepserving, plus intercept and web. */
export function webAddons(master: Master): object[] {
  const list = dumpAddons(master).filter((a) => !(a instanceof Dumper) && !(a instanceof KeepServing));
  const readfile = list.findIndex((a) => a instanceof ReadFile);
  list.splice(readfile, 0, new Intercept(), new WebAddon(master));
  return list;
}

/** Build a master from `args` (not started). Prints help/errors itself. */
export async function setupDump(
  args: string[],
  extraAddons: object[] = [],
  tool: (master: Master) => object[] = dumpAddons,
): Promise<CliResult> {
  const master = new Master();
  const termlog = new TermLog();
  master.onLog((e) => termlog.log(e));
  try {
    await master.addAddons(termlog, ...tool(master), ...extraAddons);
  } catch (e) {
    console.error(`mitmdeno: ${(e as Error).message}`);
    return { master, exit: 1 };
  }
  const specs = master.options.specs();
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
    options: { type: "boolean" },
    commands: { type: "boolean" },
    set: { type: "string", multiple: true },
    quiet: { type: "boolean", short: "q" },
    verbose: { type: "boolean", short: "v" },
    "no-server": { type: "boolean", short: "n" },
  };
  for (const s of specs) {
    if (!FLAGGED.has(s.name)) continue;
    const f = flag(s.name);
    if (s.type === "bool") {
      config[f] = { type: "boolean" };
      if (!config[`no-${f}`]) config[`no-${f}`] = { type: "boolean" };
      if (SHORT[s.name]) config[f].short = SHORT[s.name];
    } else {
      config[f] = { type: "string", multiple: s.type === "strs" };
      if (SHORT[s.name]) config[f].short = SHORT[s.name];
    }
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options: config, allowPositionals: true, strict: true });
  } catch (e) {
    console.error(`mitmdeno: ${(e as Error).message}\nRun 'mitmdeno --help' for the list of options.`);
    return { master, exit: 2 };
  }
  const v = parsed.values as Record<string, unknown>;
  if (v.help) {
    console.log(usage(specs));
    return { master, exit: 0 };
  }
  if (v.version) {
    console.log(
      `mitmdeno ${VERSION}\nDeno ${Deno.version.deno}, V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript}`,
    );
    return { master, exit: 0 };
  }
  try {
    // 1. --set
    const sourceOf = new Map<string, string>();
    const warned = new Set<string>();
    await master.options.set((v.set as string[] | undefined) ?? []);
    // 2. config file
    const confdir = (v.confdir as string | undefined) ?? master.options.confdir;
    for (const { file, sets } of await readConfigFile(confdir)) {
      // keys nobody declared: another mitmproxy tool's (web_port, console_*) or one mitmdeno lacks are
      // skipped with a warning naming the file; others wait for a script to declare them (checked below)
      const kept: string[] = [];
      for (const entry of sets) {
        const name = entry.split("=", 1)[0];
        if (!master.options.has(name)) {
          const why = describeUnknownOption(name, master.options.specs().map((o) => o.name));
          if (why.kind !== "unknown") {
            if (!warned.has(name)) master.log.warn(`${file}: ${why.message}; ignored.`);
            warned.add(name);
            continue;
          }
          sourceOf.set(name, file);
        }
        kept.push(entry);
      }
      try {
        await master.options.set(kept);
      } catch (e) {
        throw new OptionsError(`${file}: ${(e as Error).message}`);
      }
    }
    // 3. dedicated flags
    const updates: Record<string, unknown> = {};
    const sets: string[] = [];
    for (const s of specs) {
      if (!FLAGGED.has(s.name)) continue;
      const f = flag(s.name);
      if (s.type === "bool") {
        if (v[f]) updates[s.name] = true;
        if (v[`no-${f}`]) updates[s.name] = false;
      } else if (v[f] !== undefined) {
        const val = v[f];
        if (Array.isArray(val)) { for (const x of val) sets.push(`${s.name}=${x}`); }
        else sets.push(`${s.name}=${val}`);
      }
    }
    if (v["no-server"]) updates.server = false;
    if (v.quiet) {
      updates.flow_detail = 0;
      updates.termlog_verbosity = "error";
    }
    if (v.verbose) {
      updates.flow_detail = 2;
      updates.termlog_verbosity = "debug";
    }
    const words = parsed.positionals.filter((p) => p !== "dump");
    const dashes = args.indexOf("--");
    if (
      words.length && ["web", "ca", "new-addon"].includes(words[0]) &&
      (dashes === -1 || args.indexOf(words[0]) < dashes)
    ) {
      const rest = args.filter((a) => a !== words[0]).join(" ");
      throw new OptionsError(
        `"${words[0]}" is a command: write it first: \`mitmdeno ${words[0]}${rest ? ` ${rest}` : ""}\` ` +
          `(to filter flows by URL with this word: \`"~u ${words[0]}"\`)`,
      );
    }
    const filter = words.join(" ");
    for (const name of ["dumper_filter", "save_stream_filter", "readfile_filter", "view_filter"]) {
      if (filter && master.options.has(name)) updates[name] = filter;
    }
    if (sets.length) await master.options.set(sets, false);
    await master.options.update(updates);
    if (master.options.deferredNames.length) {
      const declared = master.options.specs().map((o) => o.name);
      throw new OptionsError(
        master.options.deferredNames.map((name) => {
          const why = describeUnknownOption(name, declared).message;
          return `${sourceOf.get(name) ?? "--set"}: ${why}`;
        }).join("\n"),
      );
    }
  } catch (e) {
    if (e instanceof OptionsError) {
      console.error(`mitmdeno: ${e.message}`);
      return { master, exit: 1 };
    }
    throw e;
  }
  if (v.options) {
    console.log(optionsYaml(master));
    return { master, exit: 0 };
  }
  if (v.commands) {
    for (const c of master.commands.list()) console.log(`${c.path.padEnd(40)} ${c.help}`);
    return { master, exit: 0 };
  }
  return { master, exit: null };
}

/** Run the dump tool until SIGINT/SIGTERM. Returns the exit code. */
export async function runDump(
  args: string[],
  tool: (master: Master) => object[] = dumpAddons,
): Promise<number> {
  const { master, exit } = await setupDump(args, [], tool);
  if (exit !== null) return exit;
  const stop = () => master.shutdown();
  // Safety net: a stray rejection or emitter error in one connection must never take the proxy down.
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    master.log.error(`internal error (please report it): ${describeError(e.reason)}`);
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    master.log.error(`internal error (please report it): ${describeError(e.error ?? e.message)}`);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    await master.run();
  } catch (e) {
    if (e instanceof OptionsError) {
      console.error(`mitmdeno: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  }
  return master.exitCode;
}

/** `mitmdeno ca [--confdir DIR] [--export DIR]`: where the CA is, its fingerprint; export public forms. */
async function runCa(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        confdir: { type: "string" },
        set: { type: "string", multiple: true },
        export: { type: "string" },
        import: { type: "string" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
  } catch (e) {
    console.error(`mitmdeno ca: ${(e as Error).message}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    console.log(
      "Usage: mitmdeno ca [--confdir DIR] [--export DIR] [--import DIR|FILE [--force]] [--set cert_passphrase=P]\n\n" +
        "Shows where the certificate authority lives (created on first use) and its SHA-256 fingerprint.\n" +
        "--export DIR   writes the public forms (PEM, DER .cer, PKCS#12 without key) into DIR.\n" +
        "--import DIR   makes a mitmproxy CA (DIR/mitmproxy-ca.pem, e.g. ~/.mitmproxy, or a key+cert PEM\n" +
        "               file) the mitmdeno CA of the conf dir, so devices that trust it need nothing new;\n" +
        "               an existing mitmdeno CA is replaced only with --force.\n" +
        "A conf dir that holds mitmproxy-ca.pem and no mitmdeno CA (--confdir ~/.mitmproxy) uses it as is.",
    );
    return 0;
  }
  let confdir = v.confdir ?? "~/.mitmdeno";
  let passphrase: string | null = null; // an encrypted CA key (mitmproxy's cert_passphrase)
  for (const s of v.set ?? []) {
    if (s.startsWith("confdir=")) confdir = s.slice(8);
    if (s.startsWith("cert_passphrase=")) passphrase = s.slice(16);
  }
  const dir = expandHome(confdir);
  try {
    if (v.import) {
      const imported = await importCA(expandHome(v.import), dir, { force: v.force, passphrase });
      console.log(`Imported the CA into ${imported.paths.pem}`);
    }
    const ca = await loadOrCreateCA(dir, { passphrase });
    console.log(`CA certificate: ${ca.paths.certPem}`);
    console.log(`CA key + cert:  ${ca.paths.pem} (private, mode 0600)`);
    console.log(`SHA-256 fingerprint: ${ca.fingerprintSha256}`);
    console.log(`SPKI SHA-256 (Chromium --ignore-certificate-errors-spki-list): ${ca.spkiSha256Base64}`);
    console.log(`Valid until: ${ca.notAfter.toISOString()}${ca.expired ? " (EXPIRED)" : ""}`);
    if (v.export) {
      const out = await ca.exportTo(expandHome(v.export));
      console.log(`Exported: ${out.certPem}, ${out.certCer}, ${out.certP12}`);
    }
    return 0;
  } catch (e) {
    console.error(`mitmdeno ca: ${(e as Error).message}`);
    return 1;
  }
}

/** What to say for a first word that is not a command (null: it is not command-like, e.g. a filter). */
export function unknownCommand(word: string): string | null {
  if (!/^[a-z][a-z0-9_-]*$/i.test(word) || COMMANDS.some(([c]) => c === word)) return null;
  const hints: Record<string, string> = {
    console: "mitmproxy's console UI has no mitmdeno equivalent; the browser UI is `mitmdeno web`",
    mitmproxy: "the console UI has no mitmdeno equivalent; the browser UI is `mitmdeno web`",
    mitmweb: "the browser UI is `mitmdeno web`",
    mitmdump: "`mitmdeno` (or `mitmdeno dump`) is mitmdump",
    cert: "did you mean `mitmdeno ca`?",
    certs: "did you mean `mitmdeno ca`?",
    certificate: "did you mean `mitmdeno ca`?",
    help: "see `mitmdeno --help`",
    version: "see `mitmdeno --version`",
  };
  const guess = didYouMean(word.replaceAll("_", "-"), COMMANDS.map(([c]) => c));
  const hint = hints[word.toLowerCase()] ?? (guess ? `did you mean \`mitmdeno ${guess}\`?` : "");
  const sentence = `"${word}" is not a command${hint ? `: ${hint}` : ""}`;
  return `mitmdeno: ${sentence}${sentence.endsWith("?") ? "" : "."}\n` +
    `Commands: ${COMMANDS.map(([c]) => c).join(", ")} (dump is the default; see mitmdeno --help).\n` +
    `To filter flows by URL with this word, write \`mitmdeno "~u ${word}"\` or \`mitmdeno -- ${word}\`.`;
}

/** Entry point: dispatch subcommands. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "dump":
      return await runDump(rest);
    case "web":
      return await runDump(rest, webAddons);
    case "ca":
      return await runCa(rest);
    case "new-addon":
      return await (await import("./scaffold.ts")).newAddonMain(rest);
    default: {
      const wrong = cmd === undefined ? null : unknownCommand(cmd);
      if (wrong) {
        console.error(wrong);
        return 2;
      }
      return await runDump(args);
    }
  }
}
