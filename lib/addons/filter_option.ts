/** Parsing filter-expression options, with errors that name the option. */
import { OptionsError } from "./options.ts";
import type { Flow } from "../flow/flow.ts";

/** A compiled filter. */
export type Filter = (flow: Flow) => boolean;

/** Compile the filter in option `name`, or null when unset. Throws OptionsError naming the option. */
export function parseFilterOrNull(name: string, expr: string | null | undefined): Filter | null {
  if (expr === null || expr === undefined || expr === "") return null;
  throw new OptionsError(`Option "${name}": filter expressions are not available yet`);
}
