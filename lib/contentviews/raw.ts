/** The byte-level views: raw text, hex dump, hex stream (mitmproxy's `raw` and mitmproxy_rs's hex views). */
import type { ContentView } from "./types.ts";
import { decodeUtf8Backslash, isBinary } from "./text.ts";

/** The body as UTF-8 text, invalid bytes as `\xNN`; the fallback of every other view. */
export const raw: ContentView = {
  name: "Raw",
  syntaxHighlight: "none",
  prettify: (data) => decodeUtf8Backslash(data),
  renderPriority: () => 0.1,
};

/** `0000:   61 62 63 64  ...   abcd` rows of 16 bytes in groups of 4, with the printable ASCII beside. */
export function hexDump(data: Uint8Array): string {
  const rows: string[] = [];
  for (let off = 0; off < data.length; off += 16) {
    const row = data.subarray(off, off + 16);
    let hex = "";
    let ascii = "";
    for (let i = 0; i < row.length; i++) {
      if (i > 0) hex += i % 4 === 0 ? "  " : " ";
      hex += row[i].toString(16).padStart(2, "0");
      ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : ".";
    }
    rows.push(`${off.toString(16).padStart(4, "0")}:   ${hex.padEnd(50)}   ${ascii}`);
  }
  return rows.join("\n");
}

/** Offsets, hex bytes and ASCII: the default for binary data. */
export const hexDumpView: ContentView = {
  name: "Hex Dump",
  syntaxHighlight: "none",
  prettify: (data) => hexDump(data),
  renderPriority: (data) => isBinary(data) ? 0.5 : 0,
};

/** The bytes as one run of lower-case hex digits. */
export const hexStream: ContentView = {
  name: "Hex Stream",
  syntaxHighlight: "none",
  prettify: (data) => [...data].map((b) => b.toString(16).padStart(2, "0")).join(""),
  renderPriority: (data) => isBinary(data) ? 0.4 : 0,
};
