/**
 * The tlsconfig addon (mitmproxy's `addons/tlsconfig.py`): owns the certificate authority of the conf
 * dir (created on first start, loaded once; a corrupt CA file is a start-up error, never replaced), the
 * leaf certificate store, and how servers are verified (`ssl_insecure`,
 * `ssl_verify_upstream_trusted_ca`). It plugs the TLS interception layer into the proxy core by
 * registering `master.proxy.layers.tls`.
 * @module
 */
import tls from "node:tls";
import type { Loader } from "../lib/addons/manager.ts";
import type { Master } from "../lib/master.ts";
import { ctx as globalCtx } from "../lib/addons/ctx.ts";
import { OptionsError } from "../lib/addons/options.ts";
import { type CertAuthority, loadOrCreateCA } from "../lib/tls/ca.ts";
import { CertStore, type LeafKeyType } from "../lib/tls/certs.ts";
import { fromPem } from "../lib/tls/x509.ts";
import { DEFAULT_TLS_MAX, DEFAULT_TLS_MIN, TLS_VERSIONS, versionRange } from "../lib/tls/versions.ts";
import { type CipherPolicy, cipherPolicy, DENO_TLS12_SUITES } from "../lib/tls/ciphers.ts";
import { addCustomCerts, loadClientCerts, readTrustedDir } from "../lib/tls/custom_certs.ts";
import { TlsLayer, type TlsLayerConfig } from "../lib/proxy/layers/tls.ts";
import type { LayerFactories } from "../lib/proxy/core.ts";
import type { UpstreamTlsConfig } from "../lib/proxy/conns/manager.ts";

import { expandHome } from "../lib/paths.ts";

/** The default trust store of node:tls (bundled Mozilla roots plus the system's). */
function defaultRoots(): string[] {
  const get = (tls as unknown as { getCACertificates?: (t: string) => string[] }).getCACertificates;
  return get ? get("default") : [...tls.rootCertificates];
}

/**
 * The default store as it was before this module extended it (node's default store is per process, so a
 * configuration without extra CAs must put it back rather than keep the last one's additions).
 */
const ORIGINAL_ROOTS: string[] = defaultRoots();

/**
 * The extra CAs of every configured TlsConfig in this process. The default store is per process, so it holds
 * the original roots plus the union of these (several masters in one process, as in tests, each keep theirs).
 */
const EXTRA_CAS = new Map<object, string[]>();

/** Point node's default store at the original roots plus every instance's extra CAs; false if Deno can't. */
function applyDefaultStore(): boolean {
  const setDefault = (tls as unknown as { setDefaultCACertificates?: (c: string[]) => void })
    .setDefaultCACertificates;
  if (!setDefault) return false;
  const extra = new Set<string>();
  for (const cas of EXTRA_CAS.values()) for (const c of cas) extra.add(c);
  if (extra.size === 0 && defaultRoots().length === ORIGINAL_ROOTS.length) return true;
  setDefault([...ORIGINAL_ROOTS, ...extra]);
  return true;
}

/** Owns the CA and the leaf store; registers the TLS layer. */
export class TlsConfig {
  readonly name = "tlsconfig";
  #master: Master | null;
  /** The loaded CA (null until configured). */
  ca: CertAuthority | null = null;
  /** The leaf store (null until configured). */
  certs: CertStore | null = null;
  #confdir: string | null = null;
  #layerConfig: TlsLayerConfig | null = null;
  readonly #factory: NonNullable<LayerFactories["tls"]>;

  constructor(master?: Master) {
    this.#master = master ?? null;
    this.#factory = (ctx, opts) => {
      if (!this.#layerConfig) throw new Error("the CA is not loaded");
      return new TlsLayer(ctx, this.#layerConfig, opts);
    };
  }

  get #m(): Master {
    return this.#master ?? (globalCtx.master as Master);
  }

