import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { encode as msgpackEncode } from "@msgpack/msgpack";
import {
  availableViews,
  cutAfterNLines,
  highlight,
  prettify,
  prettifyMessage,
} from "../../../lib/contentviews/mod.ts";
import { VIEW_NAMES } from "../../../lib/contentviews/names.ts";
import { hexDump } from "../../../lib/contentviews/raw.ts";
import { prettyJson } from "../../../lib/contentviews/json.ts";
import { Request, Response } from "../../../lib/http/message.ts";

const te = new TextEncoder();
const view = (body: string | Uint8Array, contentType?: string, name = "auto") =>
  prettify(typeof body === "string" ? te.encode(body) : body, contentType ? { contentType } : {}, name);

Deno.test("contentviews: auto picks by content type and data, as mitmproxy", () => {
  assert.equal(view('{"a":1}', "application/json").viewName, "json");
  assert.equal(view('{"a":1}', "application/vnd.api+json").viewName, "json");
  assert.equal(view("<a>b</a>", "text/html").viewName, "xml/html");
  assert.equal(view("  <x/>", "text/plain").viewName, "xml/html", "looks like XML: 0.4 beats raw");
  assert.equal(view("a{b:c}", "text/css").viewName, "css");
  assert.equal(view("var a=1;", "application/javascript").viewName, "javascript");
  assert.equal(view("a=1&b=2", "application/x-www-form-urlencoded").viewName, "url-encoded");
  assert.equal(view("hello", "text/plain").viewName, "raw");
  assert.equal(view(new Uint8Array([0, 1, 2, 3, 255]), "application/octet-stream").viewName, "hex dump");
  assert.equal(view(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), "image/png").viewName, "image");
  assert.equal(view("<svg/>", "image/svg+xml").viewName, "xml/html", "svg is not an image view");
  assert.equal(view('{"query":"query {\\n a\\n}"}', "application/json").viewName, "graphql");
  assert.equal(view("", "application/json").viewName, "raw", "empty: nothing but raw fits");
});

Deno.test("contentviews: the view list has mitmproxy's names", () => {
  const names = availableViews();
  for (
    const n of ["auto", "raw", "hex dump", "hex stream", "json", "xml/html", "css", "javascript", "image"]
  ) {
    assert.ok(names.includes(n), n);
  }
  for (const n of ["url-encoded", "multipart form", "query", "graphql", "zip archive", "msgpack"]) {
    assert.ok(names.includes(n), n);
  }
  assert.deepEqual(names, [...names].sort((a, b) => (a === "auto" ? -1 : b === "auto" ? 1 : a < b ? -1 : 1)));
});

