/** Parsing filter-expression options, with errors that name the option. */
import { OptionsError } from "./options.ts";
import { type Filter, FilterError, parseFilter } from "../flow/filter.ts";

export type { Filter };

/** Compile the filter in option `name`, or null when unset. Throws OptionsError naming the option. */
export function parseFilterOrNull(name: string, expr: string | null | undefined): Filter | null {
  if (expr === null || expr === undefined || expr === "") return null;
  try {
    return parseFilter(expr);
  } catch (e) {
    const msg = e instanceof FilterError ? e.message : String(e);
    throw new OptionsError(`Option "${name}": ${msg}`);
  }
}
