/** mitmdeno's version, read from deno.json (the one place it is kept). */
import meta from "../deno.json" with { type: "json" };

/** The version string, e.g. "0.1.0". */
export const VERSION: string = meta.version;
