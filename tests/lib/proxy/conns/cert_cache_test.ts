import assert from "node:assert/strict";
import { CERT_INFO_CAPACITY, CertInfoCache } from "../../../../lib/proxy/conns/cert_cache.ts";

Deno.test("CertInfoCache: get/set/clear and size", () => {
  const c = new CertInfoCache();
  assert.equal(c.get("a"), undefined);
  c.set("a", { cn: "a.example", sans: ["a.example"] });
  c.set("b", { sans: [], o: "B Org" });
  assert.deepEqual(c.get("a"), { cn: "a.example", sans: ["a.example"] });
  assert.equal(c.size, 2);
  c.set("a", { sans: ["new"] });
  assert.deepEqual(c.get("a"), { sans: ["new"] }, "replaced");
  assert.equal(c.size, 2);
  c.clear();
  assert.equal(c.size, 0);
  assert.equal(c.get("b"), undefined);
});

Deno.test("CertInfoCache: past its capacity the least recently learned entry goes first", () => {
  const c = new CertInfoCache();
  for (let i = 0; i < CERT_INFO_CAPACITY; i++) c.set(`k${i}`, { sans: [String(i)] });
  c.set("k0", { sans: ["relearned"] }); // k0 is now the most recent; k1 the oldest
  c.set("extra", { sans: [] });
  assert.equal(c.size, CERT_INFO_CAPACITY);
  assert.equal(c.get("k1"), undefined, "the oldest went");
  assert.deepEqual(c.get("k0"), { sans: ["relearned"] });
  assert.ok(c.get("k2") && c.get("extra"));
});
