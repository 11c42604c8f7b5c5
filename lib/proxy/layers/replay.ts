/**
 * The root layer of a client replay (mitmproxy's ReplayHandler): a connection without a client socket whose
 * one request is a saved flow. It runs an HTTP layer and injects the flow's request into it, so every hook
 * fires and the server connection is made as for live traffic; the response lands on the flow (what would
 * go to the client goes nowhere). It closes the (virtual) client connection once the exchange is over.
 * When the proxy's first mode is `upstream:` the replay goes through that upstream proxy, as mitmproxy's does.
 *
 * @module
 */
import { Layer } from "../layer.ts";
import { type Event, Start } from "../events.ts";
import { CloseConnection } from "../commands.ts";
import type { Context } from "../context.ts";
import type { HTTPFlow } from "../../flow/flow.ts";
import { HttpLayer } from "./http/layer.ts";
import { UpstreamMode } from "./upstream.ts";
import type { ModeSpec } from "../mode.ts";

/** Replays one flow. */
export class ReplayLayer extends Layer {
  readonly #flow: HTTPFlow;
  readonly #upstream: ModeSpec | null;
  #child: Layer | null = null;

  /** Replay `flow`; `upstream`: an `upstream:` mode spec to send it through that proxy. */
  constructor(ctx: Context, flow: HTTPFlow, upstream: ModeSpec | null = null) {
    super(ctx);
    this.#flow = flow;
    this.#upstream = upstream?.kind === "upstream" ? upstream : null;
  }

  protected onEvent(e: Event): void {
    if (e instanceof Start) {
      let http: HttpLayer;
      if (this.#upstream) {
        const mode = this.adopt(new UpstreamMode(this.context, this.#upstream));
        this.#child = mode;
        mode.handle(e);
        http = mode.http!;
      } else {
        http = this.adopt(new HttpLayer(this.context, { mode: "regular", rewriteHost: false }));
        this.#child = http;
        http.handle(e);
      }
      http.inject(this.#flow, () => this.emit(new CloseConnection(this.context.client)));
      return;
    }
    this.#child?.handle(e);
  }
}
