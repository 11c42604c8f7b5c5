/**
 * Flow factories for the io and filter tests: the test kit's (testing.ts), plus what the kit does not
 * offer yet (WebSocket data on HTTP flows, a string error, a fake TCP/UDP flow).
 */
import { type Flow, FlowError, type HTTPFlow } from "../../../lib/flow/flow.ts";
import type { Response } from "../../../lib/http/message.ts";
import { tclientConn, tflow as kitFlow, treq, tresp, tserverConn, twebsocket } from "../../../testing.ts";

export { tclientConn, treq, tresp, tserverConn, twebsocket };

const enc = new TextEncoder();

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
