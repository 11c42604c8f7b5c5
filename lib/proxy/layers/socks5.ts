/**
 * SOCKS5 mode (RFC 1928, with RFC 1929 username/password; mitmproxy's `Socks5Proxy`): the greeting picks
 * "no authentication", or username/password when `proxyauth` is set (the `socks5_auth` hook decides, as
 * the proxyauth addon does); then one CONNECT request with an IPv4, IPv6 or domain name address. With the
 * eager connection strategy the server is connected before the reply, so a failure gets its reply code
 * (connection refused, host unreachable, ...). After the reply the tunnel is a NextLayer: TLS, HTTP or TCP
 * as the client's first bytes say, exactly like after an HTTP CONNECT.
 *
 * Refused with the right reply: BIND and UDP ASSOCIATE (0x07 command not supported), unknown address
 * types (0x08), a request that is not version 5 (0x01). A client that is not SOCKS5 at all is told so:
 * a SOCKS4 client gets a SOCKS4 "rejected" reply, an HTTP client a 400 page naming the mode.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { ConnectionClosed, DataReceived, type Event, Start } from "../events.ts";
import { CloseConnection, OpenConnection, SendData, StartHook } from "../commands.ts";
import type { ProtocolError } from "../errors.ts";
import type { Client } from "../../flow/connection.ts";
import { Server } from "../../flow/connection.ts";
import { concat, latin1 } from "../../http/bytes.ts";
import { hostPort } from "../../http/message.ts";
import { NextLayer } from "./next_layer.ts";

/** What the `socks5_auth` hook receives: set `valid` to accept the credentials. */
export interface Socks5AuthData {
  clientConn: Client;
  username: string;
  password: string;
  valid: boolean;
}

const VERSION = 0x05;
const METHOD_NONE = 0x00;
const METHOD_USERPASS = 0x02;
const METHOD_UNACCEPTABLE = 0xff;
const CMD_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/** RFC 1928 §6 reply codes. */
export const REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** A reply with a zero IPv4 bound address. */
function reply(code: number): Uint8Array {
  return new Uint8Array([VERSION, code, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0]);
}

/** The reply code for a failed connection to the requested server. */
export function replyCodeFor(err: ProtocolError): number {
  const m = err.message;
  if (err.kind === "refused") return REPLY.notAllowed;
  if (/connection refused/i.test(m)) return REPLY.connectionRefused;
  if (/no route|unreachable/i.test(m)) return REPLY.networkUnreachable;
  if (/cannot resolve|not found|timed out/i.test(m)) return REPLY.hostUnreachable;
  return REPLY.generalFailure;
}

/** An IPv6 address from 16 bytes, in the usual compressed form. */
function ipv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  // the longest run of zero groups becomes "::"
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best === -1) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/** The first layer of a connection in SOCKS5 mode. */
export class Socks5Mode extends Layer {
  #buf: Uint8Array = new Uint8Array(0);
  #state: "greet" | "auth" | "connect" | "connecting" | "done" | "failed" = "greet";
  #child: Layer | null = null;

