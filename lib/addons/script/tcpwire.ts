/**
 * TCP flows on the worker wire (the HTTP part is wire.ts, whose rules hold here too): what a TCP hook sees
 * of a flow, and what it changed, sent back and applied to the live flow.
 *
 * - Which messages cross: `tcp_message` sends only the newest message (the one the hook is about: sending
 *   them all would make a long connection quadratic), `tcp_end` and `tcp_error` send all of them,
 *   `tcp_start` those there are (usually none). Their contents travel back to back in the flow's second
 *   body slot (the ring's, or the postMessage buffer), as WebSocket messages do.
 * - What comes back: the messages whose content changed (by index; an empty content is not sent on: that
 *   is how a TCP message is dropped, as in mitmproxy), messages injected during the hook (`flow.inject`
 *   or the `inject.tcp` command), and the fields every flow has (kill, marker, comment, metadata,
 *   connection records).
 * - The proxy trusts none of it: indices outside the messages the script was sent, contents that are not
 *   buffers, injections that are not `[toClient, buffer]` are refused before anything is applied.
 *
 * @module
 */
import type { Client, Server } from "../../flow/connection.ts";
import { FlowError } from "../../flow/flow.ts";
import { TCPFlow, TCPMessage } from "../../flow/tcp.ts";
import {
  applyBaseChanges,
  attachBodies,
  bad,
  baseDiff,
  type BaseSnapshot,
  bytesAt,
  bytesEqual,
  checkBaseChanges,
  cloneableMetadata,
  concatBytes,
  type ConnRefs,
  type ConnSync,
  type ConnTable,
  copyBytes,
  EMPTY_METADATA,
  type FlowChanges,
  ownBuffer,
  type Packed,
  type PackedFlow,
  type WireFlowBase,
} from "./wire.ts";

/** TCP hooks that see every message (a flow's last hooks); the others see only the newest. */
const TCP_ALL_MESSAGES = new Set(["tcp_end", "tcp_error"]);

/** A TCP message on the wire; `body`: the length of its content in the flow's second body slot. */
export interface WireTcpMessage {
  fromClient: boolean;
  timestamp: number;
  injected: boolean;
  body: number;
}

/** A TCP flow on the wire (the JSON part of a {@link PackedFlow}). */
export interface WireTcpFlow extends WireFlowBase {
  type: "tcp";
  /** The messages sent, from index `first` of `total`; `injectable`: the connection is open. */
  tcp: { total: number; first: number; messages: WireTcpMessage[]; injectable: boolean };
}

/** What a TCP hook changed: message contents by index, and messages to inject. */
export interface TcpChanges {
  messages?: [index: number, content: ArrayBuffer][];
  inject?: [toClient: boolean, content: ArrayBuffer][];
}

/** A message's content as bytes (an addon may have set a string). */
function contentOf(m: TCPMessage): Uint8Array {
  const c = m.content as unknown;
  return c instanceof Uint8Array ? c : new TextEncoder().encode(String(c));
}

/**
 * Pack the TCP flow `flow` as `event` sees it (see wire.ts `packFlow`, whose contract this keeps): the
 * message contents are the second body.
 */
export function packTcpFlow(
  flow: TCPFlow,
  event: string,
  refs: ConnRefs,
  sync: ConnSync,
  transfer: Transferable[],
  copyBodies = true,
): Packed {
  const all = flow.messages;
  const first = TCP_ALL_MESSAGES.has(event) ? 0 : Math.max(0, all.length - 1);
  const sent = all.slice(first);
  const contents = sent.map(contentOf);
  const wire: WireTcpFlow = {
    type: "tcp",
    id: flow.id,
    live: flow.live,
    isReplay: flow.isReplay,
    marked: flow.marked,
    comment: flow.comment,
    timestampCreated: flow.timestampCreated,
    error: flow.error ? { msg: flow.error.msg, timestamp: flow.error.timestamp } : null,
    client: refs.ref(flow.clientConn, sync),
    server: refs.ref(flow.serverConn, sync),
    tcp: {
      total: all.length,
      first,
      messages: sent.map((m, i) => ({
        fromClient: m.fromClient,
        timestamp: m.timestamp,
        injected: m.injected,
        body: contents[i].byteLength,
      })),
      injectable: flow.live && flow.injectable,
    },
  };
  const packed: PackedFlow = { json: JSON.stringify(wire) };
  let metadata = EMPTY_METADATA;
  for (const _ in flow.metadata) {
    metadata = cloneableMetadata(flow.metadata);
    packed.md = metadata;
    break;
  }
  const respBody = contents.length === 1 ? contents[0] : contents.length ? concatBytes(contents) : null;
  const out: Packed = { packed, metadata, reqBody: null, respBody, first };
  if (copyBodies) attachBodies(out, transfer);
  return out;
}

