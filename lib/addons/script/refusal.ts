/** The message for a script that acts beyond itself without the grant (shared by the worker and the proxy). */

/** What a script is told when it lacks the `shutdown` or `replay` grant. */
export function refusal(action: "shutdown" | "replay", script: string): string {
  const what = action === "shutdown"
    ? "ctx.master.shutdown()"
    : 'ctx.master.commands.call("replay.client", ...)';
  return `${what} acts beyond the script and needs the grant --script-allow ${action} ` +
    `(only this script: --script-allow "${script}:${action}")`;
}
