import assert from "node:assert/strict";
import { Start } from "../../../../lib/proxy/events.ts";
import { UpstreamMode } from "../../../../lib/proxy/layers/upstream.ts";
import { parseMode } from "../../../../lib/proxy/mode.ts";
import { OpenConnection, type StartHook, StartTls } from "../../../../lib/proxy/commands.ts";
import { ProtocolError } from "../../../../lib/proxy/errors.ts";
import type { HTTPFlow } from "../../../../lib/flow/flow.ts";
import type { Server } from "../../../../lib/flow/connection.ts";
import { close, closed, data, hook, Playbook, send, tctx, wakeup } from "../tutils.ts";

function upstream(sets: Record<string, unknown> = {}) {
  const t = tctx(sets);
  const spec = parseMode("upstream:http://proxy.local:3128");
  t.client.proxyMode = spec.full;
  return { t, pb: new Playbook(new UpstreamMode(t.ctx, spec)) };
}

Deno.test("upstream mode: a plain GET goes to the upstream proxy in absolute form, no CONNECT", () => {
  const { t, pb } = upstream();
  pb.in(new Start())
    .out(wakeup(60_000))
    .in(data(t.client, "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply();
  const o = pb.take() as OpenConnection;
  assert.ok(o instanceof OpenConnection);
  const server: Server = o.conn;
  assert.deepEqual(server.address, ["example.com", 80]);
  assert.deepEqual(server.via, ["http", ["proxy.local", 3128]]);
  assert.equal(server.viaAbsoluteForm, true);
  pb.reply(null)
    .out(send(() => server, "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(wakeup(1000))
    .in(data(server, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    .out(hook("responseheaders")).reply()
    .out(hook("response")).reply()
    .out(send(t.client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    .done();
  // keep-alive: the same connection to the proxy serves the next request
  pb.in(data(t.client, "GET http://example.com/c HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .out(send(() => server, /^GET http:\/\/example.com\/c HTTP\/1.1\r\n/))
    .done();
});

const CONNECT = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";

/** A client CONNECT in upstream mode, up to our CONNECT to the upstream proxy. */
function connectUpTo(pb: Playbook, t: ReturnType<typeof tctx>): Server {
  pb.in(new Start())
    .out(wakeup(60_000))
    .in(data(t.client, CONNECT))
    .out(hook("http_connect")).reply();
  // eager (mitmproxy's default): the tunnel is made before the client gets its 200
  const o = pb.take() as OpenConnection;
  assert.ok(o instanceof OpenConnection);
  const server = o.conn;
  assert.deepEqual(server.address, ["example.com", 443]);
  assert.deepEqual(server.via, ["http", ["proxy.local", 3128]]);
  assert.equal(server.viaAbsoluteForm, false);
  pb.reply(null).out(hook("http_connect_upstream", (f) => (f as HTTPFlow).request.method === "CONNECT"));
  return server;
}

Deno.test("upstream mode: a client CONNECT: one CONNECT to the upstream proxy, then the tunnel is ours", () => {
  const { t, pb } = upstream();
  const server = connectUpTo(pb, t);
  pb.reply()
    .out(send(() => server, CONNECT))
    .done()
    // the proxy answers in two pieces; bytes after its head belong to the tunnel
    .in(data(server, "HTTP/1.1 200 Connection established\r\n"))
    .done()
    .in(data(server, "\r\n"))
    .out(send(t.client, "HTTP/1.1 200 Connection established\r\n\r\n"))
    .out(hook("http_connected")).reply()
    .out(wakeup(3000)) // NextLayer waits for the client's first bytes
    .out(wakeup(600_000))
    .in(data(t.client, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("next_layer")).reply()
    .out(wakeup(60_000))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    // inside the tunnel: origin form on the tunneled connection, no second CONNECT
    .out(send(() => server, /^GET \/ HTTP\/1.1\r\nHost: example.com(:443)?\r\n\r\n$/))
    .out(wakeup(1000))
    .done();
});

Deno.test("upstream mode: http_connect_upstream may add headers (upstream_auth's Proxy-Authorization)", () => {
  const { t, pb } = upstream();
  const server = connectUpTo(pb, t);
  const last = pb.history[pb.history.length - 1] as StartHook;
  (last.flow as HTTPFlow).request.headers.set("Proxy-Authorization", "Basic dTpw");
  pb.reply()
    .out(
      send(
        () => server,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
      ),
    )
    .done();
});

Deno.test("upstream mode: a 407 from the upstream proxy fails the CONNECT with a clear error", () => {
  const { t, pb } = upstream();
  const server = connectUpTo(pb, t);
  pb.reply()
    .out(send(() => server, CONNECT))
    .in(data(server, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"))
    .out(close(() => server))
    .out(
      hook(
        "http_connect_error",
        (f) =>
          /Upstream proxy proxy.local:3128 refused HTTP CONNECT request: 407 Proxy Authentication Required/
            .test((f as HTTPFlow).error!.msg),
      ),
    )
    .reply()
    .out(send(t.client, /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*refused HTTP CONNECT request: 407/))
    .out(close(t.client))
    .done();
  assert.match(server.error!, /407/);
});

Deno.test("upstream mode: a proxy that closes or answers garbage fails the CONNECT naming the proxy", () => {
  {
    const { t, pb } = upstream();
    const server = connectUpTo(pb, t);
    pb.reply().out(send(() => server, CONNECT))
      .in(closed(server))
      .out(close(() => server))
      .out(
        hook(
          "http_connect_error",
          (f) => /closed the connection before answering CONNECT/.test((f as HTTPFlow).error!.msg),
        ),
      )
      .reply()
      .out(send(t.client, /^HTTP\/1.1 502 /));
  }
  {
    const { t, pb } = upstream();
    const server = connectUpTo(pb, t);
    pb.reply().out(send(() => server, CONNECT))
      .in(data(server, "SSH-2.0-OpenSSH\r\n\r\n"))
      .out(close(() => server))
      .out(
        hook(
          "http_connect_error",
          (f) =>
            /Error connecting to upstream proxy proxy.local:3128: malformed status line/.test(
              (f as HTTPFlow).error!.msg,
            ),
        ),
      )
      .reply()
      .out(send(t.client, /^HTTP\/1.1 502 /));
  }
});

Deno.test("upstream mode: a refused connection to the upstream proxy is reported as the proxy's", () => {
  const { t, pb } = upstream();
  pb.in(new Start())
    .out(wakeup(60_000))
    .in(data(t.client, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    .out(hook("requestheaders")).reply()
    .out(hook("request")).reply()
    .take();
  pb.reply(
    new ProtocolError(
      "connect",
      "Cannot connect to upstream proxy proxy.local:3128: connection refused",
      502,
    ),
  )
    .out(
      hook(
        "error",
        (f) => /upstream proxy proxy.local:3128: connection refused/.test((f as HTTPFlow).error!.msg),
      ),
    )
    .reply()
    .out(
      send(
        t.client,
        /^HTTP\/1.1 502 Bad Gateway\r\n(.|\r\n)*upstream proxy proxy.local:3128: connection refused/,
      ),
    )
    .out(close(t.client))
    .done();
});

Deno.test("upstream mode: an https:// upstream proxy: TLS to the proxy (its name verified), then CONNECT inside", () => {
  const t = tctx();
  const spec = parseMode("upstream:https://proxy.local:3128");
  t.client.proxyMode = spec.full;
  const pb = new Playbook(new UpstreamMode(t.ctx, spec));
  pb.in(new Start()).out(wakeup(60_000)).in(data(t.client, CONNECT)).out(hook("http_connect")).reply();
  const o = pb.take() as OpenConnection;
  const server = o.conn;
  assert.deepEqual(server.via, ["https", ["proxy.local", 3128]]);
  pb.reply(null);
  const tls = pb.take() as StartTls;
  assert.ok(tls instanceof StartTls);
  assert.equal(tls.conn, server);
  assert.equal(tls.settings.sni, "proxy.local");
  assert.equal(tls.settings.verifyHost, "proxy.local");
  assert.deepEqual(tls.settings.alpn, ["http/1.1"]);
  pb.reply({ alpn: "http/1.1", tlsVersion: "TLSv1.3", cipher: "x", certificateList: [] })
    .out(hook("http_connect_upstream")).reply()
    .out(send(() => server, CONNECT))
    .in(data(server, "HTTP/1.1 200 OK\r\n\r\n"))
    .out(send(t.client, "HTTP/1.1 200 Connection established\r\n\r\n"));
  // the TLS to the proxy is not the server's TLS: that comes later, inside the tunnel
  assert.equal(server.timestampTlsSetup, null);
});
