import assert from "node:assert/strict";
import { TLS_VERSIONS, versionRange } from "../../../lib/tls/versions.ts";

Deno.test("versions: mitmproxy's names to node:tls bounds, bad values named with the allowed list", () => {
  assert.deepEqual([...TLS_VERSIONS], ["UNBOUNDED", "SSL3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"]);
  assert.deepEqual(versionRange("TLS1_2", "UNBOUNDED", "client"), {
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.3",
  });
  assert.deepEqual(versionRange("UNBOUNDED", "TLS1_2", "server"), {
    minVersion: "TLSv1",
    maxVersion: "TLSv1.2",
  });
  assert.deepEqual(versionRange("TLS1_3", "TLS1_3", "client"), {
    minVersion: "TLSv1.3",
    maxVersion: "TLSv1.3",
  });
  assert.deepEqual(versionRange("SSL3", "TLS1_3", "client").minVersion, "TLSv1");
  assert.throws(
    () => versionRange("TLS12", "UNBOUNDED", "client"),
    /Option "tls_version_client_min": "TLS12" is not one of UNBOUNDED, SSL3, TLS1, TLS1_1, TLS1_2, TLS1_3/,
  );
  assert.throws(
    () => versionRange("TLS1_2", "TLS1_1", "server"),
    /"tls_version_server_max": TLS1_1 is below TLS1_2/,
  );
  assert.throws(() => versionRange("TLS1_3", "TLS1_2", "client"), /the minimum is above the maximum/);
});
