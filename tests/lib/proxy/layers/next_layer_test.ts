import assert from "node:assert/strict";
import { looksLikeTls, probablyNotHttp } from "../../../../lib/proxy/layers/next_layer.ts";

const b = (s: string) => new TextEncoder().encode(s);
const bytes = (...xs: number[]) => new Uint8Array(xs);

Deno.test("looksLikeTls: recognises a TLS handshake record header for SSLv3 to TLS 1.2 record versions", () => {
  for (const minor of [0, 1, 2, 3]) {
    assert.ok(looksLikeTls(bytes(0x16, 0x03, minor, 0x00, 0x2f)), `03 0${minor}`);
  }
  assert.ok(looksLikeTls(bytes(0x16, 0x03, 0x01)));
});

Deno.test("looksLikeTls: rejects other record types, versions and short inputs", () => {
  assert.ok(!looksLikeTls(bytes()));
  assert.ok(!looksLikeTls(bytes(0x16, 0x03)));
  assert.ok(!looksLikeTls(bytes(0x17, 0x03, 0x03)), "application data record");
  assert.ok(!looksLikeTls(bytes(0x16, 0x02, 0x00)), "SSLv2");
  assert.ok(!looksLikeTls(bytes(0x16, 0x03, 0x05)));
  assert.ok(!looksLikeTls(bytes(0x16, 0xfe, 0xfd)), "DTLS");
  assert.ok(!looksLikeTls(b("GET / HTTP/1.1\r\n")));
});

Deno.test("probablyNotHttp: HTTP request starts are HTTP", () => {
  for (
    const s of [
      "GET / HTTP/1.1\r\n",
      "POST /x HTTP/1.1\r\nHost: h\r\n",
      "OPTIONS * HTTP/1.1",
      "get /",
      "PRI * HTTP/2.0",
    ]
  ) {
    assert.equal(probablyNotHttp(b(s)), false, s);
  }
});

Deno.test("probablyNotHttp: fewer than 3 bytes is not HTTP", () => {
  assert.equal(probablyNotHttp(b("")), true);
  assert.equal(probablyNotHttp(b("GE")), true);
});

Deno.test("probablyNotHttp: no space, or the first space after the first newline, is not HTTP", () => {
  assert.equal(probablyNotHttp(b("GETX")), true);
  assert.equal(probablyNotHttp(b("HELO\r\nMAIL FROM")), true);
  assert.equal(probablyNotHttp(b("GET\n /")), true);
});

Deno.test("probablyNotHttp: a start that is not three letters is not HTTP", () => {
  assert.equal(probablyNotHttp(b("1GET / HTTP/1.1")), true);
  assert.equal(probablyNotHttp(b("G T / HTTP/1.1")), true);
  assert.equal(probablyNotHttp(bytes(0x16, 0x03, 0x01, 0x20, 0x41)), true);
  assert.equal(probablyNotHttp(bytes(0x00, 0x01, 0x02, 0x20)), true);
});

Deno.test("probablyNotHttp: an SSH banner is not HTTP", () => {
  assert.equal(probablyNotHttp(b("SSH-2.0-OpenSSH_9.6 Ubuntu\r\n")), true);
});
