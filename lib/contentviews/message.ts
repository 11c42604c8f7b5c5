/** Content views for HTTP messages: the metadata of a Request/Response and its decoded body. */
import type { ContentviewResult, Metadata } from "./types.ts";
import { Request } from "../http/message.ts";
import type { Message } from "../http/message.ts";
import { prettify } from "./registry.ts";

/** What the views need to know about a message: its content type, charset and (requests) query. */
export function messageMetadata(message: Message): Metadata {
  const header = message.headers.get("content-type");
  const m: Metadata = { isRequest: message instanceof Request };
  if (header) {
    m.contentTypeHeader = header;
    const mt = /^\s*([^\s;/]+\/[^\s;]+)/.exec(header);
    if (mt) m.contentType = mt[1].toLowerCase();
    const cs = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(header);
    if (cs) m.charset = cs[1].toLowerCase();
  }
  if (message instanceof Request) m.query = [...message.query];
  return m;
}

/**
 * Prettify a message's body with `viewName` ("auto" by default): the body is decoded first (description
 * "[decoded gzip]"); one that cannot be decoded is shown raw with "[cannot decode]".
 */
export function prettifyMessage(message: Message, viewName = "auto"): ContentviewResult {
  let data: Uint8Array | null;
  let description = "";
  try {
    data = message.getContent(true);
    const ce = message.headers.get("content-encoding");
    if (data !== null && ce && data !== message.rawContent) description = `[decoded ${ce}]`;
  } catch {
    data = message.rawContent;
    description = "[cannot decode]";
  }
  return prettify(data, messageMetadata(message), viewName, description);
}
