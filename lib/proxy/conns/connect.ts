/**
 * Opening TCP connections and TLS handshakes with servers, as plain functions over node:net and node:tls.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import type { TlsInfo } from "../commands.ts";

/** Open a TCP connection with a timeout (0: none), from `local` (address, port 0: any) when given (`connect_addr`). Rejects with the socket error (`code` TIMEOUT on timeout). */
export function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
  local?: readonly [string, number] | null,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host,
      port,
      allowHalfOpen: true,
      localAddress: local?.[0] || undefined,
      localPort: local?.[1] || undefined,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => fail(Object.assign(new Error("connect timeout"), { code: "TIMEOUT" })),
        timeoutMs,
      );
    }
    socket.once("error", fail);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", fail);
      resolve(socket);
    });
  });
}

/** Whether `host` is an IP literal. */
export function isIpLiteral(host: string): boolean {
  return net.isIP(host) !== 0;
}

/** The SNI sent to `host` unless told otherwise: the host name, none for an IP literal. */
export function defaultSni(host: string, sni: string | null | undefined): string | null {
  if (sni === undefined) sni = isIpLiteral(host) ? null : host;
  return sni !== null && isIpLiteral(sni) ? null : sni;
}

/** A readable reason for a failed TLS handshake with a server. */
export function describeTlsError(e: unknown, where: string): string {
  const err = e as { code?: string; message?: string };
  const msg = err?.message ?? String(e);
  const code = err?.code && !msg.includes(err.code) ? ` (${err.code})` : "";
  const verify = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME|ISSUER|EXPIRED|NOT_YET_VALID/.test(
    err?.code ?? "",
  );
  return `TLS handshake with ${where} failed: ${verify ? "certificate verify failed: " : ""}${msg}${code}`;
}

/** Parse node's `subjectaltname` ("DNS:a, IP Address:1.2.3.4") into names. */
export function parseSubjectAltName(s: string | undefined): string[] {
  if (!s) return [];
  const out: string[] = [];
  for (const part of s.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.*)$/.exec(part.trim());
    if (m) out.push(m[2]);
  }
  return out;
}

function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** What a TLS socket negotiated, with the peer's chain and names (for a server). */
export function tlsInfoOf(sock: tls.TLSSocket, peer: boolean): TlsInfo {
  const info: TlsInfo = {
    alpn: sock.alpnProtocol || null,
    tlsVersion: sock.getProtocol() ?? null,
    cipher: sock.getCipher()?.name ?? null,
    certificateList: [],
  };
  if (!peer) return info;
  const cert = sock.getPeerCertificate(true);
  for (let c = cert, i = 0; c && c.raw && i < 10; c = c.issuerCertificate, i++) {
    info.certificateList.push(derToPem(c.raw));
    if (c.issuerCertificate === c) break;
  }
  if (cert && cert.subject) {
    const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
    info.peerNames = {
      cn: one(cert.subject.CN),
      sans: parseSubjectAltName(cert.subjectaltname),
      o: one(cert.subject.O),
    };
  } else info.peerNames = { sans: [] };
  return info;
}

/** How to shake hands with a server. */
export interface ClientTlsOptions {
  host: string;
  sni: string | null;
  alpn: string[];
  insecure: boolean;
  ca?: string[];
  timeoutMs: number;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  /** Key and chain (PEM) presented when the server asks for a client certificate. */
  clientCert?: { key: string; cert: string } | null;
}

/**
 * TLS as the client over an open TCP socket (`raw`, paused, nobody reading it). Resolves with the TLS socket
 * once the handshake is done; rejects with the handshake error (`code` TIMEOUT on timeout).
 */
export function clientTls(raw: net.Socket, o: ClientTlsOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      socket: raw,
      host: o.host,
      servername: o.sni ?? undefined,
      ALPNProtocols: o.alpn,
      rejectUnauthorized: !o.insecure,
      ca: o.ca,
      minVersion: o.minVersion,
      maxVersion: o.maxVersion,
      ...(o.clientCert ? { key: o.clientCert.key, cert: o.clientCert.cert } : {}),
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (e: Error) => {
      clearTimeout(timer);
      s.destroy();
      raw.destroy();
      reject(e);
    };
    if (o.timeoutMs > 0) {
      timer = setTimeout(
        () => fail(Object.assign(new Error(`timed out after ${o.timeoutMs / 1000}s`), { code: "TIMEOUT" })),
        o.timeoutMs,
      );
    }
    const onClose = () => fail(new Error("connection closed during the handshake"));
    s.once("error", fail);
    s.once("close", onClose);
    s.once("secureConnect", () => {
      clearTimeout(timer);
      s.off("error", fail);
      s.off("close", onClose);
      resolve(s);
    });
  });
}
