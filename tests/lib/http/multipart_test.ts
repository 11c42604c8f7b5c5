import assert from "node:assert/strict";
import {
  encodeMultipart,
  multipartBoundary,
  MultipartForm,
  parseMultipart,
} from "../../../lib/http/multipart.ts";

const te = new TextEncoder();
const td = new TextDecoder();

// what curl -F a=1 -F "f=@file;type=image/png" sends (binary bytes with CR/LF inside the file)
const CT = "multipart/form-data; boundary=------------------------abc123";
const FILE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
function body(): Uint8Array {
  const head = te.encode(
    "--------------------------abc123\r\n" +
      'Content-Disposition: form-data; name="a"\r\n\r\n' +
      "line one\r\nline two\r\n" +
      "--------------------------abc123\r\n" +
      'Content-Disposition: form-data; name="f"; filename="x.png"\r\n' +
      "Content-Type: image/png\r\n\r\n",
  );
  const tail = te.encode("\r\n--------------------------abc123--\r\n");
  const out = new Uint8Array(head.length + FILE.length + tail.length);
  out.set(head);
  out.set(FILE, head.length);
  out.set(tail, head.length + FILE.length);
  return out;
}

Deno.test("multipartBoundary: quoted, unquoted, missing, not multipart", () => {
  assert.equal(multipartBoundary(CT), "------------------------abc123");
  assert.equal(multipartBoundary('multipart/form-data; boundary="a b"; x=1'), "a b");
  assert.equal(multipartBoundary("multipart/form-data"), null);
  assert.equal(multipartBoundary("text/plain; boundary=x"), null);
  assert.equal(multipartBoundary(undefined), null);
});

Deno.test("parseMultipart: names, file names, part headers and byte-exact values (line breaks kept)", () => {
  const parts = parseMultipart(CT, body());
  assert.equal(parts.length, 2);
  assert.equal(parts[0].name, "a");
  assert.equal(td.decode(parts[0].content), "line one\r\nline two");
  assert.equal(parts[1].name, "f");
  assert.equal(parts[1].filename, "x.png");
  assert.deepEqual(parts[1].headers[1], ["Content-Type", "image/png"]);
  assert.deepEqual(parts[1].content, FILE);
  assert.deepEqual(parseMultipart("multipart/form-data", body()), [], "no boundary");
  assert.deepEqual(parseMultipart(CT, te.encode("garbage")), [], "no delimiter");
});

Deno.test("encodeMultipart: parse(encode(parts)) is the identity; a value holding the boundary is refused", () => {
  const parts = parseMultipart(CT, body());
  const again = encodeMultipart("------------------------abc123", parts);
  assert.deepEqual(again, body());
  assert.throws(
    () => encodeMultipart("xyz", [{ name: "v", headers: [], content: te.encode("a\r\n--xyz\r\n") }]),
    /contains the boundary/,
  );
});

Deno.test("MultipartForm: a live multidict that writes every change", () => {
  const writes: number[] = [];
  const form = new MultipartForm(parseMultipart(CT, body()), (p) => writes.push(p.length));
  assert.equal(form.size, 2);
  assert.equal(form.getText("a"), "line one\r\nline two");
  assert.deepEqual(form.get("f"), FILE);
  assert.equal(form.get("nope"), null);
  form.set("a", "changed");
  form.append("a", "second");
  assert.deepEqual(form.getAll("a").map((v) => td.decode(v)), ["changed", "second"]);
  form.set("a", "only");
  assert.deepEqual(form.keys(), ["a", "f"]);
  form.delete("f");
  form.delete("absent");
  assert.deepEqual(writes, [2, 3, 2, 1]);
  assert.deepEqual([...form].map(([k, v]) => [k, td.decode(v)]), [["a", "only"]]);
  form.append("up", new Uint8Array([1, 2]), { filename: 'q"x.bin', contentType: "application/octet-stream" });
  assert.equal(form.parts[1].headers[0][1], 'form-data; name="up"; filename="q\\"x.bin"');
});
