/** Test flow factories mirroring mitmproxy's `mitmproxy/test/tflow.py` (same values). */
import { Headers } from "../../../lib/http/headers.ts";
import { Request, Response } from "../../../lib/http/message.ts";
import { Client, Server } from "../../../lib/flow/connection.ts";
import { type Flow, FlowError, HTTPFlow } from "../../../lib/flow/flow.ts";

const enc = new TextEncoder();

/** `tclient_conn()` */
export function tclientConn(): Client {
  const c = new Client({ peername: ["127.0.0.1", 22], sockname: ["", 0] });
  c.timestampStart = 946681200;
  c.timestampTlsSetup = 946681201;
  c.timestampEnd = 946681206;
  c.sni = "address";
  c.cipher = "cipher";
  c.alpn = "http/1.1";
  c.tlsVersion = "TLSv1.2";
  return c;
}

/** `tserver_conn()` */
export function tserverConn(): Server {
  const s = new Server(["address", 22]);
  s.peername = ["192.168.0.1", 22];
  s.sockname = ["address", 22];
  s.timestampStart = 946681202;
  s.timestampTcpSetup = 946681203;
  s.timestampTlsSetup = 946681204;
  s.timestampEnd = 946681205;
  s.sni = "address";
  s.tlsVersion = "TLSv1.2";
  return s;
}

/** `treq()` */
export function treq(): Request {
  return new Request({
    method: "GET",
    scheme: "http",
    host: "address",
    port: 22,
    path: "/path",
    authority: "",
    httpVersion: "HTTP/1.1",
    headers: new Headers([["header", "qvalue"], ["content-length", "7"]]),
    rawContent: enc.encode("content"),
    timestampStart: 946681200,
    timestampEnd: 946681201,
  });
}

/** `tresp()` */
export function tresp(): Response {
  return new Response({
    statusCode: 200,
    reason: "OK",
    httpVersion: "HTTP/1.1",
    headers: new Headers([["header-response", "svalue"], ["content-length", "7"]]),
    rawContent: enc.encode("message"),
    timestampStart: 946681202,
    timestampEnd: 946681203,
  });
}

/** `twebsocket()` as a plain WebSocketDataState-like object. */
export function twebsocket() {
  return {
    messages: [
      {
        type: 2,
        fromClient: true,
        content: enc.encode("hello binary"),
        timestamp: 946681203,
        dropped: false,
        injected: false,
      },
      {
        type: 1,
        fromClient: true,
        content: enc.encode("hello text"),
        timestamp: 946681204,
        dropped: false,
        injected: false,
      },
      {
        type: 1,
        fromClient: false,
        content: enc.encode("it's me"),
        timestamp: 946681205,
        dropped: false,
        injected: false,
      },
    ],
    closedByClient: false,
    closeCode: 1000,
    closeReason: "Close Reason",
    timestampEnd: 946681205,
  };
}

/** `tflow(resp=, err=, ws=)` */
export function tflow(
  opts: { resp?: boolean | Response; err?: boolean | string; ws?: boolean } = {},
): HTTPFlow {
  const f = new HTTPFlow(tclientConn(), tserverConn(), treq(), true);
  if (opts.resp) f.response = opts.resp === true ? tresp() : opts.resp;
  if (opts.err) f.error = new FlowError(opts.err === true ? "error" : opts.err, 946681207);
  if (opts.ws) f.websocket = twebsocket();
  return f;
}

/** A minimal fake TCP/UDP flow for filter tests (the real TCPFlow does not exist yet). */
export function fakeTcpFlow(
  messages: [boolean, string][] = [[true, "hello"], [false, "it's me"]],
  type: "tcp" | "udp" = "tcp",
): Flow {
  return {
    type,
    id: crypto.randomUUID(),
    clientConn: tclientConn(),
    serverConn: tserverConn(),
    error: null,
    live: false,
    intercepted: false,
    isReplay: null,
    marked: "",
    metadata: {},
    comment: "",
    timestampCreated: 946681200,
    messages: messages.map(([fromClient, c]) => ({
      fromClient,
      content: enc.encode(c),
      timestamp: 946681204,
    })),
  } as unknown as Flow;
}
