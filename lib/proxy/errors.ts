/** Errors the proxy core raises, and the error pages it answers clients with. */
import { Response } from "../http/message.ts";
import { VERSION } from "../version.ts";

/** A failure in the protocol layers, with the HTTP status a client should get (if any). */
export class ProtocolError extends Error {
  /** 400, 413, 502, 504..., or null when the connection is just closed. */
  status: number | null;
  constructor(message: string, status: number | null = 502) {
    super(message);
    this.name = "ProtocolError";
    this.status = status;
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

/** Turn a socket/connect error into a readable reason and a status (502, or 504 for timeouts). */
export function describeConnectError(e: unknown, address: string): { reason: string; status: number } {
  const err = e as { code?: string; message?: string };
  switch (err?.code) {
    case "ECONNREFUSED":
      return { reason: `Cannot connect to ${address}: connection refused`, status: 502 };
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_NODATA":
      return { reason: `Cannot resolve ${address}: host not found`, status: 502 };
    case "ETIMEDOUT":
    case "TIMEOUT":
      return { reason: `Timed out connecting to ${address}`, status: 504 };
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return { reason: `Cannot connect to ${address}: no route to host`, status: 502 };
    case "ECONNRESET":
      return { reason: `Connection to ${address} reset`, status: 502 };
    default:
      return { reason: `Cannot connect to ${address}: ${err?.message ?? String(e)}`, status: 502 };
  }
}
