/**
 * End to end: a real in-process Core (startCore on a temp SQLite, edge API
 * with mTLS and the authorization policy of makeTestPki) + a gateway started
 * from its configuration (startConfiguredGateway: CoreGatewayKeys over the
 * CoreEdgeClient as `edge-a`, allowed tenant-a only) + a real upstream.
 *
 * Encrypt through the proxy (the upstream stores ciphertext), decrypt for a
 * reader, usage reported to the Core; then revoke the tenant at the Core:
 * the running gateway refuses that tenant within 1 s (measured under a
 * steady stream of requests) and never forwards or returns plaintext.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { writeTestPolicy } from '../../../common/src/authz/test-policy.ts';
import { makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { type CoreService, startCore } from '../../../core/src/core-service.ts';
import { CoreGatewayKeys } from '../../../gateway/src/core-gateway-keys.ts';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { type ConfiguredGateway, startConfiguredGateway } from '../../../gateway/src/start-configured-gateway.ts';
import { startUpstreams, testPolicy, type Upstreams } from '../proxy/proxy-fixture.ts';

const TENANT = TEST_IDS.tenantA;
const CARD = '4111 1111 1111 1111';

const until = async (cond: () => boolean | Promise<boolean>, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('gateway + Core (mTLS edge API) + upstream', () => {
  let dir: string;
  let pki: TestPki;
  let core: CoreService;
  let gw: ConfiguredGateway;
  let up: Upstreams;
  const agent = new Agent({ keepAliveTimeout: 1000 });
  const logs: string[] = [];
  let base: string;

  const call = async (path: string, o: { body?: unknown; headers?: Record<string, string> } = {}) => {
    const res = await request(`${base}${path}`, {
      method: o.body === undefined ? 'GET' : 'POST',
      dispatcher: agent,
      headers: { 'x-tenant-id': TENANT, 'content-type': 'application/json', ...o.headers },
      ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, text, json: () => JSON.parse(text) };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-core-'));
    pki = makeTestPki(join(dir, 'pki'));
    const authz = writeTestPolicy(join(dir, 'authz.json'), pki);
    const config = coreConfig(
      {
        dataDir: join(dir, 'data'),
        listen: {
          host: '127.0.0.1',
          port: 0,
          tls: { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
        },
        authzPolicy: authz,
        edge: {
          port: 0,
          tls: { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
        },
      },
      {},
    );
    core = await startCore(config, { log: (m) => logs.push(`core: ${m}`) });
    await core.root.init({ threshold: 2, shareCount: 3 });
    await core.root.confirmInit();
    await core.keys.tenants.create({ id: TENANT });
    await core.keys.services.create(TENANT, 'orders');
    assert.ok(core.edge);

    up = await startUpstreams();
    mkdirPolicies(dir);
    const file = gatewayConfig(
      {
        fronts: { uws: { host: '127.0.0.1', port: 0 } },
        policies: 'policies',
        core: {
          url: core.edge.url,
          certFile: pki.edgeA.certFile,
          keyFile: pki.edgeA.keyFile,
          caFile: pki.ca.certFile,
        },
        upstreams: {
          urls: { app: `http://127.0.0.1:${up.appPort}` },
          headersTimeoutMs: 2000,
        },
        callerHeaders: { identity: 'x-okcm-caller' },
        limits: { drainMs: 1000 },
      },
      dir,
      {},
    );
    gw = await startConfiguredGateway(file, { log: (m) => logs.push(`gateway: ${m}`) });
    base = `http://127.0.0.1:${gw.server.ports.uws}`;
  });

  after(async () => {
    await agent.close();
    await gw?.close();
    await up?.close();
    await core?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is ready once the Core event stream is open', async () => {
    await until(async () => (await call('/readyz')).status === 200, 5000, '/readyz 200');
  });

  it('encrypts through the proxy, decrypts for a reader, reports usage to the Core', async () => {
    const before = up.received.length;
    const r = await call('/orders', { body: { card: { number: CARD } } });
    assert.equal(r.status, 201);
    const stored = up.received[before]?.body.toString('utf8') ?? '';
    assert.ok(stored.includes('okcm:1:') && !stored.includes('4111'), 'the upstream stored ciphertext only');
    const id = r.json().id as string;
    const read = await call(`/orders/${id}`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(read.status, 200);
    assert.equal(read.json().card.number, CARD);
    const masked = await call(`/orders/${id}`);
    assert.equal(masked.json().card.number, '****');

    const keys = gw.keys as CoreGatewayKeys;
    assert.ok(keys instanceof CoreGatewayKeys);
    const budget = async () => (await core.keys.leaseSet(TENANT, 'orders', [])).activeBudgetLeft as number;
    await keys.client.flushUsage();
    const left = await budget();
    await call('/orders', { body: { card: { number: CARD } } });
    await keys.client.flushUsage();
    await until(async () => (await budget()) === left - 1, 2000, 'the Core to count the encryption');
    const stats = keys.stats();
    assert.ok(stats.cacheHits > 0 && stats.cacheMisses >= 1, JSON.stringify(stats));
  });

  it('another tenant of the edge certificate is refused by the Core: 403, nothing forwarded', async () => {
    const before = up.received.length;
    const r = await call('/orders', { body: { card: { number: CARD } }, headers: { 'x-tenant-id': TEST_IDS.tenantB } });
    assert.equal(r.status, 403);
    assert.ok(!r.text.includes('4111'));
    assert.equal(up.received.length, before);
  });

  it('a tenant revoked at the Core is refused by the running gateway within 1 s; no plaintext passes', async (t) => {
    const created = await call('/orders', { body: { card: { number: CARD } } });
    const id = created.json().id as string;
    const received = up.received.length;
    const t0 = performance.now();
    await core.keys.tenants.revoke(TENANT, { reason: 'e2e test' });
    const revokedAt = performance.now();
    let refusedAt = 0;
    let accepted = 0;
    while (performance.now() - t0 < 3000) {
      const r = await call('/orders', { body: { card: { number: CARD } } });
      if (r.status === 201) {
        accepted++;
        continue;
      }
      assert.equal(r.status, 410, r.text);
      assert.equal(r.json().error.code, 'tenant_revoked');
      refusedAt = performance.now();
      break;
    }
    assert.ok(refusedAt > 0, 'the gateway refused the tenant');
    const ms = refusedAt - revokedAt;
    t.diagnostic(
      `refused ${ms.toFixed(1)} ms after the revocation committed (${accepted} requests accepted meanwhile)`,
    );
    assert.ok(ms < 1000, `${ms} ms`);
    for (const r of up.received.slice(received)) {
      assert.ok(!r.body.toString('utf8').includes('4111'), 'the upstream never saw plaintext');
    }
    // Every path refuses now: encrypt, decrypt for a reader, and the direct API.
    const read = await call(`/orders/${id}`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(read.status, 410);
    assert.ok(!read.text.includes('4111'));
    const direct = await call('/v1/encrypt/orders', {
      body: { plaintext: Buffer.from('x').toString('base64') },
      headers: { 'x-okcm-tenant': TENANT },
    });
    assert.equal(direct.status, 410);
    assert.equal(gw.keys.stats().revocationsApplied >= 1, true);
  });
});

function mkdirPolicies(dir: string): void {
  const p = join(dir, 'policies');
  rmSync(p, { recursive: true, force: true });
  mkdirSync(p);
  writeFileSync(join(p, 'e2e.routes.json'), JSON.stringify(testPolicy()));
}