/** What the worker keeps of a TCP flow to compute a diff after the hooks ran. */
export interface TcpSnapshot extends BaseSnapshot {
  wire: WireTcpFlow;
  /** The messages sent, and copies of their contents as sent (in-place changes count too). */
  messages: TCPMessage[];
  contents: Uint8Array[];
  /** Messages injected during the hook. */
  injected: [boolean, ArrayBuffer][];
}

/** Build the TCP flow a script sees from a packed flow, plus the snapshot to diff against. */
export function unpackTcpFlow(p: PackedFlow, table: ConnTable): { flow: TCPFlow; snapshot: TcpSnapshot } {
  const w = (p.f ?? JSON.parse(p.json!)) as WireTcpFlow;
  const bytes = p.bytes ?? (p.buf ? new Uint8Array(p.buf) : undefined);
  const client = table.get(w.client);
  const server = table.get(w.server);
  const flow = new TCPFlow(client.conn as Client, server.conn as Server, w.live);
  flow.id = w.id;
  flow.isReplay = w.isReplay;
  flow.marked = w.marked;
  flow.comment = w.comment;
  flow.metadata = p.md ? structuredClone(p.md) : {};
  flow.timestampCreated = w.timestampCreated;
  flow.error = w.error ? new FlowError(w.error.msg, w.error.timestamp) : null;
  let off = 0;
  const contents: Uint8Array[] = [];
  const messages = w.tcp.messages.map((m) => {
    const c = bytesAt(bytes, off, m.body);
    off += m.body;
    contents.push(c);
    return new TCPMessage(m.fromClient, c.slice(), m.timestamp, m.injected);
  });
  flow.messages = [...messages];
  const injected: [boolean, ArrayBuffer][] = [];
  if (w.live && w.tcp.injectable) {
    flow.setInjector((m) => injected.push([!m.fromClient, copyBytes(m.content)]));
  }
  return {
    flow,
    snapshot: { wire: w, metadata: p.md ?? null, client, server, messages, contents, injected },
  };
}

/**
 * The changes the hooks made to `flow` since `snap` (contents to move are appended to `transfer`). The
 * flow takes no injections after this: they would not reach the proxy.
 */
export function tcpFlowDiff(flow: TCPFlow, snap: TcpSnapshot, transfer: ArrayBuffer[]): FlowChanges | null {
  flow.setInjector(null);
  let c = baseDiff(flow, snap, null);
  const d: TcpChanges = {};
  const first = snap.wire.tcp.first;
  snap.messages.forEach((m, i) => {
    const content = contentOf(m);
    if (!bytesEqual(content, snap.contents[i])) {
      (d.messages ??= []).push([first + i, ownBuffer(content, transfer)!]);
    }
  });
  if (snap.injected.length) d.inject = snap.injected;
  if (d.messages || d.inject) (c ??= {}).tcp = d;
  return c;
}

/**
 * Apply the changes a script made to the live TCP flow. `first`: the index of the first message the
 * script was sent (it may change only those). Throws, changing nothing, for values the API would have
 * refused.
 */
export function applyTcpChanges(
  flow: TCPFlow,
  c: FlowChanges,
  sentMetadata: Record<string, unknown>,
  refs: ConnRefs,
  first = 0,
): void {
  checkBaseChanges(c);
  const t = c.tcp;
  if (t !== undefined) {
    if (t === null || typeof t !== "object") bad("TCP changes", "?");
    if (t.messages !== undefined && !Array.isArray(t.messages)) bad("TCP messages", "?");
    if (t.inject !== undefined && !Array.isArray(t.inject)) bad("TCP injections", "?");
    for (const x of t.messages ?? []) {
      if (!Array.isArray(x)) bad("TCP message change", "?");
      const i = x[0];
      if (!Number.isInteger(i) || i < first || i >= flow.messages.length) bad("TCP message index", i);
      if (!(x[1] instanceof ArrayBuffer)) bad("TCP message content", "?");
    }
    for (const x of t.inject ?? []) {
      if (!Array.isArray(x) || typeof x[0] !== "boolean" || !(x[1] instanceof ArrayBuffer)) {
        bad("TCP injection", "?");
      }
    }
  }
  applyBaseChanges(flow, c, sentMetadata, refs);
  for (const [i, content] of t?.messages ?? []) flow.messages[i].content = new Uint8Array(content);
  for (const [toClient, content] of t?.inject ?? []) flow.inject(toClient, new Uint8Array(content));
  if (c.intercept) flow.intercept();
}
