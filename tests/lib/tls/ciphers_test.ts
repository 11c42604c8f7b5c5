import assert from "node:assert/strict";
import {
  CIPHER_SUITES,
  cipherAllowed,
  cipherPolicy,
  clientCanMeet,
  DENO_TLS12_SUITES,
  evaluateCipherString,
  offersTls13,
} from "../../../lib/tls/ciphers.ts";

/** The TLS 1.2-and-older suites the system's OpenSSL selects for `spec` (null: "no cipher match"). */
async function opensslSelects(spec: string): Promise<Set<string> | null> {
  const r = await new Deno.Command("openssl", {
    args: ["ciphers", "-tls1_2", spec],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  if (r.code !== 0) return null;
  return new Set(new TextDecoder().decode(r.stdout).trim().split(":"));
}

const KNOWN = new Set(CIPHER_SUITES.map((c) => c.name));
/** OpenSSL 3 builds without 3DES (Debian's) cannot be the oracle for it. */
const COMPARABLE = new Set([...KNOWN].filter((n) => n !== "DES-CBC3-SHA"));

Deno.test("ciphers: the evaluator selects what OpenSSL selects (among the suites it knows)", async () => {
  const specs = [
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305",
    "HIGH",
    "HIGH:!aNULL:!MD5",
    "ECDHE+AESGCM",
    "ECDHE+AES256",
    "aECDSA",
    "kRSA",
    "AES128:!SHA1",
    "ALL:!ECDHE",
    "ECDHE:-AESGCM:+CHACHA20",
    "CHACHA20",
    "AESGCM+aRSA",
    "DHE",
    "SHA384",
    "SHA256:!kRSA",
    "DEFAULT:!AES256",
    "ECDHE-RSA-AES256-SHA:@STRENGTH",
  ];
  for (const spec of specs) {
    const theirs = await opensslSelects(spec);
    assert.ok(theirs, `openssl rejects ${spec}`);
    const expected = [...theirs].filter((n) => COMPARABLE.has(n)).sort();
    const ours = evaluateCipherString(spec).map((c) => c.name).filter((n) => COMPARABLE.has(n)).sort();
    assert.deepEqual(ours, expected, spec);
  }
});

Deno.test("ciphers: no match is an error, as OpenSSL's", async () => {
  for (const spec of ["FOO", "!ALL", "ECDHE-RSA-NOPE"]) {
    assert.throws(() => evaluateCipherString(spec), /no cipher match/);
    assert.equal(await opensslSelects(spec), null, spec);
  }
});

Deno.test("ciphers: order, operators, policy and the negotiated check", () => {
  assert.deepEqual(
    evaluateCipherString("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256").map((c) => c.name),
    ["ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256"],
  );
  // "+X" moves to the end, "!X" cannot be re-added, "-X" can
  assert.deepEqual(
    evaluateCipherString("ECDHE+AESGCM+aRSA:+AES128").map((c) => c.name),
    ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"],
  );
  assert.throws(() => evaluateCipherString("!CHACHA20:ECDHE-RSA-CHACHA20-POLY1305"), /no cipher match/);
  assert.deepEqual(
    evaluateCipherString("-CHACHA20:ECDHE-RSA-CHACHA20-POLY1305").map((c) => c.name),
    ["ECDHE-RSA-CHACHA20-POLY1305"],
  );
  const p = cipherPolicy("AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256");
  assert.deepEqual(p.usable, ["ECDHE-RSA-AES128-GCM-SHA256"]);
  assert.deepEqual(p.unusable, ["AES128-SHA"]);
  assert.ok(p.codes.has(0xc02f) && p.codes.has(0x002f));
  assert.ok(cipherAllowed(p, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"));
  assert.ok(!cipherAllowed(p, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"));
  assert.ok(cipherAllowed(p, "TLSv1.3", "TLS_AES_256_GCM_SHA384"), "cipher strings do not govern TLS 1.3");
  assert.ok(cipherAllowed(null, "TLSv1.2", "anything"));
  for (const n of DENO_TLS12_SUITES) assert.ok(KNOWN.has(n), n);
});

Deno.test("ciphers: whether a ClientHello can meet the policy (TLS 1.3 offer, allowed TLS 1.2 suites Deno has)", () => {
  const with13: [number, Uint8Array][] = [[43, new Uint8Array([4, 0x03, 0x04, 0x03, 0x03])]];
  const only12: [number, Uint8Array][] = [[43, new Uint8Array([2, 0x03, 0x03])]];
  assert.ok(offersTls13(with13));
  assert.ok(!offersTls13(only12));
  assert.ok(!offersTls13([]));
  const p = cipherPolicy("ECDHE-ECDSA-AES128-GCM-SHA256:AES128-SHA");
  assert.ok(clientCanMeet(p, [0x002f], true), "TLS 1.3 is not governed");
  assert.ok(!clientCanMeet(p, [0x002f, 0xc030], false), "AES128-SHA is allowed but Deno cannot do it");
  assert.ok(clientCanMeet(p, [0x0a0a, 0xc02b], false), "GREASE ignored, an allowed suite offered");
});
