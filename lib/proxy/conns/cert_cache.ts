/**
 * What earlier handshakes learned of servers' certificates (CN, SANs, O), per (verification settings, SNI,
 * host:port), so the TLS layer can forge a certificate for a client without an upstream handshake first.
 * Least recently learned entries go first past {@link CERT_INFO_CAPACITY}.
 *
 * @module
 */

/** Names learned from an upstream certificate, copied into forged ones. */
export interface UpstreamCertInfo {
  cn?: string;
  sans: string[];
  o?: string;
}

/** At most this many servers remembered. */
export const CERT_INFO_CAPACITY = 10_000;

/** The cache. */
export class CertInfoCache {
  #map = new Map<string, UpstreamCertInfo>();

  get(key: string): UpstreamCertInfo | undefined {
    return this.#map.get(key);
  }

  set(key: string, info: UpstreamCertInfo): void {
    this.#map.delete(key);
    this.#map.set(key, info);
    if (this.#map.size > CERT_INFO_CAPACITY) this.#map.delete(this.#map.keys().next().value!);
  }

  clear(): void {
    this.#map.clear();
  }

  get size(): number {
    return this.#map.size;
  }
}
