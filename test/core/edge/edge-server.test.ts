/**
 * The edge API end to end over real mTLS (node:http2, certificates from the
 * test PKI): who may connect, who may lease which tenant, request validation,
 * and the lease transport (a lease only unwraps on the connection that got it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthzEngine, parsePolicy, testPolicyDocument } from '../../../common/src/authz/index.ts';
import { leaseKey, leaseWrapAad, sessionTransportKey } from '../../../common/src/crypto/lease-transport.ts';
import type { KcmError } from '../../../common/src/errors.ts';
import { parseWireLease } from '../../../common/src/format/edge-wire.ts';
import { TEST_IDS } from '../../../common/src/pki/index.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { authzEdgeAccess } from '../../../core/src/edge/edge-access.ts';
import { CoreEdgeClient } from '../../../gateway/src/keys/core-edge-client.ts';
import { type EdgeEnv, h2Connect, h2Json, makeEdgeEnv, testPki } from './edge-fixtures.ts';

describe('edge API over mTLS', () => {
  let env: EdgeEnv;
  const audit = new MemoryAuditSink();
  before(async () => {
    env = await makeEdgeEnv({ audit });
  });
  after(() => env.cleanup());

  it('leases tenant A to edge-a: the unwrapped handle is the Core L3 key', async () => {
    const client = new CoreEdgeClient({ url: env.server.url, tls: env.clientTls(env.pki.edgeA), crypto: env.crypto });
    try {
      const { version, key } = await client.encryptionKey('tenant-a', 'orders');
      assert.equal(version, 2);
      const aad = Buffer.from('ctx');
      const sealed = env.source.handle('tenant-a', 'orders', 2).seal(Buffer.from('hello'), aad);
      assert.equal(key.open(sealed, aad).toString(), 'hello');
      // A decrypt-only version on demand.
      const v1 = await client.decryptionKey('tenant-a', 'orders', 1);
      const old = env.source.handle('tenant-a', 'orders', 1).seal(Buffer.from('old'), aad);
      assert.equal(v1.open(old, aad).toString(), 'old');
      assert.equal(client.leaseRequests, 2);
    } finally {
      await client.close();
    }
    assert.ok(audit.events.some((e) => e.action === 'edge.lease' && e.outcome === 'success' && e.actor === 'edge-a'));
  });

  it('refuses tenant B to edge-a with 403 lease_refused, and audits it', async () => {
    const s = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeA);
    try {
      const r = await h2Json(s, 'POST', '/v1/edge/lease', { tenant: 'tenant-b', service: 'orders' });
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'lease_refused');
      // A valid certificate that is allowed nothing.
      const app = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.app);
      const r2 = await h2Json(app, 'POST', '/v1/edge/lease', { tenant: 'tenant-a', service: 'orders' });
      app.close();
      assert.equal(r2.status, 403);
    } finally {
      s.close();
    }
    assert.ok(
      audit.events.some((e) => e.action === 'edge.lease' && e.outcome === 'failure' && e.reason === 'lease_refused'),
    );
    const client = new CoreEdgeClient({ url: env.server.url, tls: env.clientTls(env.pki.edgeA), crypto: env.crypto });
    await assert.rejects(
      client.encryptionKey('tenant-b', 'orders'),
      (e: KcmError) => e.code === 'lease_refused' && e.status === 403,
    );
    await client.close();
  });

  it('refuses a client without a certificate, from another CA, expired, or without clientAuth at the handshake', async () => {
    for (const cert of [null, env.pki.foreignClient, env.pki.expiredClient, env.pki.serverOnlyAsClient]) {
      const outcome = await h2Connect(env.server.url, env.pki.ca.certPem, cert).then(
        async (s) => {
          // TLS 1.3 reports a refused client certificate after the client's handshake completes.
          const r = await h2Json(s, 'POST', '/v1/edge/lease', { tenant: 'tenant-a', service: 'orders' });
          s.destroy();
          return r.status;
        },
        () => 0,
      );
      assert.ok(outcome === 0 || outcome === 401, `${cert?.name ?? 'no certificate'}: got ${outcome}`);
    }
    const client = new CoreEdgeClient({
      url: env.server.url,
      tls: env.clientTls(env.pki.foreignClient),
      crypto: env.crypto,
      connectTimeoutMs: 1000,
    });
    await assert.rejects(client.encryptionKey('tenant-a', 'orders'), (e: KcmError) => e.code === 'core_unavailable');
    await client.close();
  });

  it('validates lease requests: TTL bounds, ids, versions, routes and methods', async () => {
    const s = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeA);
    try {
      const lease = (body: unknown) => h2Json(s, 'POST', '/v1/edge/lease', body);
      const base = { tenant: 'tenant-a', service: 'orders' };
      assert.equal((await lease(base)).body.ttlSeconds, 300);
      assert.equal((await lease({ ...base, ttlSeconds: 300 })).status, 200);
      assert.equal((await lease({ ...base, ttlSeconds: 3600 })).body.ttlSeconds, 3600);
      for (const ttlSeconds of [299, 3601, 0, -5, 30.5, '300']) {
        const r = await lease({ ...base, ttlSeconds });
        assert.equal(r.status, 400, `ttl ${ttlSeconds}`);
        assert.equal(r.body.error.code, 'bad_request');
      }
      assert.equal((await lease({ tenant: 'no/such', service: 'orders' })).body.error.code, 'invalid_tenant_id');
      assert.equal((await lease({ tenant: 'tenant-a' })).body.error.code, 'invalid_key_id');
      assert.equal((await lease({ ...base, versions: [0] })).body.error.code, 'invalid_key_version');
      assert.equal((await lease({ ...base, versions: 'all' })).status, 400);
      assert.equal((await lease({ ...base, versions: Array.from({ length: 65 }, (_, i) => i + 1) })).status, 400);
      assert.equal((await lease({ ...base, service: 'nope' })).status, 404);
      assert.equal((await h2Json(s, 'GET', '/v1/edge/lease')).status, 405);
      assert.equal((await h2Json(s, 'POST', '/v1/edge/nope', {})).status, 404);
      const bad = await new Promise<number>((resolve) => {
        const req = s.request({ ':method': 'POST', ':path': '/v1/edge/lease' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.end('{not json');
      });
      assert.equal(bad, 400);
    } finally {
      s.close();
    }
  });

  it('a lease only unwraps on the TLS connection that carried it', async () => {
    const s1 = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeA);
    const s2 = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeA);
    const k1 = sessionTransportKey(env.crypto, s1.socket as never);
    const k2 = sessionTransportKey(env.crypto, s2.socket as never);
    try {
      const wire = parseWireLease(
        (await h2Json(s1, 'POST', '/v1/edge/lease', { tenant: 'tenant-a', service: 'orders' })).body,
      );
      assert.ok(wire.active);
      const salt = Buffer.from(wire.salt, 'base64url');
      const blob = Buffer.from(wire.active.wrapped, 'base64url');
      const aad = leaseWrapAad('tenant-a', 'orders', wire.active.version);
      const unwrapWith = (session: typeof k1, edgeId: string, a: Buffer) => {
        const lk = leaseKey(session, salt, edgeId, 'tenant-a', 'orders');
        try {
          return lk.unwrap(blob, a);
        } finally {
          lk.destroy();
        }
      };
      // Control: the connection that got it unwraps it.
      unwrapWith(k1, wire.edgeId, aad).destroy();
      // Replayed on another connection of the same edge, claimed by another edge, or relabelled: refused.
      assert.throws(() => unwrapWith(k2, wire.edgeId, aad), { code: 'decryption_failed' });
      assert.throws(() => unwrapWith(k1, 'edge-b', aad), { code: 'decryption_failed' });
      assert.throws(() => unwrapWith(k1, wire.edgeId, leaseWrapAad('tenant-a', 'orders', 1)), {
        code: 'decryption_failed',
      });
    } finally {
      k1.destroy();
      k2.destroy();
      s1.close();
      s2.close();
    }
  });

  it('reports usage to the lease source for allowed tenants only', async () => {
    const s = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeA);
    try {
      const ok = await h2Json(s, 'POST', '/v1/edge/usage', {
        tenant: 'tenant-a',
        service: 'orders',
        version: 2,
        count: 7,
      });
      assert.equal(ok.status, 200);
      const no = await h2Json(s, 'POST', '/v1/edge/usage', {
        tenant: 'tenant-b',
        service: 'orders',
        version: 1,
        count: 7,
      });
      assert.equal(no.status, 403);
      const bad = await h2Json(s, 'POST', '/v1/edge/usage', {
        tenant: 'tenant-a',
        service: 'orders',
        version: 2,
        count: 0,
      });
      assert.equal(bad.status, 400);
    } finally {
      s.close();
    }
    assert.deepEqual(env.source.reported, [{ tenant: 'tenant-a', service: 'orders', version: 2, count: 7 }]);
  });
});

describe('edge API with the shared authorization engine (test policy)', () => {
  let env: EdgeEnv;
  before(async () => {
    const pki = testPki();
    env = await makeEdgeEnv({ access: authzEdgeAccess(new AuthzEngine(parsePolicy(testPolicyDocument(pki), 'test'))) });
    env.source.add(TEST_IDS.tenantA, 'orders', 1);
    env.source.add(TEST_IDS.tenantB, 'orders', 1);
  });
  after(() => env.cleanup());

  it('edge-a (matched by URI SAN) leases tenant A, is refused tenant B; edge-b (by fingerprint) the reverse', async () => {
    const a = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeA);
    const b = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeB);
    try {
      const lease = (s: typeof a, tenant: string) => h2Json(s, 'POST', '/v1/edge/lease', { tenant, service: 'orders' });
      assert.equal((await lease(a, TEST_IDS.tenantA)).status, 200);
      assert.equal((await lease(a, TEST_IDS.tenantB)).status, 403);
      assert.equal((await lease(b, TEST_IDS.tenantB)).status, 200);
      assert.equal((await lease(b, TEST_IDS.tenantA)).status, 403);
      const op = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.operator);
      assert.equal((await lease(op, TEST_IDS.tenantA)).status, 403, 'an operator is not an edge');
      op.close();
    } finally {
      a.close();
      b.close();
    }
  });
});
