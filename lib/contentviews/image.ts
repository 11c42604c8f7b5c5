/**
 * The image view: format, size and embedded metadata (PNG text chunks, GIF comments, JPEG JFIF/EXIF/comment,
 * ICO entries), as mitmproxy's `_view_image`. Detection by magic bytes as Python's `imghdr`.
 */
import { inflateSync } from "node:zlib";
import type { ContentView } from "./types.ts";
import { mergeRepeatedKeys } from "./text.ts";
import { yamlDump } from "./yaml_dump.ts";
import { latin1 } from "../http/bytes.ts";

type Parts = [string, string][];

const startsWith = (d: Uint8Array, sig: number[], at = 0) => sig.every((b, i) => d[at + i] === b);
const ascii = (d: Uint8Array, a: number, b: number) => latin1(d.subarray(a, b));

/** The image type by magic bytes (imghdr's names), or null. */
export function imageType(d: Uint8Array): string | null {
  if (startsWith(d, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  const head6 = ascii(d, 0, 6);
  if (head6 === "GIF87a" || head6 === "GIF89a") return "gif";
  const jf = ascii(d, 6, 10);
  if (jf === "JFIF" || jf === "Exif" || startsWith(d, [0xff, 0xd8, 0xff, 0xdb])) return "jpeg";
  if (startsWith(d, [0, 0, 1, 0])) return "ico";
  if (ascii(d, 0, 2) === "MM" || ascii(d, 0, 2) === "II") return "tiff";
  if (ascii(d, 0, 2) === "BM") return "bmp";
  if (ascii(d, 0, 4) === "RIFF" && ascii(d, 8, 12) === "WEBP") return "webp";
  if (startsWith(d, [0x76, 0x2f, 0x31, 0x01])) return "exr";
  return null;
}

function need(d: Uint8Array, n: number): void {
  if (d.length < n) throw new Error("truncated image");
}

function cString(d: Uint8Array, at: number): [string, number] {
  const end = d.indexOf(0, at);
  if (end === -1) throw new Error("unterminated string");
  return [ascii(d, at, end), end + 1];
}

/** PNG: size, gamma, aspect and text chunks. */
export function parsePng(d: Uint8Array): Parts {
  need(d, 33);
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const parts: Parts = [
    ["Format", "Portable network graphics"],
    ["Size", `${v.getUint32(16)} x ${v.getUint32(20)} px`],
  ];
  let at = 8;
  while (at + 8 <= d.length) {
    const len = v.getUint32(at);
    const type = ascii(d, at + 4, at + 8);
    const body = d.subarray(at + 8, at + 8 + len);
    if (body.length < len) throw new Error(`truncated ${type} chunk`);
    if (type === "gAMA") {
      parts.push(["gamma", String(new DataView(body.buffer, body.byteOffset).getUint32(0) / 100000)]);
    } else if (type === "pHYs") {
      const b = new DataView(body.buffer, body.byteOffset, body.byteLength);
      parts.push(["aspect", `${b.getUint32(0)} x ${b.getUint32(4)}`]);
    } else if (type === "tEXt") {
      const [k, i] = cString(body, 0);
      parts.push([k, ascii(body, i, body.length)]);
    } else if (type === "zTXt") {
      const [k, i] = cString(body, 0);
      parts.push([k, latin1(new Uint8Array(inflateSync(body.subarray(i + 1))))]);
    } else if (type === "iTXt") {
      const [k, i] = cString(body, 0);
      const compressed = body[i] === 1;
      const [, j] = cString(body, i + 2); // language tag
      const [, t] = cString(body, j); // translated keyword
      const raw = body.subarray(t);
      parts.push([k, new TextDecoder().decode(compressed ? new Uint8Array(inflateSync(raw)) : raw)]);
    } else if (type === "IEND") break;
    at += 12 + len;
  }
  return parts;
}

function pyBytes(b: Uint8Array): string {
  let s = "";
  for (const c of b) {
    s += c === 0x27 || c === 0x5c
      ? `\\${String.fromCharCode(c)}`
      : c >= 0x20 && c < 0x7f
      ? String.fromCharCode(c)
      : `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return `b'${s}'`;
}

/** GIF: version, size, background colour index and comments. */
export function parseGif(d: Uint8Array): Parts {
  need(d, 13);
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const flags = d[10];
  const parts: Parts = [
    ["Format", "Compuserve GIF"],
    ["Version", `GIF${ascii(d, 3, 6)}`],
    ["Size", `${v.getUint16(6, true)} x ${v.getUint16(8, true)} px`],
    ["background", String(d[11])],
  ];
  let at = 13 + (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0);
  const subBlocks = (cb?: (b: Uint8Array) => void) => {
    for (;;) {
      need(d, at + 1);
      const n = d[at++];
      if (n === 0) return;
      need(d, at + n);
      cb?.(d.subarray(at, at + n));
      at += n;
    }
  };
  while (at < d.length) {
    const kind = d[at++];
    if (kind === 0x3b) break;
    if (kind === 0x21) {
      const label = d[at++];
      subBlocks(label === 0xfe ? (b) => b.length && parts.push(["comment", pyBytes(b)]) : undefined);
    } else if (kind === 0x2c) {
      need(d, at + 9);
      const f = d[at + 8];
      at += 9 + (f & 0x80 ? 3 * 2 ** ((f & 7) + 1) : 0) + 1; // descriptor, local colour table, LZW size
      subBlocks();
    } else throw new Error(`bad GIF block 0x${kind.toString(16)}`);
  }
  return parts;
}

const EXIF_TAGS: Record<number, string> = {
  0x010e: "image_description",
  0x010f: "make",
  0x0110: "model",
  0x0131: "software",
  0x0132: "date_time",
  0x013b: "artist",
  0x8298: "copyright",
};

function exifFields(app1: Uint8Array, parts: Parts): void {
  if (ascii(app1, 0, 6) !== "Exif\0\0") return;
  const t = app1.subarray(6);
  if (t.length < 8) return;
  const le = ascii(t, 0, 2) === "II";
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const ifd = v.getUint32(4, le);
  if (ifd + 2 > t.length) return;
  const n = v.getUint16(ifd, le);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > t.length) return;
    const tag = v.getUint16(e, le);
    const type = v.getUint16(e + 2, le);
    const count = v.getUint32(e + 4, le);
    if (type !== 2 || !EXIF_TAGS[tag]) continue;
    const off = count <= 4 ? e + 8 : v.getUint32(e + 8, le);
    parts.push([
      EXIF_TAGS[tag],
      new TextDecoder().decode(t.subarray(off, off + count)).replace(/\0+$/, "").trim(),
    ]);
  }
}

/** JPEG: size, JFIF version and density, comments and EXIF text fields. */
export function parseJpeg(d: Uint8Array): Parts {
  const parts: Parts = [["Format", "JPEG (ISO 10918)"]];
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  let at = 2;
  while (at + 4 <= d.length) {
    if (d[at] !== 0xff) throw new Error("bad JPEG marker");
    const marker = d[at + 1];
    if (marker === 0xd9 || marker === 0xda) break; // end of image, start of scan
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    const len = v.getUint16(at + 2);
    const seg = d.subarray(at + 4, at + 2 + len);
    if (seg.length < len - 2) throw new Error("truncated JPEG segment");
    if (marker === 0xc0 && seg.length >= 5) {
      const s = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
      parts.push(["Size", `${s.getUint16(3)} x ${s.getUint16(1)} px`]);
    } else if (marker === 0xe0 && ascii(seg, 0, 5) === "JFIF\0" && seg.length >= 12) {
      const s = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
      parts.push(["jfif_version", `(${seg[5]}, ${seg[6]})`]);
      parts.push(["jfif_density", `(${s.getUint16(8)}, ${s.getUint16(10)})`]);
      parts.push(["jfif_unit", String(seg[7])]);
    } else if (marker === 0xfe) {
      parts.push(["comment", new TextDecoder().decode(seg)]);
    } else if (marker === 0xe1) exifFields(seg, parts);
    at += 2 + len;
  }
  return parts;
}

/** ICO: the number of images and each one's size, depth and whether it is a PNG. */
export function parseIco(d: Uint8Array): Parts {
  need(d, 6);
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const n = v.getUint16(4, true);
  const parts: Parts = [["Format", "ICO"], ["Number of images", String(n)]];
  for (let i = 0; i < n; i++) {
    const e = 6 + 16 * i;
    need(d, e + 16);
    const off = v.getUint32(e + 12, true);
    const png = startsWith(d, [0x89, 0x50, 0x4e, 0x47], off);
    const pad = " ".repeat(18);
    parts.push([
      `Image ${i + 1}`,
      `Size: ${d[e] || 256} x ${d[e + 1] || 256}\n${pad}Bits per pixel: ${
        v.getUint16(e + 6, true)
      }\n${pad}PNG: ${png ? "True" : "False"}`,
    ]);
  }
  return parts;
}

/** Image format, size and metadata. */
export const image: ContentView = {
  name: "Image",
  syntaxHighlight: "yaml",
  prettify(data) {
    const type = imageType(data);
    const parsers: Record<string, (d: Uint8Array) => Parts> = {
      png: parsePng,
      gif: parseGif,
      jpeg: parseJpeg,
      ico: parseIco,
    };
    const meta = type && parsers[type] ? parsers[type](data) : [];
    return `# ${type ? `${type.toUpperCase()} Image` : "Unknown Image"}\n` +
      yamlDump(mergeRepeatedKeys(meta));
  },
  renderPriority: (_data, m) =>
    m.contentType?.startsWith("image/") && !m.contentType.endsWith("+xml") ? 1 : 0,
};
