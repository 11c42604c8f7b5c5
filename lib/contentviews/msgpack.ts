/** The MsgPack view (with the `@msgpack/msgpack` decoder), shown as YAML like mitmproxy_rs's. */
import { decode } from "@msgpack/msgpack";
import type { ContentView } from "./types.ts";
import { yamlDump } from "./yaml_dump.ts";

function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [plain(k), plain(x)]));
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

/** MessagePack data as YAML. */
export const msgpack: ContentView = {
  name: "MsgPack",
  syntaxHighlight: "yaml",
  prettify(data) {
    const v = plain(decode(data, { useBigInt64: true, mapKeyConverter: (k) => k as string | number }));
    return typeof v === "object" && v !== null ? yamlDump(v) : yamlDump([v]).replace(/^- /, "");
  },
  renderPriority: (_data, m) =>
    m.contentType === "application/msgpack" || m.contentType === "application/x-msgpack" ? 1 : 0,
};