  load(loader: Loader): void {
    loader.addOption(
      "ssl_verify_upstream_trusted_ca",
      "optional str",
      null,
      "Path to a PEM formatted trusted CA certificate (added to the default roots for server verification).",
    );
    loader.addOption(
      "ssl_verify_upstream_trusted_confdir",
      "optional str",
      null,
      "Path to a directory of trusted CA certificates for upstream server verification prepared using the " +
        "c_rehash tool (every PEM certificate in it is added to the default roots).",
    );
    loader.addOption(
      "key_size",
      "int",
      2048,
      "TLS key size for the certificate authority (when it is created).",
    );
    loader.addOption(
      "leaf_key_type",
      "str",
      "ec",
      "Key type of the certificates shown to clients: ec (P-256, fast) or rsa (2048, as mitmproxy).",
      ["ec", "rsa"],
    );
    loader.addOption(
      "certs",
      "strs",
      [],
      'SSL certificates of the form "[domain=]path". The domain may include a wildcard, and is equal to "*" ' +
        "if not specified. The file at path is a certificate in PEM format. If a private key is included in " +
        "the PEM, it is used, else the key of the CA in the conf dir is used. The PEM file should contain the " +
        "full certificate chain, with the leaf certificate as the first entry.",
    );
    loader.addOption(
      "cert_passphrase",
      "optional str",
      null,
      "Passphrase for decrypting the private keys of the CA, of --certs and of client_certs files. Passing it " +
        "on the command line makes it visible in the process list: set it in config.yaml instead.",
      undefined,
      { secret: true },
    );
    loader.addOption(
      "client_certs",
      "optional str",
      null,
      "Client certificate file (key and chain, PEM) presented to every server that asks, or a directory of " +
        "<server name>.pem files (by SNI, else the address). Read when set.",
    );
    loader.addOption(
      "ciphers_client",
      "optional str",
      null,
      "Set supported ciphers for client <-> mitmdeno connections using OpenSSL syntax (TLS 1.2; Deno's TLS " +
        "negotiates ECDHE with AES-GCM or ChaCha20 only, and another negotiated cipher fails the handshake).",
    );
    loader.addOption(
      "ciphers_server",
      "optional str",
      null,
      "Set supported ciphers for mitmdeno <-> server connections using OpenSSL syntax (TLS 1.2; as " +
        "ciphers_client, a server choosing another cipher fails the handshake).",
    );
    for (const side of ["client", "server"] as const) {
      for (const [which, def] of [["min", DEFAULT_TLS_MIN], ["max", DEFAULT_TLS_MAX]] as const) {
        loader.addOption(
          `tls_version_${side}_${which}`,
          "str",
          def,
          `Set the ${which === "min" ? "minimum" : "maximum"} TLS version for ${side} connections ` +
            "(Deno's TLS speaks TLS1_2 and TLS1_3).",
          TLS_VERSIONS,
        );
      }
    }
    loader.addOption(
      "add_upstream_certs_to_client_chain",
      "bool",
      false,
      "Add all certificates of the upstream server to the certificate chain that will be served to the " +
        "proxy client, as extras (needs upstream_cert).",
    );
  }

