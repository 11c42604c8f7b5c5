/**
 * mitmdeno's public API for addon authors.
 *
 * ```ts
 * import { type HTTPFlow, Response } from "mitmdeno";
 *
 * export function request(flow: HTTPFlow) {
 *   if (flow.request.prettyUrl.endsWith("/blocked")) flow.response = Response.make(403, "no");
 * }
 * ```
 * @module
 */
export { Headers } from "./lib/http/headers.ts";
export { Message, Request, Response } from "./lib/http/message.ts";
export type {
  BodyInit,
  HeadersInit,
  RequestInit,
  ResponseInit,
  StreamTransformer,
} from "./lib/http/message.ts";
export { Flow, FlowError, HTTPFlow } from "./lib/flow/flow.ts";
export { Client, Connection, Server } from "./lib/flow/connection.ts";
export { MessageType, WebSocketData, WebSocketMessage } from "./lib/flow/websocket.ts";
export { TCPFlow, TCPMessage } from "./lib/flow/tcp.ts";
export type { Address } from "./lib/flow/connection.ts";
export { ctx } from "./lib/addons/ctx.ts";
export { AddonHalt, EVENTS } from "./lib/addons/manager.ts";
export type { Addon, EventName, Loader } from "./lib/addons/manager.ts";
export { Options, OptionsError } from "./lib/addons/options.ts";
export type { OptionSpec, OptionType } from "./lib/addons/options.ts";
export type { LogEntry, LogLevel } from "./lib/addons/log.ts";
export type { ServerConnectionHookData } from "./lib/proxy/conns/manager.ts";
export { reasonPhrase } from "./lib/http/status.ts";
export { VERSION } from "./lib/version.ts";
export { FilterError, matchFilter, parseFilter } from "./lib/flow/filter.ts";
export type { Filter } from "./lib/flow/filter.ts";
export { parseFilterOrNull } from "./lib/addons/filter_option.ts";
export {
  compilePyRegex,
  escapedStrToBytes,
  parseSpec,
  parseSpecList,
  pySub,
  pyTemplate,
  readReplacement,
  specError,
} from "./lib/addons/spec.ts";
export type { Spec } from "./lib/addons/spec.ts";
export { concurrent } from "./lib/addons/script/concurrent.ts";
export { FlowReadError, FlowWriter, readFlows, readFlowsToArray } from "./lib/io/flowfile.ts";
export type { FlowSource, FlowWriterOptions, ReadFlowsOptions } from "./lib/io/flowfile.ts";
export { harToFlows, makeHar, validateHar } from "./lib/io/har.ts";
export type { Har, HarEntry } from "./lib/io/har.ts";
export type { MasterLike } from "./lib/addons/ctx.ts";
export { LOG_LEVELS } from "./lib/addons/log.ts";
export type { Logger, LogSink } from "./lib/addons/log.ts";
export type { CommandFn } from "./lib/addons/manager.ts";
export type { FilterNode, ParseFilterOptions } from "./lib/flow/filter.ts";
export type { FormPart, FormValue, MultipartForm } from "./lib/http/multipart.ts";
export type { Json } from "./lib/io/har.ts";
// the data of the connection-level hooks (tls_clienthello, tls_start_client/server, tls_established_*,
// tls_failed_*, next_layer; server_connect and friends get ServerConnectionHookData)
export type { ClientHelloData, TlsData } from "./lib/proxy/layers/tls.ts";
export type { NextLayerData } from "./lib/proxy/layers/next_layer.ts";
export type { ClientHello } from "./lib/tls/clienthello.ts";
export type { Context } from "./lib/proxy/context.ts";
