/**
 * Modify an HTML form submission (mitmproxy's examples/addons/http-modify-form.py).
 *
 *     mitmdeno -s addons/examples/http_modify_form.ts
 */
import type { HTTPFlow } from "mitmdeno";

export function request(flow: HTTPFlow): void {
  if (flow.request.urlencodedForm.size) {
    // If there's already a form, one can just add items to it (a live view, as in mitmproxy):
    flow.request.urlencodedForm.set("mitmproxy", "rocks");
  } else {
    // One can also just pass new form data.
    // This sets the proper content type and overrides the body.
    flow.request.urlencodedForm = [["foo", "bar"]];
  }
}
