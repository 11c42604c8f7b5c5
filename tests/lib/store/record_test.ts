/** Flow records: the encoder's cached connection JSON gives what flowRecord gives, also after changes. */
import assert from "node:assert/strict";
import { flowRecord, RecordEncoder } from "../../../lib/store/record.ts";
import { tflow } from "../io/_tflow.ts";

const same = (enc: RecordEncoder, f: Parameters<typeof flowRecord>[0]) =>
  assert.deepEqual(JSON.parse(enc.json(f)), JSON.parse(JSON.stringify(flowRecord(f))));

Deno.test("record encoder: the JSON of flowRecord, for flows with and without response, error, WebSocket", () => {
  const enc = new RecordEncoder();
  for (const opts of [{}, { resp: true }, { resp: true, err: "boom" }, { resp: true, ws: true }]) {
    const f = tflow(opts);
    f.metadata = { a: 1, nested: { b: [1, 2] } };
    same(enc, f);
    // again, from the cache
    same(enc, f);
  }
});

Deno.test("record encoder: a connection changed after its first flow is serialized anew", () => {
  const enc = new RecordEncoder();
  const f = tflow({ resp: true });
  same(enc, f);
  const g = tflow({ resp: true });
  g.clientConn = f.clientConn;
  g.serverConn = f.serverConn;
  same(enc, g);
  // fields replaced (what the proxy does when a connection ends or TLS is set up)
  f.clientConn.timestampEnd = 1234.5;
  f.clientConn.error = "reset";
  f.serverConn.sni = "changed.example";
  f.serverConn.address = ["10.0.0.1", 8443];
  f.serverConn.via = ["http", ["proxy.example", 3128]];
  same(enc, g);
  assert.equal(JSON.parse(enc.json(g)).client.timestampEnd, 1234.5);
  // an array changed in place is seen by its length
  f.serverConn.certificateList.push("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
  same(enc, g);
  f.clientConn.alpnOffers.push("h2");
  same(enc, g);
  assert.deepEqual(JSON.parse(enc.json(g)).client.alpnOffers.at(-1), "h2");
  f.clientConn.proxyMode = "socks5";
  same(enc, g);
  assert.equal(JSON.parse(enc.json(g)).client.proxyMode, "socks5");
});
