import assert from "node:assert/strict";
import { context, tclientConn } from "mitmdeno/testing";
import { Block, classifyAddress } from "../../addons/block.ts";

const cases: [boolean, boolean, string, boolean][] = [
  // block_global, block_private, address, killed
  [true, false, "1.1.1.1", true],
  [true, false, "10.0.0.1", false],
  [true, false, "127.0.0.1", false],
  [true, false, "::1", false],
  [true, false, "2001:4860:4860::8888", true],
  [true, false, "::ffff:8.8.8.8", true],
  [false, true, "1.1.1.1", false],
  [false, true, "10.0.0.1", true],
  [false, true, "192.168.1.7", true],
  [false, true, "fe80::1%eth0", true],
  [false, true, "::ffff:10.1.2.3", true],
  [false, true, "127.0.0.1", false],
  [true, true, "127.0.0.1", false],
  [false, false, "1.1.1.1", false],
  [false, false, "10.0.0.1", false],
];

Deno.test("block: kills by address class, loopback always allowed", async () => {
  const b = new Block();
  await using tctx = await context(b);
  for (const [g, p, addr, killed] of cases) {
    await tctx.configure(b, { block_global: g, block_private: p });
    const c = tclientConn({ peername: [addr, 12345] });
    await tctx.invoke(b, "client_connected", c);
    assert.equal(!!c.error, killed, `${addr} global=${g} private=${p}`);
    if (killed) assert.match(c.error!, /killed by block_(global|private)/);
  }
  assert.ok(tctx.hasLog("killed by block_global option", "warn"));
});

Deno.test("block: defaults and classification", async () => {
  const b = new Block();
  await using tctx = await context(b);
  assert.equal(tctx.options.block_global, true);
  assert.equal(tctx.options.block_private, false);
  assert.deepEqual(classifyAddress("100.64.0.1"), { loopback: false, private: false, global: false });
  assert.equal(classifyAddress("not an ip"), null);
});
