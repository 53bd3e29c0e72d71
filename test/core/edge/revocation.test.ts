/**
 * Revocation end to end with the real key hierarchy (KEYS code) behind the
 * edge API: revoking a tenant destroys every connected edge client's keys and
 * is acknowledged within 1 s; further leases get 410; a restarted Core still
 * refuses the tenant, and its ack status still shows who applied it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreEdgeClient } from '../../../gateway/src/keys/core-edge-client.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { h2Connect, h2Json } from './edge-fixtures.ts';
import { type HierarchyCore, startHierarchyCore } from './hierarchy-core.ts';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe('tenant revocation through the edge API (real key hierarchy)', () => {
  let core: HierarchyCore;
  const clients: CoreEdgeClient[] = [];
  before(async () => {
    core = await startHierarchyCore();
    await core.keys.tenants.create({ id: 'acme' });
    await core.keys.services.create('acme', 'orders');
    await core.keys.tenants.create({ id: 'globex' });
    await core.keys.services.create('globex', 'orders');
    core.allow['edge-a'] = ['acme', 'globex'];
    core.allow['edge-b'] = ['acme'];
  });
  after(async () => {
    for (const c of clients) await c.close();
    await core.close();
  });

  it('every connected client drops the keys and acks within 1 s; leases get 410, also after a restart', async () => {
    const make = (cert: typeof core.pki.edgeA) => {
      const c = new CoreEdgeClient({
        url: core.server.url,
        tls: { cert: cert.certPem, key: cert.keyPem, ca: core.pki.ca.certPem },
        crypto: defaultCrypto(),
        log: () => {},
      });
      clients.push(c);
      return c;
    };
    const edges = [
      ...Array.from({ length: 4 }, () => make(core.pki.edgeA)),
      ...Array.from({ length: 4 }, () => make(core.pki.edgeB)),
    ];
    const acme = await Promise.all(edges.map((c) => c.encryptionKey('acme', 'orders')));
    const [first] = edges;
    assert.ok(first);
    const globex = await first.encryptionKey('globex', 'orders');
    for (const c of edges) c.start();
    await until(() => edges.every((c) => c.subscribed), 3000, 'subscriptions');

    const t0 = performance.now();
    await core.keys.tenants.revoke('acme', { reason: 'kill switch test' });
    const seq = await core.store.latestEventSeq();
    await until(() => edges.every((c) => c.eventSeq.acked >= seq), 1000, 'every edge to ack');
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `revocation applied and acked in ${ms.toFixed(1)} ms`);
    assert.ok(
      acme.every((k) => k.key.info().destroyed),
      'every acme handle destroyed',
    );
    assert.equal(globex.key.info().destroyed, false, 'other tenants untouched');

    const status = await core.server.ackStatus(seq);
    assert.equal(status.event.type, 'tenant.revoked');
    assert.deepEqual(
      status.acked.map((a) => a.edgeId),
      ['edge-a', 'edge-b'],
    );
    assert.deepEqual(status.pending, []);

    const s = await h2Connect(core.server.url, core.pki.ca.certPem, core.pki.edgeB);
    const refused = await h2Json(s, 'POST', '/v1/edge/lease', { tenant: 'acme', service: 'orders' });
    s.close();
    assert.equal(refused.status, 410);
    assert.equal(refused.body.error.code, 'tenant_revoked');

    await core.restart();
    const s2 = await h2Connect(core.server.url, core.pki.ca.certPem, core.pki.edgeA);
    try {
      const again = await h2Json(s2, 'POST', '/v1/edge/lease', { tenant: 'acme', service: 'orders' });
      assert.equal(again.status, 410, 'a restarted Core still refuses the tenant');
      assert.equal((await h2Json(s2, 'POST', '/v1/edge/lease', { tenant: 'globex', service: 'orders' })).status, 200);
    } finally {
      s2.close();
    }
    const after = await core.server.ackStatus(seq);
    assert.deepEqual(
      after.acked.map((a) => a.edgeId),
      ['edge-a', 'edge-b'],
    );
    // A fresh edge client (no tombstone) is refused by the restarted Core too.
    const fresh = make(core.pki.edgeA);
    await assert.rejects(fresh.encryptionKey('acme', 'orders'), { code: 'tenant_revoked', status: 410 });
  });
});
