/**
 * Filter expressions over stored rows. The whole expression runs with the filter engine
 * (`lib/flow/filter.ts`), so results are exactly those of a live flow; two things make it fast:
 *
 * - operators of a top-level `&` chain that a column answers exactly (`~c 200`, `~s`, `~q`, `~e`,
 *   `~marked`, `~replay`, `~websocket`, `~http`, `~all`) become SQL conditions, and when nothing else is
 *   left the filter engine is not called at all;
 * - the rest is evaluated inside SQLite by a function that gets a row's columns and builds a light flow
 *   from them (method, hosts, URL, status, marker, comment, addresses), so no record is parsed, unless
 *   the expression looks at headers, bodies or metadata (`~h ~hq ~hs ~b ~bq ~bs ~t ~tq ~ts ~a ~meta`):
 *   then the row's record is parsed and its bodies read on demand, after SQL prefilters (literal parts of
 *   the regex looked up in the record's text and in the stored bodies) dropped the rows that cannot match.
 *
 * @module
 */
import type { Filter, FilterNode } from "../flow/filter.ts";

/** Operators that need more than the list columns. */
const NEEDS_RECORD = new Set(["h", "hq", "hs", "b", "bq", "bs", "t", "tq", "ts", "a", "meta"]);

/** Operators that read bodies (or WebSocket messages, which the record holds). */
const NEEDS_BODY = new Set(["b", "bq", "bs"]);

/** Whether evaluating `node` reads a body. */
export function needsBodies(node: FilterNode): boolean {
  switch (node.kind) {
    case "and":
    case "or":
      return node.items.some(needsBodies);
    case "not":
      return needsBodies(node.item);
    case "op":
      return NEEDS_BODY.has(node.op);
  }
}

/** Whether evaluating `node` needs a flow's record (headers, bodies, metadata). */
export function needsRecord(node: FilterNode): boolean {
  switch (node.kind) {
    case "and":
    case "or":
      return node.items.some(needsRecord);
    case "not":
      return needsRecord(node.item);
    case "op":
      return NEEDS_RECORD.has(node.op);
  }
}

/** The SQL condition a column gives for an operator, or null when a column cannot answer it exactly. */
function columnCondition(node: FilterNode): string | null {
  if (node.kind === "not") {
    const inner = columnCondition(node.item);
    return inner === null ? null : `NOT (${inner})`;
  }
  if (node.kind !== "op") return null;
  switch (node.op) {
    case "all":
      return "1";
    case "http":
      return "type = 'http'";
    case "c":
      return `status = ${Math.trunc(Number(node.arg))}`;
    case "s":
      return "status IS NOT NULL";
    case "q":
      return "status IS NULL";
    case "e":
      return "error IS NOT NULL";
    case "marked":
      return "marked != ''";
    case "replay":
      return "is_replay IS NOT NULL";
    case "replayq":
      return "is_replay = 'request'";
    case "replays":
      return "is_replay = 'response'";
    case "websocket":
      return "ws = 1";
  }
  return null;
}

/** A filter split into SQL conditions and what the filter engine still has to check. */
export interface CompiledQuery {
  /** SQL conditions, joined with AND (empty: none). */
  where: string[];
  /** Whether the filter engine must still run on each row passing `where`. */
  needsEngine: boolean;
  /** Whether the engine needs the full record (else the light columns suffice). */
  needsRecord: boolean;
  /** Whether the engine reads bodies (else the flows it sees have empty ones). */
  needsBodies: boolean;
}

/** Split `filter` into column conditions and the engine's part. */
/**
 * Runs of plain characters (2 or more) every match of a (Python-syntax) regex must contain, or null when
 * it is not safe to say: alternation, inline flags, a non-ASCII literal (SQL LIKE folds only ASCII case).
 * Quantified characters and classes end a run; a group ends the scan.
 */
export function requiredLiterals(pattern: string): string[] | null {
  if (pattern.includes("|") || pattern.startsWith("(?")) return null;
  const runs: string[] = [];
  let run = "";
  const end = () => {
    if (run.length >= 2) runs.push(run);
    run = "";
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const next = pattern[i + 1];
    const optional = next === "*" || next === "?" || next === "{";
    if (c === "\\") {
      const e = pattern[i + 1];
      i++;
      if (
        e !== undefined && /[.^$*+?()[\]{}|\\/\-]/.test(e) &&
        !(pattern[i + 1] === "*" || pattern[i + 1] === "?" || pattern[i + 1] === "{")
      ) {
        run += e;
      } else end();
      continue;
    }
    if ("()[]|".includes(c)) {
      end();
      if (c === "(" || c === "[") break; // what follows may be optional: stop here
      continue;
    }
    if (".^$*+?{}".includes(c)) {
      end();
      continue;
    }
    if (optional) {
      end();
      continue;
    }
    if (c.charCodeAt(0) > 0x7e || c.charCodeAt(0) < 0x20) return null;
    run += c;
  }
  end();
  return runs.length ? runs : null;
}

