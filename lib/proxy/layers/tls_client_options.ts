/**
 * The client side's share of the TLS options, for the TLS layer: the chain shown to the client with the
 * server's certificates appended (`add_upstream_certs_to_client_chain`), and whether a ClientHello can meet
 * `ciphers_client` at all (else OpenSSL's answer: a handshake_failure alert).
 *
 * @module
 */
import type { SecureContext } from "node:tls";
import type { ClientHello } from "../../tls/clienthello.ts";
import type { LeafCert } from "../../tls/certs.ts";
import { clientCanMeet, offersTls13 } from "../../tls/ciphers.ts";
import type { TlsLayerConfig } from "./tls.ts";

/** A fatal handshake_failure alert record (TLS 1.2 framing, which every version accepts before keys exist). */
export const HANDSHAKE_FAILURE_ALERT: Uint8Array = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);

/**
 * The context to present `leaf` with: its own, or (with `addUpstreamCerts` and a server chain) one with the
 * server's certificates appended, kept per leaf while that chain stays the same. Throws if node:tls refuses it.
 */
export function clientContextFor(
  cfg: TlsLayerConfig,
  leaf: LeafCert,
  serverChain: readonly string[],
): SecureContext | undefined {
  if (!cfg.addUpstreamCerts || !serverChain.length) return leaf.secureContext;
  const chain = leaf.chainPem + serverChain.join("");
  const cache = cfg.chainContexts ??= new WeakMap();
  const hit = cache.get(leaf);
  if (hit?.chain === chain) return hit.ctx;
  const ctx = cfg.certs.secureContextFor(leaf.keyPem, chain);
  cache.set(leaf, { chain, ctx });
  return ctx;
}

/** Why `hello` cannot meet `ciphers_client` (no allowed suite Deno has, no TLS 1.3), or null when it can. */
export function cipherRefusal(cfg: TlsLayerConfig, hello: ClientHello): string | null {
  const policy = cfg.clientCiphers;
  if (!policy) return null;
  if (clientCanMeet(policy, hello.cipherSuites, !!cfg.clientTls13 && offersTls13(hello.extensions))) {
    return null;
  }
  return `no shared cipher: the client offers none of ciphers_client (${policy.spec})`;
}
