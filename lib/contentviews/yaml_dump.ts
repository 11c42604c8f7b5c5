/**
 * YAML output of the views that show structured data (forms, msgpack, zip listings, image metadata). A module
 * of its own so that ./text.ts, which the dumper uses at start-up, does not load the yaml package.
 * @module
 */
import { stringify } from "yaml";

/** YAML text for a mapping or list, or "" for an empty one (mitmproxy dumps these views as YAML). */
export function yamlDump(value: unknown): string {
  if (value == null) return "";
  if ((value instanceof Map && value.size === 0) || (Array.isArray(value) && value.length === 0)) return "";
  return stringify(value, { singleQuote: true, indentSeq: false, lineWidth: 0 });
}
