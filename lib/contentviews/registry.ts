/**
 * The views and how one is chosen (mitmproxy's `contentviews/__init__.py` and `_registry.py`): "auto" takes
 * the view with the highest render priority (the first registered wins a tie); a view that throws under "auto"
 * falls back to raw with "[failed to parse as NAME]", one chosen explicitly shows the error.
 */
import type { ContentView, ContentviewResult, Metadata } from "./types.ts";
import { escapeControlCharacters } from "./text.ts";
import { css, javascript } from "./code.ts";
import { graphql, json } from "./json.ts";
import { image } from "./image.ts";
import { multipart, query, urlencoded } from "./forms.ts";
import { hexDumpView, hexStream, raw } from "./raw.ts";
import { xmlHtml } from "./markup.ts";
import { zip } from "./zip.ts";
import { msgpack } from "./msgpack.ts";

/** Every view, in mitmproxy's registration order. */
export const VIEWS: readonly ContentView[] = [
  css,
  graphql,
  image,
  javascript,
  json,
  multipart,
  query,
  raw,
  urlencoded,
  xmlHtml,
  zip,
  hexDumpView,
  hexStream,
  msgpack,
];

export { MITMPROXY_ONLY_VIEWS } from "./names.ts";

const BY_NAME = new Map(VIEWS.map((v) => [v.name.toLowerCase(), v]));

/** "auto" and the lower-case names of every view, sorted (mitmproxy's `available_views()`). */
export function availableViews(): string[] {
  return ["auto", ...[...BY_NAME.keys()].sort()];
}

/** The view named `name` (case-insensitive), or undefined. */
export function viewByName(name: string): ContentView | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** The view to use: `viewName` if it exists, else the best match by render priority. */
export function getView(data: Uint8Array, metadata: Metadata, viewName = "auto"): ContentView {
  if (viewName !== "auto") {
    const v = viewByName(viewName);
    if (v) return v;
  }
  let best: [number, ContentView] | null = null;
  for (const v of VIEWS) {
    let p: number;
    try {
      p = v.renderPriority(data, metadata);
    } catch {
      continue;
    }
    if (best === null || best[0] < p) best = [p, v];
  }
  return best![1];
}

/**
 * Prettify `data` (null: the content is missing). `description` says what was done to the data before, e.g.
 * "[decoded gzip]"; a fallback to raw appends "[failed to parse as NAME]".
 */
export function prettify(
  data: Uint8Array | null,
  metadata: Metadata = {},
  viewName = "auto",
  description = "",
): ContentviewResult {
  if (data === null) {
    return { text: "Content is missing.", syntaxHighlight: "error", viewName: null, description: "" };
  }
  const view = getView(data, metadata, viewName);
  let result: ContentviewResult;
  try {
    result = {
      text: view.prettify(data, metadata),
      syntaxHighlight: view.syntaxHighlight,
      viewName: view.name.toLowerCase(),
      description,
    };
  } catch (e) {
    if (viewName === "auto" || !viewByName(viewName)) {
      result = {
        text: raw.prettify(data, metadata),
        syntaxHighlight: raw.syntaxHighlight,
        viewName: "raw",
        description: `${description}[failed to parse as ${view.name}]`,
      };
    } else {
      result = {
        text: `Couldn't parse as ${view.name}:\n${e instanceof Error ? e.message : String(e)}`,
        syntaxHighlight: "error",
        viewName: view.name.toLowerCase(),
        description,
      };
    }
  }
  result.text = escapeControlCharacters(result.text);
  return result;
}
