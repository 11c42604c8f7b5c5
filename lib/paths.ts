/** File path helpers shared by the CLI and the addons. */

/** Expand a leading `~` to the home directory ($HOME, or %USERPROFILE% on Windows). */
export function expandHome(p: string): string {
  if (p === "~" || p.startsWith("~/")) {
    return (Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? "") + p.slice(1);
  }
  return p;
}
