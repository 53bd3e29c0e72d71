/**
 * Who may use a proxy route, and for which tenant:
 *
 * - every proxied request needs a caller (a verified certificate, or a
 *   trusted peer per the gateway's `trust`), else 401 `unauthenticated`;
 * - a certificate caller acts only for the tenants its certificate maps to
 *   (`tenantsForCertificate`, as the direct API), whatever the route's
 *   tenant source (cert, header, pathParam), else 403 `forbidden`;
 * - trusted peers act for any tenant;
 * - a repeated tenant header is 400 `tenant_unresolved`;
 * - the configured caller headers reach the upstream only as the gateway
 *   vouches for them;
 * - upstream errors name a configured upstream, never an inline URL.
 *
 * A real gateway (uWS, h2c/HTTP/1.1, h2 + mTLS) in front of a real upstream,
 * with certificates from makeTestPki.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { type GatewayServer, startGateway } from '../../../gateway/src/gateway-server.ts';
import { loopbackOnly } from '../../../gateway/src/pipeline/caller.ts';
import { loadPolicies } from '../../../gateway/src/policy/policy-loader.ts';
import { h2Request } from '../../support/h2-request.ts';
import { h2TlsFront } from '../api/gateway-fixture.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

interface Reply {
  status: number;
  body: string;
}

const listen = (s: net.Server): Promise<number> =>
  new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));

/** One HTTP/1.1 request on its own connection, head bytes as given (repeated headers stay repeated). */
function raw(port: number, head: string, body = ''): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${head}connection: close\r\n\r\n${body}`));
    let out = '';
    s.on('data', (d) => {
      out += d;
    });
    s.on('error', reject);
    s.on('close', () => {
      const cut = out.indexOf('\r\n\r\n');
      resolve({ status: Number(out.split(' ')[1]), body: cut < 0 ? '' : out.slice(cut + 4) });
    });
  });
}

describe('proxy routes: caller and tenant authorization', () => {
  let pki: TestPki;
  let app: http.Server;
  let gw: GatewayServer;
  let keys: LocalGatewayKeys;
  let refusedPort: number;
  let trusted = true;
  const seen: Seen[] = [];

  before(async () => {
    pki = makeTestPki(mkdtempSync(join(tmpdir(), 'okcm-proxy-authz-')));
    app = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    const appPort = await listen(app);
    const gone = net.createServer();
    refusedPort = await listen(gone);
    await new Promise<void>((r) => gone.close(() => r()));
    const dir = join(pki.dir, 'policies');
    const header = { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1', '::1'] };
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'authz.routes.json'),
      JSON.stringify({
        id: 'authz',
        key: 'k',
        upstreams: { app: `http://127.0.0.1:${appPort}`, refused: `http://127.0.0.1:${refusedPort}` },
        defaults: { tenant: header },
        routes: [
          {
            method: '*',
            path: '/t/:tenant/users/:id',
            upstream: 'app',
            tenant: { from: 'pathParam', param: 'tenant' },
          },
          { method: '*', path: '/h/*', upstream: 'app' },
          { method: '*', path: '/c/*', upstream: 'app', tenant: { from: 'cert' } },
          { method: '*', path: '/down/named/*', upstream: 'refused' },
          { method: '*', path: '/down/inline/*', upstream: `http://127.0.0.1:${refusedPort}/internal-secret` },
        ],
      }),
    );
    keys = new LocalGatewayKeys();
    gw = await startGateway({
      keys,
      log: () => {},
      trust: (a) => trusted && loopbackOnly(a),
      uws: { host: '127.0.0.1', port: 0 },
      h2Plain: { host: '127.0.0.1', port: 0 },
      h2Tls: h2TlsFront(pki),
      proxy: {
        policies: loadPolicies(dir),
        callerHeaders: { identity: 'x-okcm-caller', roles: 'x-okcm-roles' },
        rolesForCertificate: (c) => (c.cn === 'app-a' ? ['support-lead', 'auditor'] : []),
        upstream: { connectTimeoutMs: 500, headersTimeoutMs: 1000, bodyTimeoutMs: 1000 },
      },
    });
  });

  after(async () => {
    await gw?.close();
    keys?.close();
    await new Promise<void>((r) => app.close(() => r()));
    rmSync(pki.dir, { recursive: true, force: true });
  });

  /** A request over h2 with mTLS as `who` (app-a: tenant app-a; operator: tenant operator-1). */
  function tls(
    who: 'app' | 'operator',
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<Reply> {
    const c = pki[who];
    return h2Request(`https://127.0.0.1:${gw.ports.h2Tls}`, path, {
      tls: { ca: pki.ca.certPem, cert: c.certPem, key: c.keyPem },
      method,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body }),
    });
  }

  /** A request over HTTP/1.1 to `front` from 127.0.0.1, without a certificate. */
  const plain = (front: 'uws' | 'h2Plain', method: string, path: string, headers: Record<string, string> = {}) => {
    const lines = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const body = method === 'POST' ? '{"a":1}' : '';
    const head = `${method} ${path} HTTP/1.1\r\nhost: x\r\n${lines}`;
    return raw(
      gw.ports[front] as number,
      body ? `${head}content-type: application/json\r\ncontent-length: ${body.length}\r\n` : head,
      body,
    );
  };

  const code = (r: Reply) => (JSON.parse(r.body) as { error: { code: string } }).error.code;
  const FRONTS = ['uws', 'h2Plain'] as const;

  it('refuses a caller that is neither certified nor a trusted peer (401), whatever the tenant source', async () => {
    trusted = false;
    try {
      const before = seen.length;
      for (const front of FRONTS) {
        for (const [method, path, headers] of [
          ['POST', '/t/tenant-b/users/1', {}],
          ['GET', '/t/tenant-b/users/1', {}],
          ['GET', '/h/users/1', { 'x-tenant-id': 'tenant-b' }],
          ['GET', '/c/users/1', {}],
        ] as const) {
          const r = await plain(front, method, path, headers);
          assert.equal(r.status, 401, `${front} ${method} ${path}: ${r.body}`);
          assert.equal(code(r), 'unauthenticated');
        }
      }
      assert.equal(seen.length, before, 'nothing forwarded');
    } finally {
      trusted = true;
    }
  });

  it('lets a certificate act only for its own tenants, whatever the source (403, nothing forwarded)', async () => {
    const before = seen.length;
    for (const [method, path, headers] of [
      ['GET', '/t/tenant-b/users/1', {}],
      ['POST', '/t/tenant-b/users/1', {}],
      // 127.0.0.1 is in the route's trustedPeers: the header is believed, but not for this certificate.
      ['GET', '/h/users/1', { 'x-tenant-id': 'tenant-b' }],
      ['POST', '/h/users/1', { 'x-tenant-id': 'tenant-b' }],
    ] as const) {
      const r = await tls('app', method, path, headers, method === 'POST' ? '{"a":1}' : undefined);
      assert.equal(r.status, 403, `${method} ${path}: ${r.body}`);
      assert.equal(code(r), 'forbidden');
    }
    assert.equal(seen.length, before, 'nothing forwarded');
    assert.equal((await tls('app', 'GET', '/t/app-a/users/1')).status, 200);
    assert.equal((await tls('app', 'GET', '/h/users/1', { 'x-tenant-id': 'app-a' })).status, 200);
    assert.equal((await tls('app', 'GET', '/c/users/1')).status, 200);
    assert.equal(seen.length, before + 3);
  });

  it('lets trusted peers act for any tenant, as before', async () => {
    for (const front of FRONTS) {
      assert.equal((await plain(front, 'GET', '/t/tenant-b/users/1')).status, 200, front);
      assert.equal((await plain(front, 'POST', '/t/tenant-c/users/1')).status, 200, front);
      assert.equal((await plain(front, 'GET', '/h/users/1', { 'x-tenant-id': 'tenant-b' })).status, 200, front);
      const cert = await plain(front, 'GET', '/c/users/1');
      assert.equal(cert.status, 401, 'a cert route has no certificate tenant for a trusted peer');
    }
  });

  it('answers tenant_unresolved (400) to a repeated tenant header on both HTTP/1.1 fronts', async () => {
    const before = seen.length;
    for (const front of FRONTS) {
      for (const repeated of [
        'x-tenant-id: t1\r\nx-tenant-id: t2\r\n',
        'X-Tenant-Id: t1\r\nx-tenant-id: t1\r\n',
        'x-tenant-id: t1,t2\r\n',
        'x-tenant-id: t1, t2\r\n',
      ]) {
        const r = await raw(gw.ports[front] as number, `GET /h/users/1 HTTP/1.1\r\nhost: x\r\n${repeated}`);
        assert.equal(r.status, 400, `${front} ${JSON.stringify(repeated)}: ${r.body}`);
        assert.equal(code(r), 'tenant_unresolved');
      }
    }
    assert.equal(seen.length, before, 'nothing forwarded');
  });

  it('sends the caller headers upstream only as the gateway vouches for them', async () => {
    const claims = { 'x-okcm-caller': 'billing', 'x-okcm-roles': 'admin' };
    const last = () => seen.at(-1)?.headers ?? {};

    assert.equal((await tls('app', 'GET', '/t/app-a/users/1', claims)).status, 200);
    assert.equal(last()['x-okcm-caller'], 'app-a', 'a certificate: its CN');
    assert.equal(last()['x-okcm-roles'], 'support-lead, auditor', 'a certificate: the roles the gateway knows');

    assert.equal((await tls('operator', 'GET', '/c/users/1', claims)).status, 200);
    assert.equal(last()['x-okcm-caller'], 'operator-1');
    assert.equal(last()['x-okcm-roles'], undefined, 'no known roles: the client claim is dropped');

    // HTTP/1.1 over the mTLS port: naming the header in Connection does not keep the gateway's value out.
    const r = await new Promise<Reply>((resolve, reject) => {
      const s = tlsConnect(
        {
          port: gw.ports.h2Tls as number,
          host: '127.0.0.1',
          servername: 'localhost',
          ALPNProtocols: ['http/1.1'],
          ca: pki.ca.certPem,
          cert: pki.app.certPem,
          key: pki.app.keyPem,
        },
        () =>
          s.write(
            'GET /c/users/1 HTTP/1.1\r\nhost: x\r\nx-okcm-caller: billing\r\nx-okcm-roles: admin\r\n' +
              'connection: close, x-okcm-caller, x-okcm-roles\r\n\r\n',
          ),
      );
      let out = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        out += d;
      });
      s.on('error', reject);
      s.on('close', () => resolve({ status: Number(out.split(' ')[1]), body: out }));
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(last()['x-okcm-caller'], 'app-a');
    assert.equal(last()['x-okcm-roles'], 'support-lead, auditor');

    for (const front of FRONTS) {
      const r = await plain(front, 'GET', '/t/t1/users/1', { 'x-okcm-caller': 'billing', 'x-okcm-roles': 'a, b' });
      assert.equal(r.status, 200);
      assert.equal(last()['x-okcm-caller'], 'billing', `${front}: a trusted peer's headers go as sent`);
      assert.equal(last()['x-okcm-roles'], 'a, b');
    }
  });

  it('names a configured upstream in 502 errors, and never an inline URL', async () => {
    const named = await plain('h2Plain', 'GET', '/down/named/x', { 'x-tenant-id': 't1' });
    assert.equal(named.status, 502);
    assert.match(JSON.parse(named.body).error.message, /upstream refused$/);
    for (const front of FRONTS) {
      const r = await plain(front, 'GET', '/down/inline/x', { 'x-tenant-id': 't1' });
      assert.equal(r.status, 502, r.body);
      const { code: c, message } = JSON.parse(r.body).error as { code: string; message: string };
      assert.equal(c, 'upstream_unavailable');
      for (const leak of ['127.0.0.1', String(refusedPort), 'internal-secret', 'http:']) {
        assert.ok(!message.includes(leak), `${front}: ${message} reveals ${leak}`);
      }
      assert.match(message, /upstream$/);
    }
  });
});
