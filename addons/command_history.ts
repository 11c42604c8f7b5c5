/**
 * mitmproxy's `command_history` option (its console keeps entered commands in `<confdir>/command_history`).
 * mitmdeno has no command prompt yet, so the option is accepted (a shared config.yaml works) and does nothing.
 */
import type { Loader } from "../lib/addons/manager.ts";

/** The command_history option (no command prompt yet). */
export class CommandHistory {
  readonly name = "command_history";

  load(loader: Loader): void {
    loader.addOption(
      "command_history",
      "bool",
      true,
      "Persist command history between mitmproxy invocations. Accepted for mitmproxy compatibility; " +
        "mitmdeno has no command prompt yet, so nothing is recorded.",
    );
  }
}
