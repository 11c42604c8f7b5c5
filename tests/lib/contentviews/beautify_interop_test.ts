/** The CSS, JavaScript and XML/HTML beautifiers give the same text as mitmproxy's (8.1, the Debian package). */
import assert from "node:assert/strict";
import { beautifyCss, beautifyJs } from "../../../lib/contentviews/code.ts";
import { formatXml } from "../../../lib/contentviews/markup.ts";

const PY = "/usr/bin/python3";
let hasMitmproxy = false;
try {
  hasMitmproxy =
    (await new Deno.Command(PY, { args: ["-c", "import mitmproxy.contentviews"], stderr: "null" })
      .output()).code === 0;
} catch { /* no python */ }

const CSS = [
  "body{color:red;background:url('a;b')}a,b{x:1}/* c{d} */",
  '@media screen{.a{margin:0 auto;content:"}"}}',
  "a { color : blue ; }\n\n\n  b{c:d}",
];
const JS = [
  "function f(a){if(a){return 'x;y'}else{return /a;b/g};}var x=1;",
  "const s=`a{b}c`;for(let i=0;i<3;i++){console.log(i)}// done;",
  'x={a:1,b:{c:[1,2]}};y="}";',
];
const XML = [
  "<!DOCTYPE html><html><head><title>T</title></head><body><div><p>hi</p><br><img src=x></div></body></html>",
  '<?xml version="1.0"?><root><a x="1"/><b>text\nover lines</b><!-- comment --><c><![CDATA[<x>]]></c></root>',
  "<ul><li>one</li><li>two <b>bold</b> text</li></ul>   trailing",
];

Deno.test({
  name: "contentviews: beautifiers agree with mitmproxy" +
    (hasMitmproxy ? "" : " [ignored: mitmproxy not installed]"),
  ignore: !hasMitmproxy,
  async fn() {
    const py = `
import json, sys
from mitmproxy.contentviews import css, javascript, xml_html
d = json.load(sys.stdin)
print(json.dumps({
  "css": [css.beautify(x) for x in d["css"]],
  "js": [javascript.beautify(x) for x in d["js"]],
  "xml": [xml_html.format_xml(xml_html.tokenize(x)) for x in d["xml"]],
}))`;
    const p = new Deno.Command(PY, { args: ["-c", py], stdin: "piped", stdout: "piped" }).spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({ css: CSS, js: JS, xml: XML })));
    await w.close();
    const want = JSON.parse(new TextDecoder().decode((await p.output()).stdout));
    assert.deepEqual(CSS.map((x) => beautifyCss(x)), want.css);
    assert.deepEqual(JS.map(beautifyJs), want.js);
    assert.deepEqual(XML.map(formatXml), want.xml);
  },
});
