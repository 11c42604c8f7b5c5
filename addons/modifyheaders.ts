/**
 * modifyheaders: `modify_headers` rules `[/filter]/name/[@]value` set headers on requests and responses
 * (mitmproxy's `modifyheaders.py`). All filters are evaluated first; then every matching header name is
 * removed; then the non-empty values are added (an empty value just deletes the header). `@path` reads the
 * value from a file (re-read on every use); `\n`-style escapes are decoded.
 */
import {
  ctx,
  type Filter,
  type Headers,
  type HTTPFlow,
  type Loader,
  parseSpec,
  parseSpecList,
  readReplacement,
} from "../mod.ts";
import { latin1 } from "../lib/http/bytes.ts";
import { escapedStrToBytes } from "../lib/addons/spec.ts";

/** One parsed `modify_headers` / `modify_body` rule. */
export interface ModifySpec {
  filter: Filter;
  /** The header name (modify_headers) or the regex source (modify_body), escapes decoded (latin1). */
  subject: string;
  /** The replacement as given: a literal with escapes, or `@path`. */
  replacementStr: string;
}

/** The replacement bytes of a rule (reads the file for `@path`). */
export function readSpecReplacement(spec: ModifySpec): Uint8Array {
  return readReplacement(spec.replacementStr);
}

/** Parse a `modify_headers`/`modify_body` spec; checks that an `@file` replacement is readable. */
export function parseModifySpec(option: string): ModifySpec {
  const { filter, subject, replacement } = parseSpec(option);
  const spec = { filter, subject: latin1(escapedStrToBytes(subject)), replacementStr: replacement };
  readSpecReplacement(spec);
  return spec;
}

/** Sets, replaces or removes headers. */
export class ModifyHeaders {
  readonly name = "modifyheaders";
  replacements: ModifySpec[] = [];

  load(loader: Loader): void {
    loader.addOption(
      "modify_headers",
      "strs",
      [],
      'Header modify pattern of the form "[/flow-filter]/header-name/[@]header-value", where the separator can be any character. The @ allows to provide a file path that is used to read the header value string. An empty header-value removes existing header-name headers.',
    );
  }

  configure(updated: Set<string>): void {
    if (!updated.has("modify_headers")) return;
    this.replacements = parseSpecList(
      "modify_headers",
      ctx.options.modify_headers as string[],
      parseModifySpec,
    );
  }

  requestheaders(flow: HTTPFlow): void {
    if (flow.response || flow.error || !flow.live) return;
    this.run(flow, flow.request.headers);
  }

  responseheaders(flow: HTTPFlow): void {
    if (flow.error || !flow.live || !flow.response) return;
    this.run(flow, flow.response.headers);
  }

  run(flow: HTTPFlow, headers: Headers): void {
    if (this.replacements.length === 0) return;
    const matches = this.replacements.map((spec) => spec.filter(flow));
    this.replacements.forEach((spec, i) => {
      if (matches[i]) headers.delete(spec.subject);
    });
    this.replacements.forEach((spec, i) => {
      if (!matches[i]) return;
      let value: Uint8Array;
      try {
        value = readSpecReplacement(spec);
      } catch (e) {
        ctx.log.warn(`Could not read replacement file: ${(e as Error).message}`);
        return;
      }
      if (value.length) headers.add(spec.subject, latin1(value));
    });
  }
}
