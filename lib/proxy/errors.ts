/**
 * Errors of the proxy core as typed values: a kind (what went wrong, never guessed from message text), a
 * readable reason, and the HTTP status a client should get, if any. Plus the error pages clients see.
 *
 * @module
 */
import { Response } from "../http/message.ts";
import { VERSION } from "../version.ts";

/** What kind of failure. */
export type ErrorKind =
  /** The client sent something malformed (400, 431, 501, 505). */
  | "client-protocol"
  /** The server sent something malformed (502). */
  | "server-protocol"
  /** A server connection could not be opened (502, 504 on timeout). */
  | "connect"
  /** A TLS handshake failed. */
  | "tls"
  /** The server closed the connection before a complete response (502). */
  | "server-closed"
  /** The server closed a reused connection before the first byte of a response (may be retried). */
  | "server-closed-idle"
  /** The client went away. */
  | "client-closed"
  /** Something took too long (408, 504). */
  | "timeout"
  /** A limit was exceeded (413, 431, 502). */
  | "limit"
  /** An addon refused or killed it. */
  | "refused"
  /** A bug or an unexpected failure. */
  | "internal";

/** A failure in the protocol layers. */
export class ProtocolError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** The status to answer the client with, or null to just close. */
    readonly status: number | null = null,
    /** More detail for the kind, e.g. for "tls": "untrusted" (the peer rejected our certificate), "closed". */
    readonly detail: string | null = null,
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page sent for a proxy-generated error, as mitmproxy: HTML, `Connection: close`. */
export function errorResponse(status: number, reason: string): Response {
  const r = Response.make(status, "", {
    "Server": `mitmdeno ${VERSION}`,
    "Connection": "close",
    "Content-Type": "text/html",
  });
  const title = `${status} ${r.reason}`;
  r.text = `<html><head><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>` +
    `<p>${escapeHtml(reason)}</p></body></html>\n`;
  return r;
}

/** A socket or connect error as a {@link ProtocolError} with a readable reason (502, 504 for timeouts). */
export function connectError(e: unknown, address: string): ProtocolError {
  const err = e as { code?: string; message?: string };
  const fail = (reason: string, status = 502) => new ProtocolError("connect", reason, status);
  switch (err?.code) {
    case "ECONNREFUSED":
      return fail(`Cannot connect to ${address}: connection refused`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_NODATA":
      return fail(`Cannot resolve ${address}: host not found`);
    case "ETIMEDOUT":
    case "TIMEOUT":
      return fail(`Timed out connecting to ${address}`, 504);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return fail(`Cannot connect to ${address}: no route to host`);
    case "ECONNRESET":
      return fail(`Connection to ${address} reset`);
    default:
      return fail(`Cannot connect to ${address}: ${err?.message ?? String(e)}`);
  }
}
