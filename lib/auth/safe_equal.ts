/**
 * Constant-time comparison of secrets (passwords, tokens, hashes), for the proxy's and the web UI's
 * authentication.
 * @module
 */
import { Buffer } from "node:buffer";
import { timingSafeEqual } from "node:crypto";

/**
 * Whether `a` and `b` are the same string, in time that depends only on their lengths.
 *
 * ```ts
 * safeEqual("secret", "secret"); // true
 * ```
 */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
