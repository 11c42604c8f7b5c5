import assert from "node:assert/strict";
import net from "node:net";
import {
  findInode,
  OriginalDstLookup,
  parseSockaddr,
  procAddress,
} from "../../../../lib/proxy/conns/original_dst.ts";

Deno.test("original_dst: addresses as /proc/net/tcp{,6} writes them", () => {
  assert.equal(procAddress("127.0.0.1", 8080), "0100007F:1F90");
  assert.equal(procAddress("10.213.0.1", 80), "0100D50A:0050");
  assert.equal(procAddress("::1", 443), "00000000000000000000000001000000:01BB");
  assert.equal(procAddress("::ffff:127.0.0.1", 1), "0000000000000000FFFF00000100007F:0001");
  assert.equal(procAddress("2001:db8::1", 2), "B80D0120000000000000000001000000:0002");
  const table =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0\n" +
    "   1: 0100007F:1F90 0100007F:B9F0 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 20 4 30 10 -1\n";
  assert.equal(findInode(table, "0100007F:1F90", "0100007F:B9F0"), 2222);
  assert.equal(findInode(table, "0100007F:1F90", "0100007F:0001"), null);
});

Deno.test("original_dst: sockaddr_in and sockaddr_in6", () => {
  assert.deepEqual(parseSockaddr(new Uint8Array([2, 0, 0x1f, 0x40, 10, 213, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])), [
    "10.213.1.1",
    8000,
  ]);
  const v6 = new Uint8Array(28);
  v6.set([10, 0, 0x01, 0xbb, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8]);
  v6[23] = 1;
  assert.deepEqual(parseSockaddr(v6), ["2001:db8::1", 443]);
  const mapped = new Uint8Array(28);
  mapped.set([10, 0, 0, 80]);
  mapped.set([0xff, 0xff, 192, 168, 1, 2], 18);
  assert.deepEqual(parseSockaddr(mapped), ["192.168.1.2", 80]);
});

Deno.test({
  name: "original_dst: a real socket that was not redirected: the reason from getsockopt",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const lookup = new OriginalDstLookup();
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
    const c = net.connect(port, "127.0.0.1");
    const s = await accepted;
    try {
      const r = lookup.lookup([s.localAddress!, s.localPort!], [s.remoteAddress!, s.remotePort!]);
      assert.equal(r.address, null);
      // with conntrack loaded a plain connection reports itself; without, ENOENT
      assert.match(r.reason!, /getsockopt\(SO_ORIGINAL_DST\)|not found/);
    } finally {
      c.destroy();
      s.destroy();
      lookup.close();
      await new Promise((r) => server.close(r));
    }
  },
});
