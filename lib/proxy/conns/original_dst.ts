/**
 * The original destination of a connection redirected to us by netfilter (iptables/nftables `REDIRECT` or
 * `DNAT`) on Linux: `getsockopt(fd, SOL_IP, SO_ORIGINAL_DST)` (IPv6: `SOL_IPV6, IP6T_SO_ORIGINAL_DST`).
 *
 * Deno 2.9.6 gives no file descriptor for a node:net socket (its handle wraps a Deno resource id), and
 * node's `_handle.fd` is -1. What works: find the socket's inode in `/proc/net/tcp{,6}` by its local and
 * remote address, find our descriptor for that inode in `/proc/self/fd`, and call libc's `getsockopt` on
 * it through `Deno.dlopen` (needs --allow-ffi and read access to /proc). Every step can fail (another OS,
 * no FFI permission, a connection that was not redirected: ENOENT); the reason is returned so the caller
 * can log it and fall back to the TLS SNI or the Host header.
 *
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Address } from "../../flow/connection.ts";

/** The result of a lookup: the address, or why there is none. */
export type OriginalDst = { address: Address; reason?: undefined } | { address: null; reason: string };

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;

const SYMBOLS = {
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const ERRNO: Record<number, string> = {
  2: "ENOENT: the connection was not redirected by netfilter",
  9: "EBADF",
  22: "EINVAL",
  88: "ENOTSOCK",
  92: "ENOPROTOOPT",
};

/** An IPv4 or IPv6 address (IPv4-mapped included) as 16 bytes, or 4 for plain IPv4. */
function ipBytes(ip: string): Uint8Array {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (isIPv4(ip) || mapped) {
    const v4 = (mapped ? mapped[1] : ip).split(".").map(Number);
    if (!mapped) return new Uint8Array(v4);
    return new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]);
  }
  const [head, tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g || "0", 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 255;
  });
  return out;
}

/** An address as /proc/net/tcp{,6} writes it: 32-bit words in host (little-endian) order, then the port. */
export function procAddress(ip: string, port: number): string {
  const b = ipBytes(ip);
  let hex = "";
  for (let w = 0; w < b.length; w += 4) {
    for (let i = 3; i >= 0; i--) hex += b[w + i].toString(16).padStart(2, "0");
  }
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** The inode of the TCP socket local→remote, from /proc/net/tcp or tcp6 text. */
export function findInode(table: string, local: string, remote: string): number | null {
  for (const line of table.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[1] !== local || f[2] !== remote) continue;
    const inode = Number(f[9]);
    if (inode > 0) return inode;
  }
  return null;
}

/** Parse a sockaddr_in / sockaddr_in6 buffer. */
export function parseSockaddr(b: Uint8Array): Address | null {
  const family = b[0] | (b[1] << 8);
  const port = (b[2] << 8) | b[3];
  if (family === AF_INET) return [`${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port];
  if (family === AF_INET6) {
    const a = b.subarray(8, 24);
    if (a.subarray(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff) {
      return [`${a[12]}.${a[13]}.${a[14]}.${a[15]}`, port];
    }
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((a[i] << 8) | a[i + 1]).toString(16));
    return [groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:{3,}/, "::"), port];
  }
  return null;
}

/** Looks up original destinations (one per proxy core: it holds the libc handle once opened). */
export class OriginalDstLookup {
  #lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;
  #libError: string | null = null;

  #libc(): Deno.DynamicLibrary<typeof SYMBOLS> | string {
    if (this.#lib) return this.#lib;
    if (this.#libError) return this.#libError;
    if (Deno.build.os !== "linux") return (this.#libError = `not available on ${Deno.build.os}`);
    try {
      this.#lib = Deno.dlopen("libc.so.6", SYMBOLS);
      return this.#lib;
    } catch (e) {
      return (this.#libError = `cannot call libc getsockopt (${(e as Error).message}; needs --allow-ffi)`);
    }
  }

  /** The descriptor of our TCP socket local→remote, or why it was not found. */
  #fd(localIp: string, localPort: number, remoteIp: string, remotePort: number): number | string {
    const v4 = isIPv4(localIp) && isIPv4(remoteIp);
    const file = v4 ? "/proc/net/tcp" : "/proc/net/tcp6";
    let inode: number | null;
    try {
      inode = findInode(
        Deno.readTextFileSync(file),
        procAddress(localIp, localPort),
        procAddress(remoteIp, remotePort),
      );
    } catch (e) {
      return `cannot read ${file}: ${(e as Error).message}`;
    }
    if (inode === null) return `socket not found in ${file}`;
    const want = `socket:[${inode}]`;
    try {
      // bounded: a process has at most a few thousand descriptors
      let n = 0;
      for (const entry of Deno.readDirSync("/proc/self/fd")) {
        if (++n > 1_000_000) break;
        try {
          if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === want) return Number(entry.name);
        } catch { /* closed meanwhile */ }
      }
    } catch (e) {
      return `cannot read /proc/self/fd: ${(e as Error).message}`;
    }
    return "no descriptor for the socket in /proc/self/fd";
  }

  /** The original destination of the accepted connection with these addresses. */
  lookup(local: Address, remote: Address): OriginalDst {
    const lib = this.#libc();
    if (typeof lib === "string") return { address: null, reason: lib };
    const fd = this.#fd(local[0], local[1], remote[0], remote[1]);
    if (typeof fd === "string") return { address: null, reason: fd };
    const v6 = isIPv6(remote[0]) && !/^::ffff:/i.test(remote[0]);
    const buf = new Uint8Array(v6 ? 28 : 16);
    const len = new Uint32Array([buf.length]);
    const rc = lib.symbols.getsockopt(
      fd,
      v6 ? SOL_IPV6 : SOL_IP,
      SO_ORIGINAL_DST,
      buf,
      new Uint8Array(len.buffer),
    );
    if (rc !== 0) {
      const p = lib.symbols.__errno_location();
      const errno = p ? new Deno.UnsafePointerView(p).getInt32() : -1;
      return { address: null, reason: `getsockopt(SO_ORIGINAL_DST): ${ERRNO[errno] ?? `errno ${errno}`}` };
    }
    const addr = parseSockaddr(buf);
    return addr ? { address: addr } : { address: null, reason: "unknown address family" };
  }

  /** Release libc. */
  close(): void {
    this.#lib?.close();
    this.#lib = null;
  }
}
