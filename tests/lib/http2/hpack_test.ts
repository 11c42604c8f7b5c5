import assert from "node:assert/strict";
import { HpackDecoder, HpackEncoder, HpackError, huffmanDecode } from "../../../lib/http2/hpack.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

type Vec = { id: string; hex: string; size: number; headers: [string, string][] };
const REQ1: [string, string][] = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [
  ":authority",
  "www.example.com",
]];
const REQ2: [string, string][] = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: [string, string][] = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [
  ":authority",
  "www.example.com",
], ["custom-key", "custom-value"]];
const RESP1: [string, string][] = [[":status", "302"], ["cache-control", "private"], [
  "date",
  "Mon, 21 Oct 2013 20:13:21 GMT",
], ["location", "https://www.example.com"]];
const RESP2: [string, string][] = [[":status", "307"], ...RESP1.slice(1)];
const RESP3: [string, string][] = [
  [":status", "200"],
  ["cache-control", "private"],
  [
    "date",
    "Mon, 21 Oct 2013 20:13:22 GMT",
  ],
  ["location", "https://www.example.com"],
  ["content-encoding", "gzip"],
  [
    "set-cookie",
    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
  ],
];

// RFC 7541 Appendix C
const C3: Vec[] = [
  { id: "C.3.1", hex: "828684410f7777772e6578616d706c652e636f6d", size: 57, headers: REQ1 },
  { id: "C.3.2", hex: "828684be58086e6f2d6361636865", size: 110, headers: REQ2 },
  {
    id: "C.3.3",
    hex: "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
    size: 164,
    headers: REQ3,
  },
];
const C4: Vec[] = [
  { id: "C.4.1", hex: "828684418cf1e3c2e5f23a6ba0ab90f4ff", size: 57, headers: REQ1 },
  { id: "C.4.2", hex: "828684be5886a8eb10649cbf", size: 110, headers: REQ2 },
  { id: "C.4.3", hex: "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf", size: 164, headers: REQ3 },
];
const C5: Vec[] = [
  {
    id: "C.5.1",
    hex:
      "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
    size: 222,
    headers: RESP1,
  },
  { id: "C.5.2", hex: "4803333037c1c0bf", size: 222, headers: RESP2 },
  {
    id: "C.5.3",
    hex:
      "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
    size: 215,
    headers: RESP3,
  },
];
const C6: Vec[] = [
  {
    id: "C.6.1",
    hex:
      "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
    size: 222,
    headers: RESP1,
  },
  { id: "C.6.2", hex: "4883640effc1c0bf", size: 222, headers: RESP2 },
  {
    id: "C.6.3",
    hex:
      "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    size: 215,
    headers: RESP3,
  },
];

Deno.test("hpack: C.2 literal representations", () => {
  let d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("400a637573746f6d2d6b65790d637573746f6d2d686561646572")), [[
    "custom-key",
    "custom-header",
  ]]);
  assert.equal(d.tableSize, 55);
  d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("040c2f73616d706c652f70617468")), [[":path", "/sample/path"]]);
  assert.equal(d.tableSize, 0);
  d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("100870617373776f726406736563726574")), [["password", "secret"]]);
  assert.equal(d.tableSize, 0);
  assert.deepEqual(new HpackDecoder().decode(hex("82")), [[":method", "GET"]]);
});

for (
  const [name, vecs, table] of [["C.3", C3, 4096], ["C.4", C4, 4096], ["C.5", C5, 256], [
    "C.6",
    C6,
    256,
  ]] as const
) {
  Deno.test(`hpack: ${name} decoded, dynamic table sizes as the RFC says`, () => {
    const d = new HpackDecoder({ maxTableSize: 4096 });
    if (table !== 4096) d.setMaxTableSize(table);
    for (const v of vecs) {
      assert.deepEqual(d.decode(hex(v.hex)), v.headers, v.id);
      assert.equal(d.tableSize, v.size, v.id);
    }
  });
}

Deno.test("hpack: the encoder produces C.4 and C.6 byte for byte (Huffman, incremental indexing)", () => {
  const e = new HpackEncoder();
  for (const v of C4) assert.equal(toHex(e.encode(v.headers)), v.hex, v.id);
  const r = new HpackEncoder(256);
  r.setMaxTableSize(256);
  const first = toHex(r.encode(C6[0].headers));
  // the size update to 256 comes first (3f e1 01), then C.6.1
  assert.equal(first, "3fe101" + C6[0].hex);
  for (const v of C6.slice(1)) assert.equal(toHex(r.encode(v.headers)), v.hex, v.id);
});

Deno.test("hpack: round trips through encoder and decoder, evictions included", () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  for (let i = 0; i < 300; i++) {
    const fields: [string, string][] = [
      [":status", String(200 + (i % 5))],
      ["x-counter", String(i)],
      ["x-big", "v".repeat(i * 7 % 900)],
      ["authorization", "Bearer secret"],
      ["x-bin", String.fromCharCode(0, 255, 128, i & 255)],
    ];
    assert.deepEqual(d.decode(e.encode(fields)), fields);
  }
  assert.ok(d.tableSize <= 4096);
});

Deno.test("hpack: Huffman of every byte value round trips; bad padding and EOS are errors", () => {
  const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  const fields: [string, string][] = [["x", all], ["y", "aaaaaaaaaaaaaaaaaaaaaaa"]];
  assert.deepEqual(d.decode(e.encode(fields)), fields);
  assert.equal(huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4ff")), "www.example.com");
  // padding longer than 7 bits
  assert.throws(() => huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4ffff")), HpackError);
  // padding with a zero bit
  assert.throws(() => huffmanDecode(hex("1e")), HpackError);
  // EOS (30 ones)
  assert.throws(() => huffmanDecode(hex("ffffffff")), HpackError);
});

Deno.test("hpack: malformed blocks and limits", () => {
  assert.throws(() => new HpackDecoder().decode(hex("80")), /index 0/); // index 0
  assert.throws(() => new HpackDecoder().decode(hex("be")), /out of range/);
  assert.throws(() => new HpackDecoder().decode(hex("4a0a")), /truncated/);
  assert.throws(() => new HpackDecoder().decode(hex("1fffffffff0f")), HpackError);
  // a size update above our setting
  assert.throws(() => new HpackDecoder({ maxTableSize: 100 }).decode(hex("3fe101")), /over the limit/);
  // a size update after a field
  assert.throws(() => new HpackDecoder().decode(hex("8220")), /after a field/);
  // the header-list limit: an error marked tooLarge, the table still updated
  const d = new HpackDecoder({ maxHeaderListSize: 60 });
  try {
    d.decode(hex("400a637573746f6d2d6b65790d637573746f6d2d686561646572828684"));
    assert.fail("no error");
  } catch (err) {
    assert.ok(err instanceof HpackError && err.tooLarge);
  }
  assert.equal(d.tableSize, 55);
});
