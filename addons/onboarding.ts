/**
 * The onboarding addon (mitmproxy's `addons/onboarding.py`): requests through the proxy to
 * `http://mitm.it/` (options `onboarding_host` and `onboarding_port`) are answered by the proxy itself with a page of
 * per-platform install steps and downloads of the CA certificate (PEM, DER .cer, PKCS#12). They never
 * reach a server. Needs the tlsconfig addon (it owns the CA).
 * @module
 */
import type { Loader } from "../lib/addons/manager.ts";
import type { Master } from "../lib/master.ts";
import { ctx as globalCtx } from "../lib/addons/ctx.ts";
import type { HTTPFlow } from "../lib/flow/flow.ts";
import { Response } from "../lib/http/message.ts";
import type { TlsConfig } from "./tlsconfig.ts";

const FILES: Record<string, { ext: string; type: string }> = {
  pem: { ext: "pem", type: "application/x-x509-ca-cert" },
  cer: { ext: "cer", type: "application/pkix-cert" },
  p12: { ext: "p12", type: "application/x-pkcs12" },
};

const PLATFORMS: [string, string, string[]][] = [
  ["Windows", "p12", [
    "Download the .p12 file and double-click it.",
    'Choose "Current User", keep the defaults, leave the password empty.',
    'Place the certificate in "Trusted Root Certification Authorities" and confirm.',
  ]],
  ["Linux", "pem", [
    "Debian/Ubuntu: <code>sudo cp mitmdeno-ca-cert.pem /usr/local/share/ca-certificates/mitmdeno.crt &amp;&amp; sudo update-ca-certificates</code>",
    "Fedora/RHEL: <code>sudo cp mitmdeno-ca-cert.pem /etc/pki/ca-trust/source/anchors/ &amp;&amp; sudo update-ca-trust</code>",
    "Firefox and Chromium keep their own store: import the PEM in their certificate settings.",
  ]],
  ["macOS", "pem", [
    "Download the PEM file and open it: Keychain Access adds it to the login keychain.",
    'Double-click the "mitmdeno" certificate, open "Trust", set "When using this certificate" to "Always Trust".',
    "Or: <code>sudo security add-trusted-cert -d -p ssl -p basic -k /Library/Keychains/System.keychain mitmdeno-ca-cert.pem</code>",
  ]],
  ["iOS", "pem", [
    "Open this page in Safari, download the PEM file and allow the profile download.",
    "Settings &gt; General &gt; VPN &amp; Device Management: install the mitmdeno profile.",
    "Settings &gt; General &gt; About &gt; Certificate Trust Settings: enable full trust for mitmdeno.",
  ]],
  ["Android", "cer", [
    "Download the .cer file.",
    "Settings &gt; Security &gt; Encryption &amp; credentials &gt; Install a certificate &gt; CA certificate.",
    "Apps only trust user CAs if they opt in (network security config); system CAs need root.",
  ]],
  ["Firefox", "pem", [
    "Settings &gt; Privacy &amp; Security &gt; Certificates &gt; View Certificates &gt; Authorities &gt; Import.",
    'Select the PEM file and tick "Trust this CA to identify websites".',
  ]],
  ["Other (curl, Python, Node, Deno...)", "pem", [
    "curl: <code>--cacert mitmdeno-ca-cert.pem</code>; Python requests: <code>REQUESTS_CA_BUNDLE</code>; Node: <code>NODE_EXTRA_CA_CERTS</code>; Deno: <code>DENO_CERT</code>.",
  ]],
];

/** Answers `http://<onboarding_host>/` with install steps and the CA downloads. */
export class Onboarding {
  readonly name = "onboarding";
  #master: Master | null;

  constructor(master?: Master) {
    this.#master = master ?? null;
  }

  get #m(): Master {
    return this.#master ?? (globalCtx.master as Master);
  }

  load(loader: Loader): void {
    loader.addOption("onboarding", "bool", true, "Toggle the mitmdeno onboarding app.");
    loader.addOption(
      "onboarding_host",
      "str",
      "mitm.it",
      "Onboarding app domain. For transparent mode, use an IP when a DNS entry for the app domain is not present.",
    );
    loader.addOption("onboarding_port", "int", 80, "Port to serve the onboarding app from.");
  }

  /** Synchronous (no promise) for requests that are not for the onboarding app. */
  request(flow: HTTPFlow): Promise<void> | void {
    const o = this.#m.options;
    if (!o.onboarding || flow.response) return;
    const req = flow.request;
    const host = String(o.onboarding_host).toLowerCase();
    // as mitmproxy's asgiapp: the app answers (pretty_host, port) == (onboarding_host, onboarding_port)
    if (req.port !== o.onboarding_port) return;
    if (req.host.toLowerCase() !== host && req.prettyHost.toLowerCase() !== host) return;
    return this.#answer(req.path).then((r) => {
      flow.response = r;
    });
  }

  async #answer(rawPath: string): Promise<Response> {
    const path = rawPath.split("?")[0];
    const tc = this.#m.addons.get("tlsconfig") as TlsConfig | undefined;
    const ca = tc?.ca;
    const headers = { "Server": "mitmdeno onboarding", "Cache-Control": "no-store" };
    if (path === "/" || path === "/index.html") {
      return Response.make(200, this.#page(ca?.fingerprintSha256), {
        ...headers,
        "Content-Type": "text/html; charset=utf-8",
      });
    }
    const m = /^\/cert\/(pem|cer|p12)$/.exec(path);
    if (m && ca) {
      const f = FILES[m[1]];
      let body: Uint8Array;
      if (m[1] === "pem") body = new TextEncoder().encode(ca.certPem);
      else if (m[1] === "cer") body = ca.certDer;
      else {
        try {
          body = await Deno.readFile(ca.paths.certP12);
        } catch {
          return Response.make(404, "no PKCS#12 file for this CA\n", {
            ...headers,
            "Content-Type": "text/plain",
          });
        }
      }
      return Response.make(200, body, {
        ...headers,
        "Content-Type": f.type,
        "Content-Disposition": `attachment; filename="mitmdeno-ca-cert.${f.ext}"`,
      });
    }
    return Response.make(404, "Not found\n", { ...headers, "Content-Type": "text/plain" });
  }

  #page(fingerprint: string | undefined): string {
    const sections = PLATFORMS.map(([name, kind, steps]) =>
      `<section><h2>${name}</h2><p><a href="/cert/${kind}">Get mitmdeno-ca-cert.${kind}</a></p>` +
      `<ol>${steps.map((s) => `<li>${s}</li>`).join("")}</ol></section>`
    ).join("\n");
    return `<!doctype html>
<html><head><meta charset="utf-8"><title>mitmdeno: install the CA certificate</title>
<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;padding:0 1em}code{background:#eee}</style>
</head><body>
<h1>Install the mitmdeno certificate authority</h1>
<p>Your traffic goes through mitmdeno. To intercept HTTPS, your device must trust its CA.
Downloads: <a href="/cert/pem">PEM</a> · <a href="/cert/cer">DER (.cer)</a> · <a href="/cert/p12">PKCS#12 (.p12)</a></p>
${fingerprint ? `<p>SHA-256 fingerprint: <code>${fingerprint}</code></p>` : "<p>No CA is loaded.</p>"}
${sections}
<p>Only install a CA you created yourself; anyone with its key can read your traffic.</p>
</body></html>
`;
  }
}
