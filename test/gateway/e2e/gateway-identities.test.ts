/**
 * The gateway config option `identities` (gateway/src/gateway-identities.ts):
 * a file mapping client certificates (by CN, URI SAN or fingerprint, as the
 * Core's identity policy matches) to tenants (a list, or "*": every tenant)
 * and reader roles. Validated at
 * start-up with errors naming the file and the field; listed mode fails
 * closed (a certificate the file does not name acts for no tenant, unless
 * `unlisted: "cn"`); a changed file is applied without a restart, a bad one
 * is refused and the old mapping kept. End to end over real mTLS (h2) with
 * certificates issued by the openssl CLI, dev keys and the sample orders app.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KcmError } from '../../../common/src/errors.ts';
import { type IssuedCert, issueCert, makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';
import { type OrdersApp, startOrdersApp } from '../../../gateway/sample/orders-app.ts';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { CertificateIdentities } from '../../../gateway/src/gateway-identities.ts';
import { type ConfiguredGateway, startConfiguredGateway } from '../../../gateway/src/start-configured-gateway.ts';
import { h2Request } from '../../support/h2-request.ts';

const POLICIES = fileURLToPath(new URL('../../../policies', import.meta.url));
const EXAMPLE = join(POLICIES, 'gateway-identities.example.json');
const CARD = '4000 0566 5566 5556';
const uws = { uws: { port: 0 } };

function invalidConfig(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof KcmError, String(e));
    assert.equal(e.code, 'invalid_config');
    assert.match(e.message, re);
    return true;
  };
}

const cert = (cn: string, uris: string[] = [], fingerprint256 = '') => ({ cn, uris, fingerprint256 });

describe('gateway config: identities', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-ids-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, doc: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return file;
  };

  it('is a file path (string or object), resolved against the config directory; fail closed by default', () => {
    const a = gatewayConfig({ dev: true, fronts: uws, identities: 'ids.json' }, '/etc/kcm', { KCM_DEV: '1' });
    assert.deepEqual(a.identities, { file: '/etc/kcm/ids.json', unlisted: 'refuse', watch: true });
    const b = gatewayConfig(
      { dev: true, fronts: uws, identities: { file: '/x/ids.json', unlisted: 'cn', watch: false } },
      '/etc/kcm',
      { KCM_DEV: '1' },
    );
    assert.deepEqual(b.identities, { file: '/x/ids.json', unlisted: 'cn', watch: false });
    assert.equal(gatewayConfig({ dev: true, fronts: uws }, '/', { KCM_DEV: '1' }).identities, undefined);
    const bad: [unknown, RegExp][] = [
      [{ file: '' }, /identities\.file: must be a non-empty string/],
      [{ file: 'a', unlisted: 'allow' }, /identities\.unlisted: must be "refuse" or "cn"/],
      [{ file: 'a', watch: 'yes' }, /identities\.watch: must be true or false/],
      [{ file: 'a', surprise: 1 }, /identities\.surprise: unknown field/],
      [7, /identities: must be an object/],
    ];
    for (const [identities, re] of bad) {
      assert.throws(
        () => gatewayConfig({ dev: true, fronts: uws, identities }, '/', { KCM_DEV: '1' }),
        invalidConfig(re),
      );
    }
  });

  it('loads the shipped example', () => {
    const ids = new CertificateIdentities(EXAMPLE);
    assert.deepEqual(ids.tenantsFor(cert('billing-service')), ['acme', 'globex']);
    assert.deepEqual(ids.rolesFor(cert('desk', ['spiffe://kcm.example/ns/support/sa/desk'])), ['support-lead']);
    assert.equal(ids.tenantsFor(cert('ops-console')), 'any');
  });

  it('accepts "*" (every tenant), alone or with roles, and still refuses a bad tenant id in a list', () => {
    const file = write('any.json', {
      version: 1,
      identities: [
        { match: { cn: 'ops-console' }, tenants: '*' },
        { match: { uri: 'spiffe://x/platform' }, tenants: '*', roles: ['support-lead'] },
      ],
    });
    const ids = new CertificateIdentities(file);
    assert.equal(ids.tenantsFor(cert('ops-console')), 'any');
    assert.deepEqual(ids.rolesFor(cert('ops-console')), []);
    assert.equal(ids.tenantsFor(cert('other', ['spiffe://x/platform'])), 'any');
    assert.deepEqual(ids.rolesFor(cert('other', ['spiffe://x/platform'])), ['support-lead']);
    const ok = { match: { cn: 'svc' }, tenants: ['acme'] };
    const bad: [unknown, RegExp][] = [
      [
        [ok, { match: { cn: 'b' }, tenants: ['acme', 'bad tenant'] }],
        /identities\[1\]\.tenants\[1\]: must be a tenant id/,
      ],
      [[{ ...ok, tenants: ['*'] }], /identities\[0\]\.tenants\[0\]: must be a tenant id/],
      [[{ ...ok, tenants: ['acme', '*'] }], /identities\[0\]\.tenants\[1\]: must be a tenant id/],
      [[{ ...ok, tenants: '**' }], /identities\[0\]\.tenants: must be "\*" \(every tenant\) or an array/],
      [[{ ...ok, tenants: 'any' }], /identities\[0\]\.tenants: must be "\*" \(every tenant\) or an array/],
    ];
    for (const [i, [identities, re]] of bad.entries()) {
      const f = write(`bad-any-${i}.json`, { version: 1, identities });
      assert.throws(() => new CertificateIdentities(f), invalidConfig(re));
    }
  });

  it('refuses a bad file at load, naming the file and the field', () => {
    const ok = { match: { cn: 'svc' }, tenants: ['acme'] };
    const bad: [unknown, RegExp][] = [
      [{ version: 1, identities: [ok], extra: 1 }, /: \(top level\)\.extra: unknown field/],
      [{ version: 2, identities: [] }, /: version: must be 1/],
      [{ version: 1, identities: [{ ...ok, surprise: true }] }, /: identities\[0\]\.surprise: unknown field/],
      [
        { version: 1, identities: [ok, { match: { cn: 'b' }, tenants: ['acme', 'bad tenant'] }] },
        /: identities\[1\]\.tenants\[1\]: must be a tenant id/,
      ],
      [
        { version: 1, identities: [{ ...ok, tenants: ['acme', 'acme'] }] },
        /identities\[0\]\.tenants\[1\]: repeats acme/,
      ],
      [
        { version: 1, identities: [{ ...ok, tenants: 'acme' }] },
        /identities\[0\]\.tenants: must be "\*" \(every tenant\) or an array of tenant ids/,
      ],
      [{ version: 1, identities: [{ match: { cn: 'svc' } }] }, /identities\[0\]\.tenants: must be "\*"/],
      [{ version: 1, identities: [{ ...ok, roles: ['a,b'] }] }, /identities\[0\]\.roles\[0\]: must be a role name/],
      [{ version: 1, identities: [{ ...ok, tenants: [] }] }, /identities\[0\]: grants no tenant and no role/],
      [
        { version: 1, identities: [{ ...ok, match: { cn: 'a', uri: 'spiffe://x' } }] },
        /identities\[0\]\.match: must have exactly one of cn, uri, fingerprint/,
      ],
      [
        { version: 1, identities: [{ ...ok, match: { fingerprint: 'ab:cd' } }] },
        /identities\[0\]\.match\.fingerprint: must be a SHA-256 fingerprint/,
      ],
      [{ version: 1, identities: [ok, ok] }, /identities\[1\]\.match: repeats identities\[0\]\.match/],
      ['{"version": 1,', /: \(file\): is not valid JSON/],
    ];
    for (const [i, [doc, re]] of bad.entries()) {
      const file = write(`bad-${i}.json`, doc);
      assert.throws(() => new CertificateIdentities(file), invalidConfig(re));
      assert.throws(
        () => new CertificateIdentities(file),
        invalidConfig(new RegExp(`^invalid configuration: ${file}: `)),
      );
    }
    assert.throws(
      () => new CertificateIdentities(join(dir, 'absent.json')),
      invalidConfig(/absent\.json: \(file\): cannot be read \(ENOENT\)/),
    );
  });

  it('the gateway refuses to start on a bad file, naming the file and the field', async () => {
    const file = write('start-bad.json', { version: 1, identities: [{ match: { cn: 'x' }, tenants: ['no way'] }] });
    const prev = process.env.KCM_DEV;
    process.env.KCM_DEV = '1';
    try {
      const c = gatewayConfig({ dev: true, fronts: uws, identities: file }, dir, process.env);
      await assert.rejects(
        startConfiguredGateway(c, { log: () => {} }),
        invalidConfig(/start-bad\.json: identities\[0\]\.tenants\[0\]/),
      );
    } finally {
      if (prev === undefined) delete process.env.KCM_DEV;
      else process.env.KCM_DEV = prev;
    }
  });

  it('maps by CN, URI SAN or fingerprint, with the union of every entry naming the certificate', () => {
    const fp = Array.from({ length: 32 }, () => 'AB').join(':');
    const file = write('map.json', {
      version: 1,
      identities: [
        { match: { cn: 'billing-service' }, tenants: ['acme', 'globex'] },
        { match: { uri: 'spiffe://x/billing' }, tenants: ['globex', 'initech'], roles: ['support-lead'] },
        { match: { fingerprint: fp }, tenants: [], roles: ['auditor'] },
      ],
    });
    const ids = new CertificateIdentities(file);
    assert.deepEqual(ids.tenantsFor(cert('billing-service')), ['acme', 'globex']);
    assert.deepEqual(ids.rolesFor(cert('billing-service')), []);
    assert.deepEqual(ids.tenantsFor(cert('other', ['spiffe://x/billing'])), ['globex', 'initech']);
    const all = cert('billing-service', ['spiffe://y', 'spiffe://x/billing'], fp);
    assert.deepEqual([...ids.tenantsFor(all)].sort(), ['acme', 'globex', 'initech']);
    assert.deepEqual([...ids.rolesFor(all)].sort(), ['auditor', 'support-lead']);
    // Exact matches only, as the Core's policy: no case folding, no prefixes.
    assert.deepEqual(ids.tenantsFor(cert('Billing-Service', ['spiffe://x/billing/2'])), []);
  });

  it('"*" wins over lists when several entries name the certificate; roles are still the union', () => {
    const file = write('any-union.json', {
      version: 1,
      identities: [
        { match: { cn: 'platform' }, tenants: ['acme'], roles: ['billing'] },
        { match: { uri: 'spiffe://x/platform' }, tenants: '*', roles: ['support-lead'] },
      ],
    });
    const ids = new CertificateIdentities(file);
    assert.deepEqual(ids.tenantsFor(cert('platform')), ['acme']);
    const both = cert('platform', ['spiffe://x/platform']);
    assert.equal(ids.tenantsFor(both), 'any');
    assert.deepEqual([...ids.rolesFor(both)].sort(), ['billing', 'support-lead']);
    const reversed = new CertificateIdentities(
      write('any-union-2.json', {
        version: 1,
        identities: [
          { match: { uri: 'spiffe://x/platform' }, tenants: '*' },
          { match: { cn: 'platform' }, tenants: ['acme'] },
        ],
      }),
    );
    assert.equal(reversed.tenantsFor(both), 'any', 'whatever the order of the entries');
    // "*" in the file never reaches certificates it does not name, even with unlisted: "cn".
    const open = new CertificateIdentities(file, { unlisted: 'cn' });
    assert.deepEqual(open.tenantsFor(cert('acme')), ['acme']);
  });

  it('a certificate the file does not name acts for no tenant (listed mode), or for its CN with unlisted: "cn"', () => {
    const file = write('listed.json', { version: 1, identities: [{ match: { cn: 'svc' }, tenants: ['globex'] }] });
    const closed = new CertificateIdentities(file);
    assert.deepEqual(closed.tenantsFor(cert('acme')), []);
    assert.deepEqual(closed.rolesFor(cert('acme')), []);
    const open = new CertificateIdentities(file, { unlisted: 'cn' });
    assert.deepEqual(open.tenantsFor(cert('acme')), ['acme']);
    assert.deepEqual(open.tenantsFor(cert('not a tenant id')), []);
    // A listed certificate gets what the file says, never its CN as well.
    assert.deepEqual(open.tenantsFor(cert('svc')), ['globex']);
  });
});

interface Reply {
  status: number;
  text: string;
}

describe('gateway identities end to end (h2 mTLS, dev keys, sample orders app)', () => {
  let dir: string;
  let pki: TestPki;
  let billing: IssuedCert;
  let platform: IssuedCert;
  let tenantNamed: IssuedCert;
  let app: OrdersApp;
  let gw: ConfiguredGateway;
  let idsFile: string;
  const logs: string[] = [];
  const prevDev = process.env.KCM_DEV;

  const mapping = (billingTenants: string[]) => ({
    version: 1,
    identities: [
      { name: 'billing', match: { cn: 'billing-service' }, tenants: billingTenants },
      { name: 'support', match: { uri: TEST_IDS.app.uri }, tenants: ['acme'], roles: ['support-lead'] },
      { name: 'ops', match: { fingerprint: pki.operator.fingerprint256 }, tenants: ['globex'] },
      { name: 'platform', match: { cn: 'platform-service' }, tenants: '*' },
    ],
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-ids-e2e-'));
    pki = makeTestPki(join(dir, 'pki'));
    billing = issueCert(pki.ca, { kind: 'client', cn: 'billing-service', name: 'billing' });
    platform = issueCert(pki.ca, { kind: 'client', cn: 'platform-service', name: 'platform' });
    // Its CN is a tenant id: without the file it would act for acme.
    tenantNamed = issueCert(pki.ca, { kind: 'client', cn: 'acme', name: 'acme' });
    idsFile = join(dir, 'gateway-identities.json');
    writeFileSync(idsFile, JSON.stringify(mapping(['acme', 'globex'])));
    app = await startOrdersApp();
    process.env.KCM_DEV = '1';
    const config = gatewayConfig(
      {
        dev: true,
        fronts: { h2Tls: { port: 0, certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile } },
        policies: { dir: POLICIES, examples: true },
        upstreams: { urls: { 'orders-app': app.url } },
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

  async function h2(
    c: { certPem: string; keyPem: string },
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: unknown,
  ): Promise<Reply> {
    const r = await h2Request(`https://127.0.0.1:${gw.server.ports.h2Tls}`, path, {
      tls: { ca: pki.ca.certPem, cert: c.certPem, key: c.keyPem },
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    });
    return { status: r.status, text: r.body };
  }

  const encrypt = (c: { certPem: string; keyPem: string }, tenant?: string) =>
    h2(c, 'POST', '/v1/encrypt/orders', tenant ? { 'x-okcm-tenant': tenant } : {}, {
      plaintext: Buffer.from('x').toString('base64'),
    });

  it('a certificate listed for several tenants acts for each of them, and for no other', async () => {
    assert.equal((await encrypt(billing, 'acme')).status, 200);
    assert.equal((await encrypt(billing, 'globex')).status, 200);
    assert.equal((await encrypt(billing, 'initech')).status, 403);
    assert.equal((await encrypt(billing)).status, 400, 'two tenants: the request must name one');
  });

  it('a certificate listed with "*" acts for any tenant on the direct API, and must name it', async () => {
    for (const tenant of ['acme', 'globex']) {
      const r = await encrypt(platform, tenant);
      assert.equal(r.status, 200, r.text);
      const ciphertext = (JSON.parse(r.text) as { data: { ciphertext: string } }).data.ciphertext;
      // Sealed for that tenant: billing (acme and globex) opens it under the same tenant, and no other.
      const opened = await h2(billing, 'POST', '/v1/decrypt/orders', { 'x-okcm-tenant': tenant }, { ciphertext });
      assert.equal(opened.status, 200, opened.text);
      assert.equal(JSON.parse(opened.text).data.plaintext, Buffer.from('x').toString('base64'));
      const other = tenant === 'acme' ? 'globex' : 'acme';
      const wrong = await h2(platform, 'POST', '/v1/decrypt/orders', { 'x-okcm-tenant': other }, { ciphertext });
      assert.equal(wrong.status, 400);
      assert.equal(JSON.parse(wrong.text).error.code, 'decryption_failed');
    }
    const unnamed = await encrypt(platform);
    assert.equal(unnamed.status, 400, 'every tenant: the request must name one');
    assert.equal(JSON.parse(unnamed.text).error.code, 'bad_request');
    assert.equal((await encrypt(platform, 'not a tenant')).status, 400);
  });

  it('a certificate listed with "*" acts for any tenant on a proxy route', async () => {
    for (const tenant of ['acme', 'globex']) {
      const created = await h2(
        platform,
        'POST',
        '/orders',
        { 'x-tenant-id': tenant },
        { card: { number: CARD, cvv: '123' }, items: [] },
      );
      assert.equal(created.status, 201, created.text);
      assert.ok(!app.received.at(-1)?.toString('utf8').includes(CARD), 'the card reached the app encrypted');
      const id = (JSON.parse(created.text) as { id: string }).id;
      const read = await h2(platform, 'GET', `/orders/${id}`, { 'x-tenant-id': tenant });
      assert.equal(read.status, 200, read.text);
      assert.notEqual(JSON.parse(read.text).card.number, CARD, '"*" grants tenants, not the reader role');
      const byBilling = await h2(billing, 'GET', `/orders/${id}`, { 'x-tenant-id': tenant });
      assert.equal(JSON.parse(byBilling.text).card.number, CARD, 'sealed under that tenant');
    }
  });

  it('matches a URI SAN and a fingerprint; roles from the file make a reader on proxy routes', async () => {
    const support = { certPem: pki.app.certPem, keyPem: pki.app.keyPem };
    const created = await h2(
      support,
      'POST',
      '/orders',
      { 'x-tenant-id': 'acme' },
      {
        card: { number: CARD, cvv: '123' },
        items: [],
      },
    );
    assert.equal(created.status, 201, created.text);
    const id = (JSON.parse(created.text) as { id: string }).id;
    assert.ok(!app.received.at(-1)?.toString('utf8').includes(CARD));
    const read = await h2(support, 'GET', `/orders/${id}`, { 'x-tenant-id': 'acme' });
    assert.equal(read.status, 200, read.text);
    assert.equal(JSON.parse(read.text).card.number, CARD, 'role support-lead reads plaintext');
    const byBilling = await h2(billing, 'GET', `/orders/${id}`, { 'x-tenant-id': 'acme' });
    assert.equal(JSON.parse(byBilling.text).card.number, CARD, 'identity billing-service reads plaintext');
    assert.equal((await h2(support, 'GET', `/orders/${id}`, { 'x-tenant-id': 'globex' })).status, 403);
    const ops = { certPem: pki.operator.certPem, keyPem: pki.operator.keyPem };
    assert.equal((await encrypt(ops, 'globex')).status, 200);
    assert.equal((await encrypt(ops, 'acme')).status, 403);
  });

  it('fails closed for a certificate the file does not name, even one whose CN is a tenant id', async () => {
    const r = await encrypt(tenantNamed, 'acme');
    assert.equal(r.status, 403, r.text);
    assert.equal(JSON.parse(r.text).error.code, 'forbidden');
    const proxied = await h2(tenantNamed, 'GET', '/orders/1', { 'x-tenant-id': 'acme' });
    assert.equal(proxied.status, 403);
  });

  it('applies a changed file without a restart; a bad file is refused and the old mapping kept', async () => {
    const v = gw.identities?.version ?? 0;
    writeFileSync(idsFile, JSON.stringify(mapping(['acme'])));
    const end = Date.now() + 10_000;
    while ((gw.identities?.version ?? 0) === v && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(gw.identities?.version, v + 1, 'the watched file was reloaded');
    assert.equal((await encrypt(billing, 'globex')).status, 403);
    assert.equal((await encrypt(billing)).status, 200, 'one tenant left: it need not be named');

    writeFileSync(
      idsFile,
      JSON.stringify({ version: 1, identities: [{ match: { cn: 'billing-service' }, tenants: ['x y'] }] }),
    );
    assert.equal(gw.identities?.reload('test'), false);
    assert.match(
      logs.join('\n'),
      /identities: kept the current file \(test\): .*gateway-identities\.json: identities\[0\]\.tenants\[0\]/,
    );
    assert.equal((await encrypt(billing, 'acme')).status, 200);
  });
});
