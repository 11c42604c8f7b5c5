/** comment: the `flow.comment` command sets `flow.comment` (mitmproxy's `comment.py`). */
import { ctx, type Flow, type Loader } from "../mod.ts";

/** Adds comments to flows. */
export class Comment {
  readonly name = "comment";

  load(loader: Loader): void {
    loader.addCommand(
      "flow.comment",
      this.comment,
      "flow.comment FLOWS COMMENT: set the comment of one or more flows.",
    );
  }

  /** Set the comment of `flows` and fire `update` for them. */
  async comment(flows: Flow | Flow[], comment: string): Promise<void> {
    const list = Array.isArray(flows) ? flows : [flows];
    for (const f of list) f.comment = comment;
    const master = ctx.master as { addons: { trigger?(e: string, ...a: unknown[]): Promise<void> } } | null;
    await master?.addons.trigger?.("update", list);
  }
}
