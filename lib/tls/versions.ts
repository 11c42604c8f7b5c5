/**
 * TLS version bounds with mitmproxy's names (`tls_version_client_min` and friends: UNBOUNDED, SSL3, TLS1,
 * TLS1_1, TLS1_2, TLS1_3) translated to node:tls `minVersion`/`maxVersion`.
 *
 * Deno's node:tls (rustls) speaks TLS 1.2 and 1.3 only: a lower minimum is accepted (it allows everything
 * Deno can do), a maximum below TLS 1.2 could never shake hands and is refused with the reason.
 * @module
 */
import type { SecureVersion } from "node:tls";

/** mitmproxy's version names, lowest first (net/tls.py `Version`). */
export const TLS_VERSIONS = ["UNBOUNDED", "SSL3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"] as const;

/** One of {@link TLS_VERSIONS}. */
export type TlsVersionName = typeof TLS_VERSIONS[number];

/** mitmproxy's defaults: TLS 1.2 up to whatever the library supports. */
export const DEFAULT_TLS_MIN: TlsVersionName = "TLS1_2";
/** See {@link DEFAULT_TLS_MIN}. */
export const DEFAULT_TLS_MAX: TlsVersionName = "UNBOUNDED";

const NODE: Record<Exclude<TlsVersionName, "UNBOUNDED">, SecureVersion> = {
  SSL3: "TLSv1",
  TLS1: "TLSv1",
  TLS1_1: "TLSv1.1",
  TLS1_2: "TLSv1.2",
  TLS1_3: "TLSv1.3",
};

/** node:tls version bounds. */
export interface NodeVersionRange {
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
}

/**
 * The node:tls bounds for a (min, max) pair of option values; throws an Error naming the options when a value
 * is not one of {@link TLS_VERSIONS}, when max is below TLS 1.2 (Deno cannot speak it), or when min > max.
 * `side` is "client" or "server" (for the option names in messages).
 */
export function versionRange(min: string, max: string, side: "client" | "server"): NodeVersionRange {
  const names = TLS_VERSIONS.join(", ");
  for (const [which, v] of [["min", min], ["max", max]] as const) {
    if (!(TLS_VERSIONS as readonly string[]).includes(v)) {
      throw new Error(`Option "tls_version_${side}_${which}": "${v}" is not one of ${names}`);
    }
  }
  const lo = TLS_VERSIONS.indexOf(min as TlsVersionName);
  const hi = max === "UNBOUNDED" ? TLS_VERSIONS.length - 1 : TLS_VERSIONS.indexOf(max as TlsVersionName);
  if (hi < TLS_VERSIONS.indexOf("TLS1_2")) {
    throw new Error(
      `Option "tls_version_${side}_max": ${max} is below TLS1_2; Deno's TLS speaks TLS1_2 and TLS1_3 only`,
    );
  }
  if (lo > hi) {
    throw new Error(
      `Options "tls_version_${side}_min" (${min}) and "tls_version_${side}_max" (${max}): the minimum is above the maximum`,
    );
  }
  return {
    minVersion: min === "UNBOUNDED" ? "TLSv1" : NODE[min as keyof typeof NODE],
    maxVersion: NODE[TLS_VERSIONS[hi] as keyof typeof NODE],
  };
}
