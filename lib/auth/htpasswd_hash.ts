/**
 * Checking a password against an Apache htpasswd hash: bcrypt (`$2y$`/`$2b$`/`$2a$`), `$apr1$` (and `$1$`),
 * `{SHA}`, DES crypt and plain text. In a module of its own: the proxyauth addon loads it (and its three npm
 * packages) only when `proxyauth` names an htpasswd file.
 * @module
 */
import { createHash } from "node:crypto";
import bcrypt from "bcryptjs";
import * as md5Module from "apache-md5";
import * as cryptModule from "apache-crypt";
import { safeEqual } from "./safe_equal.ts";

type HashFn = (password: string, salt?: string) => string;
// CommonJS modules: the function is the default export at run time.
// deno-lint-ignore no-explicit-any
const apacheMd5 = ((md5Module as any).default ?? md5Module) as HashFn;
// deno-lint-ignore no-explicit-any
const apacheCrypt = ((cryptModule as any).default ?? cryptModule) as HashFn;

/** Verify `password` against one htpasswd hash. Throws for hash schemes mitmdeno cannot check. */
export function verifyHtpasswdHash(password: string, hash: string): boolean {
  if (/^\$2[abxy]\$/.test(hash)) return bcrypt.compareSync(password, hash.replace(/^\$2[xy]\$/, "$2b$"));
  if (hash.startsWith("$apr1$") || hash.startsWith("$1$")) return safeEqual(apacheMd5(password, hash), hash);
  if (hash.startsWith("{SHA}")) {
    return safeEqual(`{SHA}${createHash("sha1").update(password).digest("base64")}`, hash);
  }
  if (/^\$\d\$/.test(hash) || hash.startsWith("$")) {
    throw new Error(`unsupported hash scheme ${hash.slice(0, hash.indexOf("$", 1) + 1)}`);
  }
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return safeEqual(apacheCrypt(password, hash.slice(0, 2)), hash);
  return safeEqual(password, hash);
}
