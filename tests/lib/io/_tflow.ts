/**
 * Flow factories for the io and filter tests: the test kit's (testing.ts), plus what the kit does not
 * offer yet (WebSocket data on HTTP flows, a string error, a fake TCP/UDP flow).
 */
import { type Flow, FlowError, type HTTPFlow } from "../../../lib/flow/flow.ts";
import type { Response } from "../../../lib/http/message.ts";
import { tclientConn, tflow as kitFlow, treq, tresp, tserverConn } from "../../../testing.ts";

export { tclientConn, treq, tresp, tserverConn };

const enc = new TextEncoder();

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
  const f = kitFlow({ resp: opts.resp });
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
