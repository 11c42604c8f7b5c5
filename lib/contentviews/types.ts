/**
 * The content view API: pure functions from bytes (plus what is known about them) to readable text, as in
 * mitmproxy's `contentviews`. No I/O, no terminal or UI concerns: the dumper, export and the web UI render the
 * result their own way (`highlight()` splits it into tagged chunks for colouring).
 */

/** The syntax a view's output is written in, for highlighting (mitmproxy's `SyntaxHighlight`). */
export type SyntaxHighlight = "css" | "javascript" | "xml" | "yaml" | "none" | "error";

/** What is known about the data being shown. Every field is optional. */
export interface Metadata {
  /** The media type without parameters, lower-case, e.g. "application/json". */
  contentType?: string;
  /** The whole Content-Type header (the multipart view needs its boundary). */
  contentTypeHeader?: string;
  /** The charset of the Content-Type, lower-case, when given. */
  charset?: string;
  /** For HTTP requests: the query string's pairs (the "query" view shows them when there is no body). */
  query?: [string, string][];
  /** Whether the data is a request body (true), a response body (false) or unknown (undefined). */
  isRequest?: boolean;
}

/** One content view. `prettify` may throw when the data does not parse; "auto" then falls back to raw. */
export interface ContentView {
  /** The display name, e.g. "XML/HTML"; its lower-case form is what options and the UI use. */
  readonly name: string;
  /** The syntax of {@link ContentView.prettify}'s output. */
  readonly syntaxHighlight: SyntaxHighlight;
  /** Readable text for `data`. */
  prettify(data: Uint8Array, metadata: Metadata): string;
  /** How well this view fits `data` (the highest wins under "auto"); below 0 means "not at all". */
  renderPriority(data: Uint8Array, metadata: Metadata): number;
}

/** What {@link prettify} returns (mitmproxy's `ContentviewResult`). */
export interface ContentviewResult {
  /** The readable text (control characters other than tab and line breaks shown as "."). */
  text: string;
  /** How to highlight {@link ContentviewResult.text}. */
  syntaxHighlight: SyntaxHighlight;
  /** The lower-case name of the view used, or null when there was no content. */
  viewName: string | null;
  /** A note such as "[decoded gzip]" or "[failed to parse as JSON]", else "". */
  description: string;
}

/** A piece of highlighted text: a tag ("name", "string", "number", "boolean", "comment", "error" or "") and its text. */
export type Chunk = [tag: string, text: string];
