/**
 * Server-side TLS on a `node:net` socket whose first bytes (the start of the ClientHello) were already
 * read, e.g. after answering a CONNECT and peeking at the SNI.
 *
 * The sequence that works in Deno 2.9.6 (see scripts/spike_tls_upgrade.ts and the tests):
 * remove the 'data' listener, `socket.pause()`, `socket.unshift(peeked)`, then
 * `new tls.TLSSocket(socket, { isServer: true, secureContext | SNICallback, ALPNProtocols | ALPNCallback })`
 * and wait for its 'secure' event. `tlsServer.emit("connection", socket)` after the same pause+unshift
 * works equally well and is as fast. Without `pause()` the unshifted bytes are emitted to nobody (the
 * socket is still flowing) and the handshake hangs; without `unshift` the ClientHello is lost.
 *
 * Since the caller has already parsed the ClientHello, it can mint the leaf for `hello.sni` itself and
 * pass `secureContext` directly; SNICallback is only needed to let node:tls ask for it.
 * @module
 */
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { type SecureContext, TLSSocket } from "node:tls";

/** Options of {@link upgradeToServerTls}. */
export interface ServerTlsOptions {
  /** Picks the context (certificate) for the client's SNI; `servername` is "" without SNI. */
  SNICallback?: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** Context used when there is no SNICallback (and as the initial one). */
  secureContext?: SecureContext;
  /** ALPN protocols the server accepts, in preference order, or a selector function. */
  ALPNProtocols?: string[] | ((arg: { servername: string; protocols: string[] }) => string | undefined);
  /** Reject with an Error when the handshake has not finished after this many milliseconds. */
  handshakeTimeout?: number;
}

/**
 * Wraps `socket` in a server-side TLSSocket, feeding it `peeked` first (all bytes read from the socket
 * since the last byte the caller consumed, e.g. the ClientHello records). Resolves with the TLS socket
 * once the handshake is done; rejects with the handshake error (the socket is then destroyed).
 * The caller must not have any 'data' listener left on `socket`.
 */
export function upgradeToServerTls(
  socket: Socket,
  peeked: Uint8Array,
  opts: ServerTlsOptions,
): Promise<TLSSocket> {
  socket.pause();
  if (peeked.length) socket.unshift(Buffer.from(peeked.buffer, peeked.byteOffset, peeked.byteLength));
  const tlsSocket = new TLSSocket(
    socket,
    {
      isServer: true,
      secureContext: opts.secureContext,
      SNICallback: opts.SNICallback,
      // node's types do not know the function form (node >= 20.x accepts it as ALPNCallback)
      ...(typeof opts.ALPNProtocols === "function"
        ? { ALPNCallback: opts.ALPNProtocols }
        : { ALPNProtocols: opts.ALPNProtocols }),
    } as ConstructorParameters<typeof TLSSocket>[1],
  );
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      tlsSocket.removeListener("secure", onSecure);
      tlsSocket.removeListener("error", onError);
      tlsSocket.removeListener("close", onClose);
      if (err) {
        tlsSocket.destroy();
        socket.destroy();
        reject(err);
      } else resolve(tlsSocket);
    };
    const onSecure = () => done();
    const onError = (e: Error) => done(e);
    const onClose = () => done(new Error("connection closed during the TLS handshake"));
    tlsSocket.once("secure", onSecure);
    tlsSocket.once("error", onError);
    tlsSocket.once("close", onClose);
    if (opts.handshakeTimeout !== undefined) {
      timer = setTimeout(
        () => done(new Error(`TLS handshake timed out after ${opts.handshakeTimeout} ms`)),
        opts.handshakeTimeout,
      );
    }
  });
}
