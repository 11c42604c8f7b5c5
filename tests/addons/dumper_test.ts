/** The dumper prints flows like mitmdump at each flow_detail level. */
import assert from "node:assert/strict";
import { Master } from "../../lib/master.ts";
import { Dumper } from "../../addons/dumper.ts";
import { Client, FlowError, HTTPFlow, Request, Response, Server } from "../../mod.ts";

async function setup(detail: number, filter?: string) {
  const out: string[] = [];
  const master = new Master();
  const dumper = new Dumper((t) => out.push(t));
  await master.addAddons(dumper);
  await master.options.update({ flow_detail: detail, ...(filter ? { dumper_filter: filter } : {}) });
  return { master, dumper, out };
}

function flow(): HTTPFlow {
  const client = new Client({ peername: ["127.0.0.1", 50000] });
  const req = Request.make("POST", "http://example.com/path?q=1", '{"a": 1}', {
    "content-type": "application/json",
  });
  req.timestampStart = 1000;
  const f = new HTTPFlow(client, new Server(["example.com", 80]), req);
  f.response = Response.make(404, "not here", { "content-type": "text/plain" });
  f.response.timestampEnd = 1000.012;
  return f;
}

Deno.test("dumper: flow_detail 1 prints the request line and an aligned response line", async () => {
  const { dumper, out } = await setup(1);
  dumper.response(flow());
  assert.equal(
    out.join(""),
    "127.0.0.1:50000: POST http://example.com/path?q=1\n" +
      "              << 404 Not Found 8b 12ms\n",
  );
});

Deno.test("dumper: flow_detail 2 adds headers, 3 adds bodies (JSON pretty-printed)", async () => {
  const two = await setup(2);
  two.dumper.response(flow());
  assert.match(two.out.join(""), /\n {4}content-type: application\/json\n/);
  assert.doesNotMatch(two.out.join(""), /"a": 1/);
  const three = await setup(3);
  three.dumper.response(flow());
  const text = three.out.join("");
  assert.match(text, /\n {4}\{\n {6}"a": 1\n {4}\}\n/);
  assert.match(text, /\n {4}not here\n/);
});

Deno.test("dumper: long bodies are cut at 512 lines below flow_detail 4", async () => {
  const f = flow();
  f.response!.text = Array.from({ length: 600 }, (_, i) => `line ${i}`).join("\n");
  const three = await setup(3);
  three.dumper.response(f);
  assert.match(three.out.join(""), /line 511\n {4}\(cut off\)/);
  assert.doesNotMatch(three.out.join(""), /line 512/);
  const four = await setup(4);
  four.dumper.response(f);
  assert.match(four.out.join(""), /line 599/);
});

Deno.test("dumper: errors print after <<, flow_detail 0 prints nothing, filters apply", async () => {
  const f = flow();
  f.response = null;
  f.error = new FlowError("Cannot connect to example.com:80: connection refused");
  const one = await setup(1);
  one.dumper.error(f);
  assert.match(one.out.join(""), / << Cannot connect to example\.com:80: connection refused\n$/);
  const zero = await setup(0);
  zero.dumper.response(flow());
  assert.equal(zero.out.length, 0);
  const filtered = await setup(1, "~m GET");
  filtered.dumper.response(flow());
  assert.equal(filtered.out.length, 0);
  const matched = await setup(1, "~m POST & ~c 404");
  matched.dumper.response(flow());
  assert.equal(matched.out.length, 1);
});

Deno.test("dumper: a bad dumper_filter is refused naming the option", async () => {
  const { master } = await setup(1);
  await assert.rejects(() => master.options.update({ dumper_filter: "~c" }), /Option "dumper_filter"/);
});