/** `col LIKE '%lit%'` with LIKE's wildcards and SQL quotes escaped. */
function like(col: string, lit: string): string {
  const esc = lit.replace(/[\\%_]/g, (m) => "\\" + m).replaceAll("'", "''");
  return `${col} LIKE '%${esc}%' ESCAPE '\\'`;
}

/** The flow's record (headers and all, as JSON text) in a condition over the flows table. */
const RECORD = "mitmdeno_rec(rec_off, rec_len)";
/** A body that may be stored encoded (gzip, br, ...): its stored bytes say nothing about its content. */
const MAYBE_ENCODED = "enc = 1";

/** The stored body `col` (req_body, resp_body) contains every literal, ASCII case folded (bytes, NULs too). */
function bodyHas(col: "req_body" | "resp_body", lits: string[]): string {
  const data = `mitmdeno_body(${col}, ${col === "req_body" ? "req_len" : "resp_len"})`;
  // lower() keeps a blob's every byte (NULs included) and folds ASCII only; instr() then compares bytes
  const has = lits.map((l) => `instr(lower(${data}), '${l.toLowerCase().replaceAll("'", "''")}') > 0`);
  return `(${col} IS NOT NULL AND ${has.join(" AND ")})`;
}

/**
 * A cheap SQL condition every flow matching `node` passes (the engine still decides), or null. Literal runs
 * of the regex (see {@link requiredLiterals}) are looked up case-insensitively: in list columns, in the
 * record's JSON text for header operators (literals with `"` or `\`, which JSON escapes, are not), and in
 * the stored bodies for body operators (a flow whose body may be encoded, or with WebSocket messages,
 * always passes).
 */
function prefilter(node: FilterNode): string | null {
  if (node.kind !== "op" || typeof node.arg !== "string") return null;
  const lits = requiredLiterals(node.arg);
  if (lits === null) return null;
  const all = (col: string, use = lits) => use.map((l) => like(col, l)).join(" AND ");
  switch (node.op) {
    case "d":
      return `((${all("rhost")}) OR (${all("host")}))`;
    case "u":
      return `(${all("url")})`;
    case "m":
      return `(${all("method")})`;
  }
  const jsonSafe = lits.filter((l) => !/["\\]/.test(l));
  switch (node.op) {
    case "t":
    case "tq":
    case "ts":
      return jsonSafe.length ? `(${all(RECORD, jsonSafe)})` : null;
    case "h":
    case "hq":
    case "hs": {
      // headers are matched as "name: value" lines, stored as [name, value]: a run with ':' may span both
      const inOne = jsonSafe.filter((l) => !l.includes(":"));
      return inOne.length ? `(${all(RECORD, inOne)})` : null;
    }
    case "b":
      return `(ws = 1 OR ${MAYBE_ENCODED} OR ${bodyHas("req_body", lits)} OR ${bodyHas("resp_body", lits)})`;
    case "bq":
      return `(ws = 1 OR ${MAYBE_ENCODED} OR ${bodyHas("req_body", lits)})`;
    case "bs":
      return `(ws = 1 OR ${MAYBE_ENCODED} OR ${bodyHas("resp_body", lits)})`;
  }
  return null;
}

export function compileQuery(filter: Filter | null): CompiledQuery {
  if (!filter) return { where: [], needsEngine: false, needsRecord: false, needsBodies: false };
  const ast = filter.ast;
  const items = ast.kind === "and" ? ast.items : [ast];
  const where: string[] = [];
  let rest = false;
  for (const it of items) {
    const c = columnCondition(it);
    if (c !== null) where.push(c);
    else {
      rest = true;
      const p = prefilter(it);
      if (p !== null) where.push(p);
    }
  }
  return {
    where,
    needsEngine: rest,
    needsRecord: rest && needsRecord(ast),
    needsBodies: rest && needsBodies(ast),
  };
}

/** The columns the light flow is built from, in the order {@link lightFlow} takes them. */
export const LIGHT_COLUMNS =
  "type, method, rhost, host, url, status, marked, comment, is_replay, error, ws, src, dst";

function address(s: string | null): [string, number] | null {
  if (s === null) return null;
  const i = s.lastIndexOf(":");
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

/**
 * A duck-typed flow with what the list columns hold: enough for every operator that does not need the
 * record (see {@link needsRecord}).
 */
export function lightFlow(
  type: string,
  method: string,
  rhost: string,
  host: string,
  url: string,
  status: number | null,
  marked: string,
  comment: string,
  isReplay: string | null,
  error: string | null,
  ws: number,
  src: string | null,
  dst: string | null,
): unknown {
  return {
    type,
    request: { method, host: rhost, prettyHost: host, prettyUrl: url },
    response: status === null ? null : { statusCode: status },
    marked,
    comment,
    isReplay,
    error: error === null ? null : { msg: error },
    websocket: ws ? {} : null,
    metadata: {},
    clientConn: { peername: address(src) },
    serverConn: { address: address(dst) },
  };
}