  protected onEvent(e: Event): void {
    if (this.#child) return this.#child.handle(e);
    if (e instanceof Start) return;
    if (e instanceof DataReceived && e.conn === this.context.client) {
      if (this.#state === "failed") return;
      this.#buf = this.#buf.length ? concat([this.#buf, e.data]) : e.data;
      return this.#step();
    }
    if (e instanceof ConnectionClosed && e.conn === this.context.client) {
      if (this.#state === "connecting") return; // the reply decides
      if (this.#buf.length && this.#state !== "failed") {
        this.log(
          `${this.context.client}: client closed the connection before completing the SOCKS5 handshake`,
        );
      }
      this.emit(new CloseConnection(this.context.client));
    }
  }

  #step(): void {
    for (let guard = 0; guard < 4; guard++) {
      const before = this.#state;
      if (this.#state === "greet") this.#greet();
      else if (this.#state === "auth") return this.#auth();
      else if (this.#state === "connect") return this.#connect();
      else return;
      if (this.#state === before) return;
    }
  }

  /** Fail the handshake: an optional reply, a log line, the client connection closed. */
  #fail(message: string, answer: Uint8Array | null): void {
    this.#state = "failed";
    if (answer) this.emit(new SendData(this.context.client, answer));
    this.log(`${this.context.client}: ${message}`, "info");
    this.emit(new CloseConnection(this.context.client));
  }

  #greet(): void {
    const b = this.#buf;
    if (b.length < 2) return;
    if (b[0] !== VERSION) {
      if (b[0] === 0x04) {
        // a SOCKS4 reply: VN 0, CD 91 (request rejected)
        return this.#fail(
          "SOCKS4 is not supported (this is a SOCKS5 proxy)",
          new Uint8Array([0, 91, 0, 0, 0, 0, 0, 0]),
        );
      }
      if (/^[A-Z]{3}/.test(latin1(b.subarray(0, 3)))) {
        const body =
          "This is a SOCKS5 proxy (--mode socks5): configure the client to use SOCKS5, not HTTP.\n";
        return this.#fail(
          "Probably not a SOCKS request but a regular HTTP request: answered 400",
          new TextEncoder().encode(
            `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          ),
        );
      }
      return this.#fail(`Invalid SOCKS version. Expected 0x05, got 0x${b[0].toString(16)}`, null);
    }
    const n = b[1];
    if (b.length < 2 + n) return;
    const methods = b.subarray(2, 2 + n);
    const wantAuth = !!this.context.options.proxyauth;
    const method = wantAuth ? METHOD_USERPASS : METHOD_NONE;
    if (!methods.includes(method)) {
      return this.#fail(
        `Client does not support SOCKS5 with ${wantAuth ? "user/password" : "no"} authentication.`,
        new Uint8Array([VERSION, METHOD_UNACCEPTABLE]),
      );
    }
    this.emit(new SendData(this.context.client, new Uint8Array([VERSION, method])));
    this.#buf = b.subarray(2 + n);
    this.#state = wantAuth ? "auth" : "connect";
  }

  #auth(): void {
    const b = this.#buf;
    if (b.length < 2) return;
    if (b[0] !== 0x01) {
      return this.#fail(
        `Invalid SOCKS5 username/password version 0x${b[0].toString(16)}`,
        new Uint8Array([0x01, 0x01]),
      );
    }
    const ulen = b[1];
    if (b.length < 3 + ulen) return;
    const plen = b[2 + ulen];
    if (b.length < 3 + ulen + plen) return;
    const dec = new TextDecoder();
    const data: Socks5AuthData = {
      clientConn: this.context.client,
      username: dec.decode(b.subarray(2, 2 + ulen)),
      password: dec.decode(b.subarray(3 + ulen, 3 + ulen + plen)),
      valid: false,
    };
    this.#buf = b.subarray(3 + ulen + plen);
    this.#state = "connecting"; // no parsing while the hook runs
    this.call(new StartHook("socks5_auth", data), () => {
      if (!data.valid) {
        // the subnegotiation's version (0x01), status non-zero: failure
        return this.#fail(
          `SOCKS5 authentication failed for user ${JSON.stringify(data.username)}`,
          new Uint8Array([0x01, 0x01]),
        );
      }
      this.emit(new SendData(this.context.client, new Uint8Array([0x01, 0x00])));
      this.#state = "connect";
      this.#connect();
    });
  }

  #connect(): void {
    const b = this.#buf;
    if (b.length < 5) return;
    if (b[0] !== VERSION) {
      return this.#fail(`Invalid SOCKS5 request version 0x${b[0].toString(16)}`, reply(REPLY.generalFailure));
    }
    if (b[1] !== CMD_CONNECT) {
      const name = b[1] === 0x02 ? "BIND" : b[1] === 0x03 ? "UDP ASSOCIATE" : `0x${b[1].toString(16)}`;
      return this.#fail(
        `Unsupported SOCKS5 command ${name} (only CONNECT)`,
        reply(REPLY.commandNotSupported),
      );
    }
    const atyp = b[3];
    let len: number;
    if (atyp === ATYP_IPV4) len = 4 + 4 + 2;
    else if (atyp === ATYP_IPV6) len = 4 + 16 + 2;
    else if (atyp === ATYP_DOMAIN) len = 4 + 1 + b[4] + 2;
    else return this.#fail(`Unknown SOCKS5 address type ${atyp}`, reply(REPLY.addressTypeNotSupported));
    if (b.length < len) return;
    let host: string;
    if (atyp === ATYP_IPV4) host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
    else if (atyp === ATYP_IPV6) host = ipv6(b.subarray(4, 20));
    else host = latin1(b.subarray(5, 5 + b[4]));
    const port = (b[len - 2] << 8) | b[len - 1];
    if (!host) return this.#fail("Empty SOCKS5 destination", reply(REPLY.generalFailure));
    const rest = b.subarray(len);
    this.#buf = new Uint8Array(0);
    const ctx = this.context;
    ctx.server = new Server([host, port]);
    this.#state = "connecting";
    if (ctx.options.connection_strategy !== "eager") return this.#established(rest);
    this.call(new OpenConnection(ctx.server), (err) => {
      if (err) {
        return this.#fail(`SOCKS5 CONNECT ${hostPort(host, port)}: ${err.message}`, reply(replyCodeFor(err)));
      }
      this.#established(rest);
    });
  }

  /** Reply success and hand the tunnel to a NextLayer with the bytes that came after the request. */
  #established(rest: Uint8Array): void {
    this.#state = "done";
    this.emit(new SendData(this.context.client, reply(REPLY.succeeded)));
    this.#child = this.adopt(new NextLayer(this.context, rest.length ? rest.slice() : null));
    this.#child.handle(new Start());
  }
}
