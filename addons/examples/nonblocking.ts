/**
 * A slow handler that delays only its own flow. mitmproxy needs `@concurrent` for this; in mitmdeno
 * every hook already behaves so (see `concurrent` in mod.ts), and the helper is kept so scripts port
 * directly.
 *
 *     mitmdeno -s addons/examples/nonblocking.ts
 *     curl -x localhost:8080 http://example.com/slow   # waits 1 s; other requests do not
 */
import { concurrent, ctx, type HTTPFlow } from "mitmdeno";

export const request = concurrent(async (flow: HTTPFlow) => {
  if (!flow.request.path.startsWith("/slow")) return;
  ctx.log.info(`start request: ${flow.request.host}${flow.request.path}`);
  await new Promise((r) => setTimeout(r, 1000));
  ctx.log.info(`end request: ${flow.request.host}${flow.request.path}`);
});
