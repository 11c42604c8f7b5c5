/** Client and server connection records, as kept on every flow (mitmproxy's `connection.py`). */
import { isIP } from "node:net";

/** A network address: [host, port]. */
export type Address = [string, number];

/**
 * An address as mitmproxy's `format_address` shows it: `1.2.3.4:80`, `[::1]:80`, an IPv4-mapped IPv6 address
 * as IPv4, `*:80` for an unspecified one, `<no address>` for none.
 */
export function formatAddress(address: Address | null | undefined): string {
  if (!address) return "<no address>";
  const [host, port] = address;
  const kind = isIP(host);
  if (kind === 0) return `${host}:${port}`;
  if (host === "0.0.0.0" || host === "::" || /^(0*:)+0*$/.test(host)) return `*:${port}`;
  if (kind === 4) return `${host}:${port}`;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return mapped ? `${mapped[1]}:${port}` : `[${host}]:${port}`;
}

/** Fields both sides share. */
export abstract class Connection {
  /** A unique id (UUID). */
  id: string = crypto.randomUUID();
  /** The remote address (host, port), if known. */
  peername: Address | null = null;
  /** The local address (host, port), if known. */
  sockname: Address | null = null;
  /** The transport protocol. */
  transportProtocol: "tcp" | "udp" = "tcp";
  /** Set to a message to mark the connection failed (on a client in `client_connected`: kill it). */
  error: string | null = null;
  /** Whether TLS is established on this connection. */
  tls = false;
  /** The peer's certificate chain, PEM, leaf first. */
  certificateList: string[] = [];
  /** The ALPN protocol negotiated, if any. */
  alpn: string | null = null;
  /** The ALPN protocols offered. */
  alpnOffers: string[] = [];
  /** The TLS cipher negotiated, if any. */
  cipher: string | null = null;
  /** The ciphers offered. */
  cipherList: string[] = [];
  /** The TLS version negotiated (`TLSv1.3`, ...), if any. */
  tlsVersion: string | null = null;
  /** The TLS server name (SNI), if any. */
  sni: string | null = null;
  /** When the connection was opened (seconds since the epoch). */
  timestampStart: number | null = null;
  /** When it was closed (seconds since the epoch). */
  timestampEnd: number | null = null;
  /** When the TLS handshake finished (seconds since the epoch). */
  timestampTlsSetup: number | null = null;

  /** Whether the connection is currently open. */
  get connected(): boolean {
    return this.timestampStart !== null && this.timestampEnd === null;
  }
}

/** The client side of a proxied connection. */
export class Client extends Connection {
  /** The proxy mode spec the client came in through, e.g. "regular" or "reverse:http://x:80". */
  proxyMode = "regular";
  /** The certificate we presented (PEM), if TLS was intercepted. */
  mitmcert: string | null = null;

  /** A client connection, optionally with its addresses and proxy mode. */
  constructor(init: Partial<Pick<Client, "peername" | "sockname" | "proxyMode">> = {}) {
    super();
    Object.assign(this, init);
    this.timestampStart = Date.now() / 1000;
  }

  /** `host:port` of the peer. */
  override toString(): string {
    return this.peername ? `${this.peername[0]}:${this.peername[1]}` : "client";
  }
}

/** The server side of a proxied connection. */
export class Server extends Connection {
  /** Where we connect (or would connect): [host, port]. */
  address: Address | null;
  /** When the TCP connection was established (seconds since the epoch). */
  timestampTcpSetup: number | null = null;
  /** An upstream proxy this connection goes through: [scheme, [host, port]]. */
  via: [string, Address] | null = null;
  /**
   * Through `via`: plain HTTP requests go to the upstream proxy in absolute form (no CONNECT first). Else a
   * connection through `via` is a CONNECT tunnel to `address`.
   */
  viaAbsoluteForm = false;

  /** A server connection to `address` (host, port), or none yet. */
  constructor(address: Address | null = null) {
    super();
    this.address = address;
  }

  /** `host:port` of the server, or `server`. */
  override toString(): string {
    return this.address ? `${this.address[0]}:${this.address[1]}` : "server";
  }
}
