/**
 * mitmdeno's command-line entry point.
 *
 * ```sh
 * deno task start --listen-port 8080
 * ```
 */
import { main } from "./lib/cli.ts";

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
