/**
 * Synthetic flow files for the web benchmark: `n` finished HTTP flows with 1 KiB response bodies, spread
 * over 100 hosts, a few methods, status codes and content types, so filters have something to find.
 * Flow `i` is deterministic (same file for the same `n`); ids are random as in a real capture.
 *
 * @module
 */
import { Client, Server } from "../../lib/flow/connection.ts";
import { HTTPFlow } from "../../lib/flow/flow.ts";
import { Request, Response } from "../../lib/http/message.ts";
import { FlowWriter } from "../../lib/io/flowfile.ts";

/** Response body size of every generated flow. */
export const BODY_SIZE = 1024;

const STATUS = [200, 200, 200, 200, 200, 200, 301, 304, 404, 500];
const TYPES = ["application/json", "text/html; charset=utf-8", "text/css", "application/javascript"];

/** A body of exactly {@link BODY_SIZE} bytes mentioning the flow number (`needle-<i>`). */
function body(i: number): Uint8Array {
  const head = `{"flow":${i},"tag":"needle-${i}","pad":"`;
  const tail = `"}`;
  return new TextEncoder().encode(head + "x".repeat(BODY_SIZE - head.length - tail.length) + tail);
}

/** Generated flow number `i` (timestamps one millisecond apart from `t0`). */
export function syntheticFlow(i: number, t0 = 1_764_000_000): HTTPFlow {
  const host = `host${i % 100}.example`;
  const t = t0 + i / 1000;
  const client = new Client({ peername: ["127.0.0.1", 40000 + (i % 20000)], sockname: ["127.0.0.1", 8080] });
  client.timestampStart = t;
  const server = new Server([host, 80]);
  server.peername = ["10.0.0." + (i % 100), 80];
  server.timestampStart = t + 0.0001;
  server.timestampTcpSetup = t + 0.0002;
  const post = i % 7 === 0;
  const req = new Request({
    method: post ? "POST" : "GET",
    scheme: "http",
    host,
    port: 80,
    path: `/api/item/${i}?page=${i % 13}`,
    authority: "",
    httpVersion: "HTTP/1.1",
    headers: [["host", host], ["user-agent", "bench/1.0"], ["accept", "*/*"]],
    content: post ? `name=item${i}&value=${i * 3}` : "",
    timestampStart: t,
    timestampEnd: t + 0.0003,
  });
  if (post) req.headers.set("content-type", "application/x-www-form-urlencoded");
  const f = new HTTPFlow(client, server, req, false);
  const status = STATUS[i % STATUS.length];
  f.response = new Response({
    statusCode: status,
    reason: status === 200
      ? "OK"
      : status === 404
      ? "Not Found"
      : status === 500
      ? "Internal Server Error"
      : "",
    httpVersion: "HTTP/1.1",
    headers: [["content-type", TYPES[i % TYPES.length]], ["content-length", String(BODY_SIZE)]],
    content: body(i),
    timestampStart: t + 0.002,
    timestampEnd: t + 0.003,
  });
  return f;
}

/**
 * Write `n` generated flows to `path` (flow format `version`; 17 is what mitmproxy 8.x reads) unless a
 * complete file from an earlier run is there (a `.done` marker next to it). Returns the path.
 */
export async function ensureFlowFile(path: string, n: number, version = 17): Promise<string> {
  try {
    if (Deno.readTextFileSync(`${path}.done`) === `${n} ${version}`) return path;
  } catch { /* not made yet */ }
  const w = await FlowWriter.open(path, { version });
  for (let i = 0; i < n; i++) await w.add(syntheticFlow(i));
  await w.close();
  Deno.writeTextFileSync(`${path}.done`, `${n} ${version}`);
  return path;
}
