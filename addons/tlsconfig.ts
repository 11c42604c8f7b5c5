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
import { TlsLayer, type TlsLayerConfig } from "../lib/proxy/layers/tls.ts";
import type { LayerFactories } from "../lib/proxy/core.ts";

import { expandHome } from "../lib/paths.ts";

/** The default trust store of node:tls (bundled Mozilla roots plus the system's). */
function defaultRoots(): string[] {
  const get = (tls as unknown as { getCACertificates?: (t: string) => string[] }).getCACertificates;
  return get ? get("default") : [...tls.rootCertificates];
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
  }

  async configure(updated: Set<string>): Promise<void> {
    const o = this.#m.options;
    if (updated.has("confdir") || updated.has("leaf_key_type") || !this.ca) {
      const dir = expandHome(o.confdir as string);
      if (dir !== this.#confdir || !this.ca || updated.has("leaf_key_type")) {
        let ca: CertAuthority;
        try {
          ca = this.ca && dir === this.#confdir
            ? this.ca
            : await loadOrCreateCA(dir, { keySize: o.key_size });
        } catch (e) {
          throw new OptionsError(`Option "confdir": ${(e as Error).message}`);
        }
        const prefix = ca.paths.pem.slice(ca.paths.pem.lastIndexOf("/") + 1).replace(/\.pem$/, "");
        if (ca.expired) {
          this.#m.log.warn(
            `The certificate authority in ${dir} has expired: delete ${dir}/${prefix}* to create a new one.`,
          );
        }
        if (prefix === "mitmproxy-ca") this.#m.log.info(`Using mitmproxy's CA: ${ca.paths.pem}`);
        this.ca = ca;
        this.#confdir = dir;
        this.certs = new CertStore(ca, { leafKey: o.leaf_key_type as LeafKeyType });
        this.#layerConfig = {
          certs: this.certs,
          untrustedWarned: new Set(),
          onboardingUrl: `http://${o.has("onboarding_host") ? o.onboarding_host : "mitm.it"}/`,
        };
      }
    }
    if (updated.has("ssl_insecure") || updated.has("ssl_verify_upstream_trusted_ca")) {
      let ca: string[] | undefined;
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
        ca = [...defaultRoots(), ...certs];
        // Deno's node:tls parses a `ca` list on every connection (~18 ms with ~300 roots, measured),
        // while the default store is prepared once: extend the default store instead, when possible.
        const setDefault = (tls as unknown as { setDefaultCACertificates?: (c: string[]) => void })
          .setDefaultCACertificates;
        if (setDefault) {
          setDefault(ca);
          ca = undefined;
        }
      }
      // reuse: idle server TLS connections serve later client connections (lib/proxy/server_conn.ts)
      // reuse: idle server TLS connections serve later client connections (lib/proxy/conns/idle_pool.ts)
      this.#m.proxy.conns.setTlsConfig({ insecure: !!o.ssl_insecure, ca, alpn: ["http/1.1"], reuse: true });
    }
    if (updated.has("onboarding_host") && this.#layerConfig) {
      this.#layerConfig.onboardingUrl = `http://${o.onboarding_host}/`;
    }
    this.#m.proxy.layers.tls = this.#factory;
  }

  done(): void {
    if (this.#m.proxy.layers.tls === this.#factory) delete this.#m.proxy.layers.tls;
    this.#m.proxy.conns.closeIdle(true);
  }
}