  async configure(updated: Set<string>): Promise<void> {
    const o = this.#m.options;
    const any = (...names: string[]) => names.some((n) => updated.has(n));
    const passphrase = (o.cert_passphrase as string | null) ?? null;
    if (o.add_upstream_certs_to_client_chain && !o.upstream_cert) {
      throw new OptionsError(
        'Option "add_upstream_certs_to_client_chain" requires the upstream_cert option to be enabled.',
      );
    }
    // everything is computed first and applied at the end: an OptionsError leaves the old state whole
    let ca = this.ca;
    let confdir = this.#confdir;
    if (any("confdir", "leaf_key_type", "cert_passphrase") || !this.ca) {
      const dir = expandHome(o.confdir as string);
      if (dir !== this.#confdir || !this.ca || any("leaf_key_type", "cert_passphrase")) {
        try {
          ca = this.ca && dir === this.#confdir && !updated.has("cert_passphrase")
            ? this.ca
            : await loadOrCreateCA(dir, { keySize: o.key_size, passphrase });
        } catch (e) {
          const opt = /cert_passphrase/.test((e as Error).message) ? "cert_passphrase" : "confdir";
          throw new OptionsError(`Option "${opt}": ${(e as Error).message}`);
        }
        const prefix = ca.paths.pem.slice(ca.paths.pem.lastIndexOf("/") + 1).replace(/\.pem$/, "");
        if (ca.expired) {
          this.#m.log.warn(
            `The certificate authority in ${dir} has expired: delete ${dir}/${prefix}* to create a new one.`,
          );
        }
        if (prefix === "mitmproxy-ca" && ca !== this.ca) {
          this.#m.log.info(`Using mitmproxy's CA: ${ca.paths.pem}`);
        }
        confdir = dir;
      }
    }
    if (!ca) throw new Error("unreachable: no CA");
    let certs = this.certs;
    if (
      ca !== this.ca || !certs ||
      any("leaf_key_type", "certs", "cert_passphrase", "tls_version_client_min", "tls_version_client_max")
    ) {
      let range;
      try {
        range = versionRange(o.tls_version_client_min, o.tls_version_client_max, "client");
      } catch (e) {
        throw new OptionsError((e as Error).message);
      }
      certs = new CertStore(ca, { leafKey: o.leaf_key_type as LeafKeyType, contextOptions: range });
      try {
        await addCustomCerts(
          certs,
          o.certs as string[],
          ca.key.export({ type: "pkcs8", format: "pem" }) as string,
          passphrase,
        );
      } catch (e) {
        throw new OptionsError(`Option "certs": ${(e as Error).message}`);
      }
    }
    let clientCiphers = this.#layerConfig?.clientCiphers ?? null;
    if (any("ciphers_client", "tls_version_client_max") || !this.#layerConfig) {
      clientCiphers = this.#policy("ciphers_client", o.ciphers_client, o.tls_version_client_max);
    }
    const upstream = !this.#upstreamSet || any(
        "ssl_insecure",
        "ssl_verify_upstream_trusted_ca",
        "ssl_verify_upstream_trusted_confdir",
        "tls_version_server_min",
        "tls_version_server_max",
        "ciphers_server",
        "client_certs",
        "cert_passphrase",
      )
      ? await this.#upstreamConfig(passphrase)
      : null;
    // apply
    this.ca = ca;
    this.#confdir = confdir;
    this.certs = certs;
    this.#layerConfig = {
      certs,
      untrustedWarned: this.#layerConfig?.untrustedWarned ?? new Set(),
      onboardingUrl: `http://${o.has("onboarding_host") ? o.onboarding_host : "mitm.it"}/`,
      clientCiphers,
      clientTls13: o.tls_version_client_max === "UNBOUNDED" || o.tls_version_client_max === "TLS1_3",
      addUpstreamCerts: !!o.add_upstream_certs_to_client_chain,
    };
    if (upstream) {
      let ca: string[] | undefined;
      if (upstream.extraCas.length) EXTRA_CAS.set(this, upstream.extraCas);
      else EXTRA_CAS.delete(this);
      // Deno's node:tls parses a `ca` list on every connection (~18 ms with ~300 roots, measured),
      // while the default store is prepared once: extend the default store instead, when possible.
      if (!applyDefaultStore() && upstream.extraCas.length) ca = [...ORIGINAL_ROOTS, ...upstream.extraCas];
      // reuse: idle server TLS connections serve later client connections (lib/proxy/conns/idle_pool.ts)
      this.#m.proxy.conns.setTlsConfig({ ...upstream.config, ca });
      this.#upstreamSet = true;
    }
    this.#m.proxy.layers.tls = this.#factory;
  }

  #upstreamSet = false;

  /** An evaluated cipher string, or null; warns about suites Deno cannot speak. */
  #policy(name: string, spec: string | null, maxVersion: string): CipherPolicy | null {
    if (!spec) return null;
    let p: CipherPolicy;
    try {
      p = cipherPolicy(spec);
    } catch (e) {
      throw new OptionsError(`Option "${name}": ${(e as Error).message}`);
    }
    if (!p.usable.length) {
      if (maxVersion === "TLS1_2") {
        throw new OptionsError(
          `Option "${name}": none of ${p.unusable.join(", ")} can be negotiated by Deno's TLS ` +
            `(it has ${[...DENO_TLS12_SUITES].join(", ")}), and TLS 1.3 is off`,
        );
      }
      this.#m.log.warn(
        `Option "${name}": no TLS 1.2 cipher of "${spec}" is available in Deno's TLS: only TLS 1.3 will work`,
      );
    } else if (p.unusable.length) {
      this.#m.log.info(
        `Option "${name}": ${p.unusable.join(", ")} are not available in Deno's TLS; using ${
          p.usable.join(", ")
        }`,
      );
    }
    return p;
  }

  /** The settings for server connections, from the options (nothing applied yet). */
  async #upstreamConfig(
    passphrase: string | null,
  ): Promise<{ config: UpstreamTlsConfig; extraCas: string[] }> {
    const o = this.#m.options;
    let range;
    try {
      range = versionRange(o.tls_version_server_min, o.tls_version_server_max, "server");
    } catch (e) {
      throw new OptionsError((e as Error).message);
    }
    const ciphers = this.#policy("ciphers_server", o.ciphers_server, o.tls_version_server_max);
    let clientCert = null;
    if (o.client_certs) {
      try {
        clientCert = await loadClientCerts(o.client_certs, passphrase);
      } catch (e) {
        throw new OptionsError(`Option "client_certs": ${(e as Error).message}`);
      }
    }
    const extra: string[] = [];
    const file = o.ssl_verify_upstream_trusted_ca as string | null;
    if (file) {
      let text: string;
      try {
        text = await Deno.readTextFile(expandHome(file));
      } catch (e) {
        throw new OptionsError(
          `Option "ssl_verify_upstream_trusted_ca": cannot read ${file}: ${(e as Error).message}`,
        );
      }
      const certs = fromPem(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.pem);
      if (!certs.length) {
        throw new OptionsError(`Option "ssl_verify_upstream_trusted_ca": no PEM certificate in ${file}`);
      }
      extra.push(...certs);
    }
    const dir = o.ssl_verify_upstream_trusted_confdir as string | null;
    if (dir) {
      try {
        extra.push(...await readTrustedDir(dir));
      } catch (e) {
        throw new OptionsError(`Option "ssl_verify_upstream_trusted_confdir": ${(e as Error).message}`);
      }
    }
    const config: UpstreamTlsConfig = {
      insecure: !!o.ssl_insecure,
      alpn: ["http/1.1"],
      reuse: true,
      ...range,
      ciphers,
      clientCert,
    };
    return { config, extraCas: extra };
  }

  done(): void {
    if (EXTRA_CAS.delete(this)) applyDefaultStore();
    if (this.#m.proxy.layers.tls === this.#factory) delete this.#m.proxy.layers.tls;
    this.#m.proxy.conns.closeIdle(true);
  }
}
