/** Form views: URL-encoded bodies, multipart forms and a request's query string, shown as YAML. */
import type { ContentView } from "./types.ts";
import { mergeRepeatedKeys } from "./text.ts";
import { yamlDump } from "./yaml_dump.ts";
import { parseMultipart } from "../http/multipart.ts";
import { latin1 } from "../http/bytes.ts";

function escaped(b: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    return latin1(b);
  }
}

/** `application/x-www-form-urlencoded` fields. */
export const urlencoded: ContentView = {
  name: "URL-encoded",
  syntaxHighlight: "yaml",
  prettify: (data) => yamlDump(mergeRepeatedKeys(new URLSearchParams(latin1(data)).entries())),
  renderPriority: (data, m) => data.length && m.contentType === "application/x-www-form-urlencoded" ? 1 : 0,
};

/** `multipart/form-data` fields (file contents shown as text where they are text). */
export const multipart: ContentView = {
  name: "Multipart Form",
  syntaxHighlight: "yaml",
  prettify(data, m) {
    if (!m.contentTypeHeader) throw new Error("Not an HTTP message");
    const parts = parseMultipart(m.contentTypeHeader, data);
    return yamlDump(mergeRepeatedKeys(parts.map((p) => [p.name, escaped(p.content)])));
  },
  renderPriority: (data, m) => (data.length && m.contentType === "multipart/form-data" ? 1 : 0),
};

/** A request's query parameters, when it has no body. */
export const query: ContentView = {
  name: "Query",
  syntaxHighlight: "yaml",
  prettify(_data, m) {
    if (!m.query || m.isRequest === false) throw new Error("Not an HTTP request.");
    return yamlDump(mergeRepeatedKeys(m.query));
  },
  renderPriority: (data, m) => (!data.length && m.query?.length ? 0.3 : 0),
};
