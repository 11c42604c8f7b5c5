/**
 * block: kills client connections by source address (mitmproxy's `block.py`). `block_global` (on by
 * default) refuses public addresses, `block_private` private ones. Loopback is always allowed;
 * IPv4-mapped IPv6 addresses are unwrapped first.
 */
import { type Client, ctx, type Loader } from "../mod.ts";

function parseV4(s: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? b : null;
}

function parseV6(s: string): number[] | null {
  // returns the 8 16-bit groups
  if (!s.includes(":")) return null;
  let tail: number[] = [];
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const b = parseV4(m[2]);
    if (!b) return null;
    tail = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
    s = m[1].endsWith("::") ? m[1] : m[1].slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (
    h: string,
  ) => (h ? h.split(":").map((x) => (/^[0-9a-fA-F]{1,4}$/.test(x) ? parseInt(x, 16) : NaN)) : []);
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const fill = 8 - head.length - rest.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...new Array(fill).fill(0), ...rest, ...tail];
  return groups.every((g) => g >= 0 && g <= 0xffff) ? groups : null;
}

/** How an address is classified, as Python's `ipaddress`. */
export interface AddressKind {
  loopback: boolean;
  private: boolean;
  global: boolean;
}

function inV4(b: number[], net: number[], bits: number): boolean {
  for (let i = 0; i < 4; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    if (take === 0) return true;
    const mask = (0xff << (8 - take)) & 0xff;
    if ((b[i] & mask) !== (net[i] & mask)) return false;
  }
  return true;
}

const V4_PRIVATE: [number[], number][] = [
  [[0, 0, 0, 0], 8],
  [[10, 0, 0, 0], 8],
  [[127, 0, 0, 0], 8],
  [[169, 254, 0, 0], 16],
  [[172, 16, 0, 0], 12],
  [[192, 0, 0, 0], 29],
  [[192, 0, 0, 170], 31],
  [[192, 0, 2, 0], 24],
  [[192, 168, 0, 0], 16],
  [[198, 18, 0, 0], 15],
  [[198, 51, 100, 0], 24],
  [[203, 0, 113, 0], 24],
  [[240, 0, 0, 0], 4],
  [[255, 255, 255, 255], 32],
];

/** Classify an IP address string (IPv6 scope ids and IPv4-mapped addresses handled). */
export function classifyAddress(address: string): AddressKind | null {
  const a = address.split("%")[0];
  let v4 = parseV4(a);
  if (!v4) {
    const g = parseV6(a);
    if (!g) return null;
    if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
      v4 = [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff];
    } else {
      const loopback = g.slice(0, 7).every((x) => x === 0) && g[7] === 1;
      const unspecified = g.every((x) => x === 0);
      const priv = loopback || unspecified || (g[0] & 0xfe00) === 0xfc00 || (g[0] & 0xffc0) === 0xfe80 ||
        (g[0] === 0x2001 && g[1] === 0x0db8) || (g[0] === 0x0064 && g[1] === 0xff9b && g[2] === 1) ||
        (g[0] === 0x0100 && g[1] === 0 && g[2] === 0 && g[3] === 0);
      const multicast = (g[0] & 0xff00) === 0xff00;
      return { loopback, private: priv, global: !priv && !multicast };
    }
  }
  const loopback = v4[0] === 127;
  const priv = V4_PRIVATE.some(([net, bits]) => inV4(v4!, net, bits));
  const shared = inV4(v4, [100, 64, 0, 0], 10); // neither private nor global
  const multicast = v4[0] >= 224 && v4[0] <= 239;
  return { loopback, private: priv, global: !priv && !shared && !multicast };
}

/** Refuses client connections by address class. */
export class Block {
  readonly name = "block";

  load(loader: Loader): void {
    loader.addOption("block_global", "bool", true, "Block connections from public IP addresses.");
    loader.addOption(
      "block_private",
      "bool",
      false,
      "Block connections from local (private) IP addresses. This option does not affect loopback addresses (connections from the local machine), which are always permitted.",
    );
  }

  client_connected(client: Client): void {
    const peer = client.peername?.[0];
    if (!peer) return;
    const kind = classifyAddress(peer);
    if (!kind || kind.loopback || client.proxyMode.startsWith("local")) return;
    if (ctx.options.block_private && kind.private) {
      ctx.log.warn(`Client connection from ${peer} killed by block_private option.`);
      client.error = "Connection killed by block_private.";
    }
    if (ctx.options.block_global && kind.global) {
      ctx.log.warn(`Client connection from ${peer} killed by block_global option.`);
      client.error = "Connection killed by block_global.";
    }
  }
}
