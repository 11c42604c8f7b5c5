import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { isTlsHandshakeStart, parseClientHello } from "../../../lib/tls/clienthello.ts";

/** Connects a real node:tls client to a node:net server and returns the bytes it sent first. */
function captureClientHello(opts: tls.ConnectionOptions): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (parseClientHello(buf) === "need-more") return;
        sock.destroy();
        server.close();
        resolve(new Uint8Array(buf));
      });
      sock.on("error", () => {});
    });
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      const client = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...opts });
      client.on("error", () => {}); // the server hangs up on it
    });
    server.on("error", reject);
  });
}

/** Re-frames the handshake payload of `records` into records of at most `size` bytes. */
function refragment(records: Uint8Array, size: number): Uint8Array {
  const payload: number[] = [];
  for (let o = 0; o < records.length;) {
    const len = (records[o + 3] << 8) | records[o + 4];
    payload.push(...records.subarray(o + 5, o + 5 + len));
    o += 5 + len;
  }
  const out: number[] = [];
  for (let o = 0; o < payload.length; o += size) {
    const chunk = payload.slice(o, o + size);
    out.push(0x16, 0x03, 0x01, chunk.length >> 8, chunk.length & 0xff, ...chunk);
  }
  return Uint8Array.from(out);
}

let captured: Uint8Array | undefined;
async function realHello(): Promise<Uint8Array> {
  return captured ??= await captureClientHello({
    servername: "example.test",
    ALPNProtocols: ["h2", "http/1.1"],
  });
}

Deno.test("parses a real ClientHello from node:tls", async () => {
  const buf = await realHello();
  assert.ok(isTlsHandshakeStart(buf));
  const hello = parseClientHello(buf);
  assert.notEqual(hello, "need-more");
  if (hello === "need-more") return;
  assert.equal(hello.sni, "example.test");
  assert.deepEqual(hello.alpnProtocols, ["h2", "http/1.1"]);
  assert.ok(hello.cipherSuites.length > 0);
  assert.ok(
    hello.cipherSuites.includes(0x1301) || hello.cipherSuites.includes(0xc02f),
    "a modern suite is offered",
  );
  const types = hello.extensions.map(([t]) => t);
  assert.ok(types.includes(0) && types.includes(16));
  assert.equal(hello.legacyVersion, 0x0303);
  assert.equal(hello.recordBytes, buf.length);
});

Deno.test("a ClientHello without SNI (client connects to an IP)", async () => {
  const buf = await captureClientHello({ ALPNProtocols: ["http/1.1"] });
  const hello = parseClientHello(buf);
  assert.ok(hello !== "need-more");
  assert.equal(hello.sni, undefined);
  assert.deepEqual(hello.alpnProtocols, ["http/1.1"]);
});

Deno.test("every truncation of a ClientHello is need-more", async () => {
  const buf = await realHello();
  for (let n = 0; n < buf.length; n++) {
    assert.equal(parseClientHello(buf.subarray(0, n)), "need-more", `prefix ${n}`);
  }
});

Deno.test("a ClientHello split across several TLS records", async () => {
  const buf = await realHello();
  const whole = parseClientHello(buf);
  assert.ok(whole !== "need-more");
  for (const size of [1, 3, 7, 100, 250]) {
    const split = refragment(buf, size);
    const hello = parseClientHello(split);
    assert.ok(hello !== "need-more", `size ${size}`);
    assert.equal(hello.sni, "example.test");
    assert.deepEqual(hello.alpnProtocols, whole.alpnProtocols);
    assert.deepEqual(hello.cipherSuites, whole.cipherSuites);
    assert.deepEqual(hello.extensions, whole.extensions);
    assert.equal(hello.recordBytes, split.length);
    for (const n of [1, 5, 6, 9, split.length - 1]) {
      assert.equal(parseClientHello(split.subarray(0, n)), "need-more", `size ${size} prefix ${n}`);
    }
  }
  // bytes after the ClientHello (e.g. early data) are not part of it
  const more = new Uint8Array([...buf, 0x17, 0x03, 0x03, 0x00, 0x01, 0x00]);
  const hello = parseClientHello(more);
  assert.ok(hello !== "need-more");
  assert.equal(hello.recordBytes, buf.length);
});

Deno.test("garbage and malformed input throw clear errors", async () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.equal(isTlsHandshakeStart(enc("GET / HTTP/1.1\r\n")), false);
  assert.equal(isTlsHandshakeStart(Uint8Array.of(0x16, 0x03)), false);
  assert.equal(isTlsHandshakeStart(Uint8Array.of(0x16, 0x03, 0x04)), false);
  assert.equal(isTlsHandshakeStart(Uint8Array.of(0x16, 0x03, 0x00)), true);
  assert.throws(
    () => parseClientHello(enc("GET / HTTP/1.1\r\n\r\n")),
    /not a TLS handshake record: content type 0x47/,
  );
  assert.throws(() => parseClientHello(Uint8Array.of(0x47)), /not a TLS handshake record/);
  assert.throws(
    () => parseClientHello(Uint8Array.of(0x16, 0x02, 0x00, 0x00, 0x04)),
    /not a TLS record: version/,
  );
  assert.throws(
    () => parseClientHello(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x00)),
    /empty handshake record/,
  );
  assert.throws(() => parseClientHello(Uint8Array.of(0x16, 0x03, 0x01, 0xff, 0xff)), /exceeds the maximum/);
  assert.throws(
    () => parseClientHello(Uint8Array.of(0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00)),
    /not a ClientHello: handshake message type 2/,
  );
  assert.throws(
    () => parseClientHello(Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x10, 0x00, 0x00)),
    /ClientHello too large/,
  );
  const buf = await realHello();
  // the second record of a split hello is not a handshake record
  const split = refragment(buf, 100);
  const bad = split.slice();
  bad[105] = 0x17;
  assert.throws(() => parseClientHello(bad), /content type 0x17/);
  // a lying length inside the body: bump the extensions length by one (and the record/handshake lengths)
  const hello = parseClientHello(buf);
  assert.ok(hello !== "need-more");
  const body = buf.slice(9);
  const sidLen = body[34];
  const csLen = (body[35 + sidLen] << 8) | body[36 + sidLen];
  const compAt = 37 + sidLen + csLen;
  const extAt = compAt + 1 + body[compAt];
  body[extAt + 1] += 1;
  assert.throws(
    () => parseClientHello(new Uint8Array([...buf.subarray(0, 9), ...body])),
    /extensions length/,
  );
  // truncated body inside a complete handshake message
  const short = Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0x03, 0x03, 0x00, 0x00);
  assert.throws(() => parseClientHello(short), /malformed ClientHello: truncated random/);
});
