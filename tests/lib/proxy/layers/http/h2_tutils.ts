/**
 * Test helpers for the HTTP/2 codecs: a peer {@link H2Connection} that plays the other end of the
 * connection a Playbook's layer talks over, fed with the layer's SendData and feeding DataReceived back.
 */
import { H2Connection, type H2Handler } from "../../../../../lib/http2/connection.ts";
import { DataReceived } from "../../../../../lib/proxy/events.ts";
import { SendData } from "../../../../../lib/proxy/commands.ts";
import type { Connection } from "../../../../../lib/flow/connection.ts";
import type { Playbook } from "../../tutils.ts";
import { type HttpEvent, ReceiveHttp } from "../../../../../lib/proxy/layers/http/events.ts";

/** What the peer saw. */
export type PeerEvent =
  | { kind: "headers"; id: number; fields: [string, string][]; end: boolean }
  | { kind: "data"; id: number; data: string; end: boolean }
  | { kind: "reset"; id: number; code: number }
  | { kind: "goaway"; last: number; code: number; debug: string }
  | { kind: "failed"; code: number; message: string };

/** The other end of an HTTP/2 connection. */
export class H2Peer {
  readonly h2: H2Connection;
  readonly events: PeerEvent[] = [];

  constructor(role: "client" | "server", opts: { initialWindow?: number } = {}) {
    const ev = this.events;
    const dec = new TextDecoder("latin1");
    const h: H2Handler = {
      headers: (id, fields, end) => ev.push({ kind: "headers", id, fields, end }),
      data: (id, d, end) => ev.push({ kind: "data", id, data: dec.decode(d), end }),
      reset: (id, code) => ev.push({ kind: "reset", id, code }),
      goaway: (last, code, debug) => ev.push({ kind: "goaway", last, code, debug }),
      failed: (code, message) => ev.push({ kind: "failed", code, message }),
    };
    this.h2 = new H2Connection(h, { role, initialWindow: opts.initialWindow });
    this.h2.start();
  }

  /** Send what the peer has queued to the layer, as DataReceived on `conn`. */
  flushTo(pb: Playbook, conn: Connection): void {
    const out = this.h2.takeOutput();
    if (out) pb.in(new DataReceived(conn, out));
  }

  /** Take every pending SendData on `conn` from the playbook (others stay) and receive it. */
  readFrom(pb: Playbook, conn: Connection): number {
    let n = 0;
    for (let i = 0; i < pb.pending.length;) {
      const c = pb.pending[i];
      if (c instanceof SendData && c.conn === conn) {
        pb.pending.splice(i, 1);
        this.h2.receive(c.data);
        n++;
      } else i++;
    }
    return n;
  }

  /** Events of `kind`, removed from the list. */
  take<K extends PeerEvent["kind"]>(kind: K): Extract<PeerEvent, { kind: K }>[] {
    const out: Extract<PeerEvent, { kind: K }>[] = [];
    for (let i = 0; i < this.events.length;) {
      if (this.events[i].kind === kind) {
        out.push(this.events.splice(i, 1)[0] as Extract<PeerEvent, { kind: K }>);
      } else i++;
    }
    return out;
  }
}

/** Every received HTTP event pending in the playbook, wherever it is among other commands. */
export function httpEvents(pb: Playbook): HttpEvent[] {
  const out: HttpEvent[] = [];
  for (let i = 0; i < pb.pending.length;) {
    const c = pb.pending[i];
    if (c instanceof ReceiveHttp) {
      pb.pending.splice(i, 1);
      out.push(c.event);
    } else i++;
  }
  return out;
}
