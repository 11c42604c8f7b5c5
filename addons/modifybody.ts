/**
 * modifybody: `modify_body` rules `[/filter]/regex/[@]replacement` rewrite bodies (mitmproxy's
 * `modifybody.py`): Python `re.sub` with DOTALL over the request body in `request`, or the response body in
 * `response`, on the decoded bytes. `@path` reads the replacement from a file. Streamed bodies are not
 * modified (a warning says so when `stream_large_bodies` is also set).
 */
import { compilePyRegex, ctx, type HTTPFlow, type Loader, parseSpecList, pySub } from "../mod.ts";
import { fromLatin1, latin1 } from "../lib/http/bytes.ts";
import { type ModifySpec, parseModifySpec, readSpecReplacement } from "./modifyheaders.ts";

/** A parsed `modify_body` rule with its compiled (bytes-mode) regex. */
export interface ModifyBodySpec extends ModifySpec {
  regex: RegExp;
}

/** Parse a `modify_body` spec; throws Error with the reason. */
export function parseModifyBodySpec(option: string): ModifyBodySpec {
  const spec = parseModifySpec(option);
  // the subject is already latin1 (escape-decoded bytes), so compile it as is
  return {
    ...spec,
    regex: compilePyRegex(spec.subject, { binary: true, dotAll: true, global: true, latin1: true }),
  };
}

/** Rewrites request and response bodies. */
export class ModifyBody {
  readonly name = "modifybody";
  replacements: ModifyBodySpec[] = [];

  load(loader: Loader): void {
    loader.addOption(
      "modify_body",
      "strs",
      [],
      'Replacement pattern of the form "[/flow-filter]/regex/[@]replacement", where the separator can be any character. The @ allows to provide a file path that is used to read the replacement string.',
    );
  }

  configure(updated: Set<string>): void {
    if (updated.has("modify_body")) {
      this.replacements = parseSpecList(
        "modify_body",
        ctx.options.modify_body as string[],
        parseModifyBodySpec,
      );
    }
    const o = ctx.options;
    if (
      o.modify_body?.length && o.has("stream_large_bodies") && o.stream_large_bodies &&
      (updated.has("modify_body") || updated.has("stream_large_bodies"))
    ) {
      ctx.log.warn(
        "Both modify_body and stream_large_bodies are active. Streamed bodies will not be modified.",
      );
    }
  }

  request(flow: HTTPFlow): void {
    if (flow.response || flow.error || !flow.live) return;
    this.run(flow);
  }

  response(flow: HTTPFlow): void {
    if (flow.error || !flow.live) return;
    this.run(flow);
  }

  run(flow: HTTPFlow): void {
    for (const spec of this.replacements) {
      if (!spec.filter(flow)) continue;
      let replacement: Uint8Array;
      try {
        replacement = readSpecReplacement(spec);
      } catch (e) {
        ctx.log.warn(`Could not read replacement file: ${(e as Error).message}`);
        continue;
      }
      const msg = flow.response ?? flow.request;
      const body = msg.getContent(false);
      if (body === null) continue;
      const before = latin1(body);
      const after = pySub(spec.regex, latin1(replacement), before);
      if (after !== before) msg.setContent(fromLatin1(after));
    }
  }
}
