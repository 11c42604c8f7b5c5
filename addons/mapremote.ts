/**
 * mapremote: `map_remote` rules `[/filter]/url-regex/replacement` rewrite request URLs
 * (mitmproxy's `mapremote.py`). The regex is substituted in the pretty URL (`re.sub`: every match,
 * `\1` / `\g<name>` in the replacement); the request URL (and so the Host header) is only set when the
 * substitution changed something.
 */
import {
  compilePyRegex,
  ctx,
  type Filter,
  type HTTPFlow,
  type Loader,
  parseSpec,
  parseSpecList,
  pySub,
} from "../mod.ts";

/** One parsed `map_remote` rule. */
export interface MapRemoteSpec {
  filter: Filter;
  regex: RegExp;
  replacement: string;
}

/** Parse a `map_remote` spec; throws Error with the reason. */
export function parseMapRemoteSpec(option: string): MapRemoteSpec {
  const { filter, subject, replacement } = parseSpec(option);
  return { filter, regex: compilePyRegex(subject, { global: true }), replacement };
}

/** Rewrites request URLs. */
export class MapRemote {
  readonly name = "mapremote";
  replacements: MapRemoteSpec[] = [];

  load(loader: Loader): void {
    loader.addOption(
      "map_remote",
      "strs",
      [],
      'Map remote resources to another remote URL using a pattern of the form "[/flow-filter]/url-regex/replacement", where the separator can be any character.',
    );
  }

  configure(updated: Set<string>): void {
    if (!updated.has("map_remote")) return;
    this.replacements = parseSpecList("map_remote", ctx.options.map_remote as string[], parseMapRemoteSpec);
  }

  request(flow: HTTPFlow): void {
    if (flow.response || flow.error || !flow.live) return;
    for (const spec of this.replacements) {
      if (!spec.filter(flow)) continue;
      const url = flow.request.prettyUrl;
      const next = pySub(spec.regex, spec.replacement, url);
      if (next !== url) {
        try {
          flow.request.url = next;
        } catch (e) {
          ctx.log.warn(`map_remote: cannot use ${JSON.stringify(next)} as a URL: ${(e as Error).message}`);
        }
      }
    }
  }
}
