/**
 * maplocal: `map_local` rules `[/filter]/url-regex/path` answer matching requests with a local file or a
 * file from a local directory (mitmproxy's `maplocal.py`). For a directory the candidates are the first
 * regex group (or the URL after the match, query removed), its `/index.html`, and the same with unsafe
 * characters replaced by `_`; paths never escape the directory. The first rule with an existing file wins;
 * if rules matched but no file exists the answer is 404.
 */
import { join, normalize, resolve, sep } from "node:path";
import {
  compilePyRegex,
  ctx,
  type Filter,
  type HTTPFlow,
  type Loader,
  parseSpec,
  parseSpecList,
  Response,
  VERSION,
} from "../mod.ts";
import { expandHome } from "../lib/addons/spec.ts";

/** One parsed `map_local` rule. */
export interface MapLocalSpec {
  filter: Filter;
  /** The URL regex (non-global, so `test`/`exec` keep no state between requests). */
  regex: RegExp;
  /** The resolved local file or directory. */
  localPath: string;
}

/** Parse a `map_local` spec (the path must exist); throws Error with the reason. */
export function parseMapLocalSpec(option: string): MapLocalSpec {
  const { filter, subject, replacement } = parseSpec(option);
  const regex = compilePyRegex(subject);
  let localPath: string;
  try {
    localPath = Deno.realPathSync(resolve(expandHome(replacement)));
  } catch (e) {
    throw new Error(`invalid file path: ${replacement} (${(e as Error).message})`);
  }
  return { filter, regex, localPath };
}

const MIME: Record<string, string> = {
  html: "text/html",
  htm: "text/html",
  css: "text/css",
  js: "text/javascript",
  mjs: "text/javascript",
  json: "application/json",
  txt: "text/plain",
  xml: "application/xml",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  ico: "image/vnd.microsoft.icon",
  pdf: "application/pdf",
  wasm: "application/wasm",
  woff: "font/woff",
  woff2: "font/woff2",
  mp4: "video/mp4",
  mp3: "audio/mpeg",
  zip: "application/zip",
  csv: "text/csv",
};

/** Guess a MIME type from a file name, like Python's `mimetypes.guess_type`. */
export function guessMimeType(path: string): string | undefined {
  const m = /\.([^./\\]+)$/.exec(path);
  return m ? MIME[m[1].toLowerCase()] : undefined;
}

function safeJoin(root: string, untrusted: string): string | null {
  const parts = untrusted.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === ".." || p.includes("\\") || p.includes("\0"))) return null;
  const joined = normalize(join(root, ...parts));
  return joined === root || joined.startsWith(root.endsWith(sep) ? root : root + sep) ? joined : null;
}

/** The candidate files for `url` under a directory rule, most preferred first. */
export function fileCandidates(url: string, spec: MapLocalSpec): string[] {
  const m = spec.regex.exec(url);
  if (!m) return [];
  let suffix: string;
  if (m.length > 1) suffix = m[1] ?? "";
  else {
    suffix = url.slice(m.index + m[0].length).split("?")[0];
    suffix = suffix.replace(/^\/+|\/+$/g, "");
  }
  if (!suffix) return [join(spec.localPath, "index.html")];
  let decoded: string;
  try {
    decoded = decodeURIComponent(suffix);
  } catch {
    decoded = suffix;
  }
  const cands = [decoded, `${decoded}/index.html`];
  const escaped = decoded.replace(/[^0-9a-zA-Z\-_.=(),/]/g, "_");
  if (escaped !== decoded) cands.push(escaped, `${escaped}/index.html`);
  const out: string[] = [];
  for (const c of cands) {
    const p = safeJoin(spec.localPath, c);
    if (p === null) return [];
    out.push(p);
  }
  return out;
}

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/** Serves local files for matching requests. */
export class MapLocal {
  readonly name = "maplocal";
  replacements: MapLocalSpec[] = [];

  load(loader: Loader): void {
    loader.addOption(
      "map_local",
      "strs",
      [],
      'Map remote resources to a local file using a pattern of the form "[/flow-filter]/url-regex/file-or-directory-path", where the separator can be any character.',
    );
  }

  configure(updated: Set<string>): void {
    if (!updated.has("map_local")) return;
    this.replacements = parseSpecList("map_local", ctx.options.map_local as string[], parseMapLocalSpec);
  }

  request(flow: HTTPFlow): void {
    if (this.replacements.length === 0 || flow.response || flow.error || !flow.live) return;
    const url = flow.request.prettyUrl;
    const all: string[] = [];
    for (const spec of this.replacements) {
      if (!spec.filter(flow) || !spec.regex.test(url)) continue;
      const candidates = isFile(spec.localPath) ? [spec.localPath] : fileCandidates(url, spec);
      all.push(...candidates);
      const local = candidates.find(isFile);
      if (!local) continue;
      let contents: Uint8Array;
      try {
        contents = Deno.readFileSync(local);
      } catch (e) {
        ctx.log.warn(`Could not read file: ${(e as Error).message}`);
        continue;
      }
      const headers: Record<string, string> = { Server: `mitmdeno ${VERSION}` };
      const mime = guessMimeType(local);
      if (mime) headers["Content-Type"] = mime;
      flow.response = Response.make(200, contents, headers);
      return;
    }
    if (all.length) {
      flow.response = Response.make(404);
      ctx.log.info(`None of the local file candidates exist: ${all.join(", ")}`);
    }
  }
}
