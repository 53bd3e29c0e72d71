/**
 * Issue 5 must-show over HTTP/2: client → gateway → the sample orders app
 * with the shipped example policy, once over h2 with mTLS (the reader is the
 * client certificate's CN) and once over h2c (the reader comes from the
 * caller header of a trusted peer). The app must never see the plaintext;
 * reading back gives plaintext to `billing-service` and the mask to others.
 * Over mTLS the certificates are services, not tenants: a gateway identity
 * file (config `identities`) lets `billing-service` and `reporting-service`
 * act for tenant `acme`, as a user would configure it.
 * Keys: LocalGatewayKeys (dev: true); leasing from a Core is tested in
 * gateway-core.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type ClientHttp2Session, connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type IssuedCert, issueCert, makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { type OrdersApp, startOrdersApp } from '../../../gateway/sample/orders-app.ts';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { type ConfiguredGateway, startConfiguredGateway } from '../../../gateway/src/start-configured-gateway.ts';

const POLICIES = fileURLToPath(new URL('../../../policies', import.meta.url));
const CARD = '5500 0000 0000 0004';
const EMAIL = 'h2-e2e-marker@example.com';

function h2(
  session: ClientHttp2Session,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path, ...headers });
    let text = '';
    let status = 0;
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      text += d;
    });
    req.on('end', () => resolve({ status, text }));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('gateway proxy over h2 (mTLS) and h2c → sample app', () => {
  let dir: string;
  let pki: TestPki;
  let billing: IssuedCert;
  let other: IssuedCert;
  let app: OrdersApp;
  let gw: ConfiguredGateway;
  const logs: string[] = [];
  const prevDev = process.env.KCM_DEV;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-h2-proxy-'));
    pki = makeTestPki(join(dir, 'pki'));
    billing = issueCert(pki.ca, { kind: 'client', cn: 'billing-service', name: 'billing' });
    other = issueCert(pki.ca, { kind: 'client', cn: 'reporting-service', name: 'reporting' });
    app = await startOrdersApp();
    process.env.KCM_DEV = '1';
    writeFileSync(
      join(dir, 'gateway-identities.json'),
      JSON.stringify({
        version: 1,
        identities: [
          { match: { cn: 'billing-service' }, tenants: ['acme'] },
          { match: { cn: 'reporting-service' }, tenants: ['acme'] },
        ],
      }),
    );
    const config = gatewayConfig(
      {
        dev: true,
        fronts: {
          h2Tls: { port: 0, certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
          h2Plain: { port: 0 },
        },
        policies: { dir: POLICIES, examples: true },
        upstreams: { urls: { 'orders-app': app.url } },
        callerHeaders: { identity: 'x-okcm-caller' },
        identities: { file: 'gateway-identities.json' },
      },
      dir,
      process.env,
    );
    gw = await startConfiguredGateway(config, { log: (m) => logs.push(m) });
  });

  after(async () => {
    await gw?.close();
    await app?.close();
    if (prevDev === undefined) delete process.env.KCM_DEV;
    else process.env.KCM_DEV = prevDev;
    rmSync(dir, { recursive: true, force: true });
  });

  const tlsSession = (c: IssuedCert) =>
    connect(`https://localhost:${gw.server.ports.h2Tls}`, {
      ca: readFileSync(pki.ca.certFile),
      cert: c.certPem,
      key: c.keyPem,
    });

  const roundTrip = async (writer: ClientHttp2Session, reader: ClientHttp2Session, readerHeaders = {}) => {
    const order = { card: { number: CARD, cvv: '321' }, customer: { email: EMAIL }, items: [{ sku: 'B2' }] };
    const created = await h2(
      writer,
      'POST',
      '/orders',
      { 'x-tenant-id': 'acme', 'content-type': 'application/json' },
      order,
    );
    assert.equal(created.status, 201, created.text);
    const id = (JSON.parse(created.text) as { id: string }).id;
    const stored = app.received.at(-1)?.toString('utf8') ?? '';
    assert.ok(!stored.includes(CARD) && !stored.includes(EMAIL), 'the app never sees the plaintext');
    assert.match(stored, /okcm:1:/);
    const read = await h2(reader, 'GET', `/orders/${id}`, { 'x-tenant-id': 'acme', ...readerHeaders });
    assert.equal(read.status, 200, read.text);
    return { id, read: JSON.parse(read.text) as { card: { number: string }; customer: { email: string } } };
  };

  it('h2 with mTLS: plaintext for the billing-service certificate, the mask for another certificate', async () => {
    const b = tlsSession(billing);
    const o = tlsSession(other);
    try {
      const { id, read } = await roundTrip(b, b);
      assert.equal(read.card.number, CARD);
      assert.equal(read.customer.email, EMAIL);
      const masked = JSON.parse((await h2(o, 'GET', `/orders/${id}`, { 'x-tenant-id': 'acme' })).text);
      assert.equal(masked.card.number, '****');
      assert.equal(masked.customer.email, '****');
      assert.equal(b.alpnProtocol, 'h2');
    } finally {
      b.close();
      o.close();
    }
  });

  it('h2 with mTLS: a client without a certificate cannot connect', async () => {
    const s = connect(`https://localhost:${gw.server.ports.h2Tls}`, { ca: readFileSync(pki.ca.certFile) });
    s.on('error', () => {});
    const r = await h2(s, 'GET', '/healthz', {}).then(
      (x) => x.status,
      () => 'refused',
    );
    s.close();
    assert.notEqual(r, 200);
  });

  it('h2c: plaintext for the trusted caller header billing-service, the mask otherwise', async () => {
    const s = connect(`http://127.0.0.1:${gw.server.ports.h2Plain}`);
    try {
      const { id, read } = await roundTrip(s, s, { 'x-okcm-caller': 'billing-service' });
      assert.equal(read.card.number, CARD);
      const masked = JSON.parse((await h2(s, 'GET', `/orders/${id}`, { 'x-tenant-id': 'acme' })).text);
      assert.equal(masked.card.number, '****');
    } finally {
      s.close();
    }
    assert.ok(!logs.join('\n').includes(CARD) && !logs.join('\n').includes(EMAIL), 'no plaintext in the logs');
  });
});