Deno.test("contentviews: JSON keeps key order, duplicates and number spellings; 4-space indent", () => {
  assert.equal(
    prettyJson('{"b":1,"2":[1,2.0,{"x":"\\u00e9\\n"}],"e":{},"l":[],"big":12345678901234567890}'),
    '{\n    "b": 1,\n    "2": [\n        1,\n        2.0,\n        {\n            "x": "é\\n"\n        }\n    ],\n' +
      '    "e": {},\n    "l": [],\n    "big": 12345678901234567890\n}',
  );
  assert.throws(() => prettyJson("{bad}"));
  assert.throws(() => prettyJson('{"a":1} x'));
  const r = view("{nope", "application/json");
  assert.equal(r.viewName, "raw");
  assert.equal(r.description, "[failed to parse as JSON]");
  const explicit = view("{nope", "text/plain", "json");
  assert.equal(explicit.syntaxHighlight, "error");
  assert.match(explicit.text, /^Couldn't parse as JSON:/);
});

Deno.test("contentviews: raw decodes UTF-8 with backslash escapes; control characters shown as dots", () => {
  assert.equal(
    view(new Uint8Array([0x61, 0xff, 0x62, 0x00, 0x0a, 0x63]), undefined, "raw").text,
    "a\\xffb.\nc",
  );
  assert.equal(view("un café au lait, s\u2019il vous plaît").text, "un café au lait, s’il vous plaît");
});

Deno.test("contentviews: hex dump and hex stream as mitmproxy_rs prints them", () => {
  assert.equal(
    hexDump(te.encode("abcd")),
    "0000:   61 62 63 64                                          abcd",
  );
  const bytes = new Uint8Array(20).map((_, i) => i + 0x3c);
  assert.equal(
    hexDump(bytes),
    "0000:   3c 3d 3e 3f  40 41 42 43  44 45 46 47  48 49 4a 4b   <=>?@ABCDEFGHIJK\n" +
      "0010:   4c 4d 4e 4f                                          LMNO",
  );
  assert.equal(view(new Uint8Array([0, 255]), undefined, "hex stream").text, "00ff");
});

Deno.test("contentviews: forms, multipart and query as YAML (repeated keys become lists)", () => {
  assert.equal(view("a=1&b=x+y&a=2", "application/x-www-form-urlencoded").text, "a:\n- '1'\n- '2'\nb: x y\n");
  const ct = "multipart/form-data; boundary=XX";
  const body = te.encode('--XX\r\nContent-Disposition: form-data; name="f"\r\n\r\nv1\r\n--XX--\r\n');
  const r = prettify(body, { contentType: "multipart/form-data", contentTypeHeader: ct });
  assert.equal(r.viewName, "multipart form");
  assert.equal(r.text, "f: v1\n");
  const req = Request.make("GET", "http://example.com/?q=1&q=2&x=y");
  const qr = prettifyMessage(req);
  assert.equal(qr.viewName, "query");
  assert.equal(qr.text, "q:\n- '1'\n- '2'\nx: y\n");
});

Deno.test("contentviews: messages are decoded first and say so", () => {
  const r = Response.make(200, "", { "content-type": "application/json", "content-encoding": "gzip" });
  r.rawContent = new Uint8Array(gzipSync(te.encode('{"a":true}')));
  const out = prettifyMessage(r);
  assert.equal(out.viewName, "json");
  assert.equal(out.description, "[decoded gzip]");
  assert.equal(out.text, '{\n    "a": true\n}');
  r.rawContent = te.encode("not gzip");
  assert.equal(prettifyMessage(r).description, "[cannot decode][failed to parse as JSON]");
  assert.equal(prettifyMessage(r).text, "not gzip");
  const missing = Response.make(200);
  missing.rawContent = null;
  assert.deepEqual(prettifyMessage(missing), {
    text: "Content is missing.",
    syntaxHighlight: "error",
    viewName: null,
    description: "",
  });
});

Deno.test("contentviews: images report format, size and text metadata", () => {
  // a 1x1 PNG with a tEXt chunk (CRCs are not checked)
  const chunk = (type: string, body: Uint8Array) => {
    const out = new Uint8Array(12 + body.length);
    new DataView(out.buffer).setUint32(0, body.length);
    out.set(te.encode(type), 4);
    out.set(body, 8);
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 3);
  new DataView(ihdr.buffer).setUint32(4, 2);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("tEXt", te.encode("Software\0mitmdeno")),
    chunk("IEND", new Uint8Array()),
  ];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) png.set(p, (o += p.length) - p.length);
  assert.equal(
    view(png, "image/png").text,
    "# PNG Image\nFormat: Portable network graphics\nSize: 3 x 2 px\nSoftware: mitmdeno\n",
  );
  const gif = new Uint8Array([...te.encode("GIF89a"), 5, 0, 7, 0, 0, 3, 0, 0x3b]);
  assert.equal(
    view(gif, "image/gif").text,
    "# GIF Image\nFormat: Compuserve GIF\nVersion: GIF89a\nSize: 5 x 7 px\nbackground: '3'\n",
  );
  assert.equal(view(te.encode("nothing"), "image/png").text, "# Unknown Image\n");
  const broken = view(png.subarray(0, 20), "image/png");
  assert.equal(broken.description, "[failed to parse as Image]");
});

Deno.test("contentviews: msgpack and zip", () => {
  const mp = msgpackEncode({ name: "John Doe", age: 42, tags: ["a", "b"] });
  assert.equal(view(mp, "application/msgpack").text, "name: John Doe\nage: 42\ntags:\n- a\n- b\n");
  // an empty zip: just the end of central directory record
  const empty = new Uint8Array(22);
  new DataView(empty.buffer).setUint32(0, 0x06054b50, true);
  assert.equal(view(empty, "application/zip").text, "(empty zip file)");
});

Deno.test("contentviews: cutAfterNLines and highlight", () => {
  assert.equal(cutAfterNLines("a\nb\nc\n", 2), "a\nb\n");
  assert.equal(cutAfterNLines("a\nb", 5), "a\nb");
  const r = view('{"a": [1, true, "s"]}', "application/json");
  const chunks = highlight(r.text, r.syntaxHighlight);
  assert.equal(chunks.map((c) => c[1]).join(""), r.text, "chunks join back to the text");
  assert.ok(chunks.some(([t, s]) => t === "name" && s === '"a"'));
  assert.ok(chunks.some(([t, s]) => t === "number" && s === "1"));
  assert.ok(chunks.some(([t, s]) => t === "boolean" && s === "true"));
  assert.ok(chunks.some(([t, s]) => t === "string" && s === '"s"'));
  const x = highlight('<a href="x"><!-- c --></a>', "xml");
  assert.deepEqual(x.filter(([t]) => t), [["name", "a"], ["name", "href"], ["string", '"x"'], [
    "comment",
    "<!-- c -->",
  ], ["name", "a"]]);
  assert.deepEqual(highlight("oops", "error"), [["error", "oops"]]);
});

Deno.test("names.ts lists exactly the registry's views (the dumper declares its choices from it before loading them)", () => {
  assert.deepEqual([...VIEW_NAMES], availableViews());
});
