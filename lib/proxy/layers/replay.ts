/**
 * The root layer of a client replay (mitmproxy's ReplayHandler): a connection without a client socket whose
 * one request is a saved flow. It runs an HTTP layer and injects the flow's request into it, so every hook
 * fires and the server connection is made as for live traffic; the response lands on the flow (what would
 * go to the client goes nowhere). It closes the (virtual) client connection once the exchange is over.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { type Event, Start } from "../events.ts";
import { CloseConnection } from "../commands.ts";
import type { Context } from "../context.ts";
import type { HTTPFlow } from "../../flow/flow.ts";
import { HttpLayer } from "./http/layer.ts";

/** Replays one flow. */
export class ReplayLayer extends Layer {
  readonly #flow: HTTPFlow;
  #http: HttpLayer | null = null;

  constructor(ctx: Context, flow: HTTPFlow) {
    super(ctx);
    this.#flow = flow;
  }

  protected onEvent(e: Event): void {
    if (e instanceof Start) {
      const http = this.adopt(new HttpLayer(this.context, { mode: "regular", rewriteHost: false }));
      this.#http = http;
      http.handle(e);
      http.inject(this.#flow, () => this.emit(new CloseConnection(this.context.client)));
      return;
    }
    this.#http?.handle(e);
  }
}
