/** The ZIP view: the names of the files in an archive, from its central directory. */
import type { ContentView } from "./types.ts";
import { yamlDump } from "./yaml_dump.ts";

/** File names of a ZIP archive (throws when there is no valid end-of-central-directory record). */
export function zipFileNames(data: Uint8Array): string[] {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let eocd = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 65535); i--) {
    if (v.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("File is not a zip file");
  const count = v.getUint16(eocd + 10, true);
  let at = v.getUint32(eocd + 16, true);
  const names: string[] = [];
  const dec = new TextDecoder();
  for (let n = 0; n < count; n++) {
    if (at + 46 > data.length || v.getUint32(at, true) !== 0x02014b50) {
      throw new Error("Bad central directory");
    }
    const nameLen = v.getUint16(at + 28, true);
    const extra = v.getUint16(at + 30, true);
    const comment = v.getUint16(at + 32, true);
    names.push(dec.decode(data.subarray(at + 46, at + 46 + nameLen)));
    at += 46 + nameLen + extra + comment;
  }
  return names;
}

/** The files in a ZIP archive. */
export const zip: ContentView = {
  name: "ZIP Archive",
  syntaxHighlight: "yaml",
  prettify(data) {
    const names = zipFileNames(data);
    return names.length ? yamlDump(names) : "(empty zip file)";
  },
  renderPriority: (data, m) => (data.length && m.contentType === "application/zip" ? 1 : 0),
};
