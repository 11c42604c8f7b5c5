/**
 * Content views: readable text for message bodies, one module for the dumper, export and the web UI.
 *
 * ```ts
 * import { highlight, prettify } from "./mod.ts";
 * const r = prettify(new TextEncoder().encode('{"a": 1}'), { contentType: "application/json" });
 * r.viewName; // "json"
 * r.text; // '{\n    "a": 1\n}'
 * highlight(r.text, r.syntaxHighlight); // [["", "{\n    "], ["name", '"a"'], ["", ": "], ["number", "1"], ...]
 * ```
 * @module
 */
export type { Chunk, ContentView, ContentviewResult, Metadata, SyntaxHighlight } from "./types.ts";
export { availableViews, getView, MITMPROXY_ONLY_VIEWS, prettify, viewByName, VIEWS } from "./registry.ts";
export { messageMetadata, prettifyMessage } from "./message.ts";
export { highlight } from "./highlight.ts";
export { cutAfterNLines, escapeControlCharacters } from "./text.ts";
