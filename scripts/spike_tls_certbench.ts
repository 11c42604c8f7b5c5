/**
 * Measures leaf minting: a new host (cert + SecureContext), a cache hit, and the parts (signing only,
 * SecureContext only), for EC P-256 and RSA-2048 leaf keys. Prints medians in milliseconds.
 *
 *   deno run -A scripts/spike_tls_certbench.ts [iterations=300]
 */
import { CertStore, type LeafKeyType } from "../lib/tls/certs.ts";
import { loadOrCreateCA } from "../lib/tls/ca.ts";
import { createSecureContext } from "node:tls";

const N = Number(Deno.args[0] ?? 300);
const dir = await Deno.makeTempDir({ prefix: "mitmdeno-certbench-" });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(f: (i: number) => void, n = N): number {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    f(i);
    xs.push(performance.now() - t);
  }
  return median(xs);
}

try {
  let t = performance.now();
  const ca = await loadOrCreateCA(dir);
  console.log(`CA creation (RSA-2048, files written): ${(performance.now() - t).toFixed(1)} ms`);
  for (const type of ["ec", "rsa"] as LeafKeyType[]) {
    t = performance.now();
    const store = new CertStore(ca, { leafKey: type });
    const keyMs = performance.now() - t;
    const noCtx = new CertStore(ca, { leafKey: type, secureContext: false });
    store.getCert({ commonName: "warmup.test", sans: ["warmup.test"] });
    const fresh = time((i) =>
      store.getCert({ commonName: `h${i}.example.com`, sans: [`h${i}.example.com`] })
    );
    const cached = time((i) =>
      store.getCert({ commonName: `h${i}.example.com`, sans: [`h${i}.example.com`] })
    );
    const signOnly = time((i) =>
      noCtx.getCert({ commonName: `s${i}.example.com`, sans: [`s${i}.example.com`] })
    );
    const leaf = store.getCert({ commonName: "x.test", sans: ["x.test"] });
    const ctxOnly = time(() => createSecureContext({ key: leaf.keyPem, cert: leaf.chainPem }));
    console.log(
      `${type.padEnd(3)} leaf key: keygen ${keyMs.toFixed(1)} ms (once per process) | new host ${
        fresh.toFixed(3)
      } ms` +
        ` | cached ${cached.toFixed(4)} ms | cert only ${signOnly.toFixed(3)} ms | SecureContext only ${
          ctxOnly.toFixed(3)
        } ms  (medians of ${N})`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
