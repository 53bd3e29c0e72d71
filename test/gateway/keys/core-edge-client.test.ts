/**
 * The edge client library against a real edge API (mTLS, SQLite store):
 * singleflight, TTL expiry and refetch, serving from cache while the Core is
 * down then failing closed, reconnect with backoff after a Core restart, and
 * revocation fan-out to many connected clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KcmError } from '../../../common/src/errors.ts';
import { CoreEdgeClient, type CoreEdgeClientOptions } from '../../../gateway/src/keys/core-edge-client.ts';
import { type EdgeEnv, makeEdgeEnv } from '../../core/edge/edge-fixtures.ts';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('CoreEdgeClient', () => {
  let env: EdgeEnv;
  const clients: CoreEdgeClient[] = [];
  const client = (o: Partial<CoreEdgeClientOptions> = {}) => {
    const c = new CoreEdgeClient({
      url: env.server.url,
      tls: env.clientTls(env.pki.edgeA),
      crypto: env.crypto,
      backoff: { baseMs: 20, maxMs: 200 },
      connectTimeoutMs: 500,
      requestTimeoutMs: 1000,
      log: () => {},
      ...o,
    });
    clients.push(c);
    return c;
  };
  before(async () => {
    env = await makeEdgeEnv({ leaseTtl: { minSeconds: 1, defaultSeconds: 300, maxSeconds: 3600 }, heartbeatMs: 100 });
  });
  after(async () => {
    for (const c of clients) await c.close();
    await env.cleanup();
  });

  it('N concurrent misses cost one lease request', async () => {
    const c = client();
    const before = env.source.calls;
    const got = await Promise.all(Array.from({ length: 50 }, () => c.encryptionKey('tenant-a', 'orders')));
    assert.equal(c.leaseRequests, 1);
    assert.equal(env.source.calls - before, 1);
    assert.ok(got.every((g) => g.key === got[0]?.key));
    await c.encryptionKey('tenant-a', 'orders');
    assert.equal(c.leaseRequests, 1, 'a hit sends nothing');
  });

  it('refetches after the TTL and wipes the expired handles; a refresh keeps the handles of the versions it renews', async () => {
    const clock = { now: Date.now() };
    const c = client({ now: () => clock.now, ttlSeconds: 300 });
    const first = await c.encryptionKey('tenant-a', 'orders');
    const firstLease = await c.lease('tenant-a', 'orders');
    clock.now += 299_000;
    await c.encryptionKey('tenant-a', 'orders');
    assert.equal(c.leaseRequests, 2, 'refreshed in the background after 80% of the TTL');
    let renewed = false;
    for (let i = 0; i < 100 && !renewed; i++) {
      renewed = (await c.lease('tenant-a', 'orders')) !== firstLease;
      if (!renewed) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(renewed, 'the refreshed lease replaced the first');
    const refreshed = await c.encryptionKey('tenant-a', 'orders');
    assert.equal(c.leaseRequests, 2);
    assert.equal(refreshed.key, first.key, 'the renewed version keeps its handle (a holder of it is not broken)');
    assert.equal(first.key.info().destroyed, false);
    clock.now += 301_000;
    const again = await c.encryptionKey('tenant-a', 'orders');
    assert.equal(c.leaseRequests, 3, 'refetched after the TTL');
    assert.notEqual(again.key, refreshed.key);
    assert.equal(refreshed.key.info().destroyed, true, 'an expired lease is wiped');
  });

  it('serves from cache while the Core is down, then fails closed with core_unavailable', async () => {
    const clock = { now: Date.now() };
    const c = client({ now: () => clock.now, ttlSeconds: 300 });
    const { key } = await c.encryptionKey('tenant-a', 'orders');
    const port = env.server.port;
    await env.server.close();
    try {
      clock.now += 250_000; // past the refresh point, before the TTL: the refresh fails, the cache serves
      assert.equal((await c.encryptionKey('tenant-a', 'orders')).key, key);
      clock.now += 60_000; // past the TTL
      await assert.rejects(c.encryptionKey('tenant-a', 'orders'), (e: KcmError) => {
        assert.equal(e.code, 'core_unavailable');
        assert.equal(e.status, 503);
        assert.match(e.message, /no unexpired lease is cached/);
        assert.doesNotMatch(e.message, /ECONN|127\.0\.0\.1|connect|certificate/, 'no network detail for callers');
        return true;
      });
      await assert.rejects(c.decryptionKey('tenant-a', 'orders', 1), { code: 'core_unavailable' });
    } finally {
      await env.restart({ port });
    }
    assert.equal((await c.encryptionKey('tenant-a', 'orders')).version, 2, 'recovers when the Core is back');
  });

  it('reconnects its event stream with backoff after a Core restart and replays what it missed', async () => {
    const seen: number[] = [];
    const c = client({ onEvent: (e) => seen.push(e.seq) });
    c.start();
    await until(() => c.subscribed, 2000, 'subscription');
    const start = (await env.store.latestEventSeq()) + 1;
    await env.publish('l3.rotated', 'tenant-a', 'orders', 3);
    await until(() => seen.includes(start), 1000, 'first event');
    const port = env.server.port;
    await env.server.close();
    await until(() => !c.subscribed, 2000, 'disconnect');
    // Committed while the edge is cut off: replayed after reconnect.
    const e = await env.store.transaction((tx) =>
      tx.appendEvent({ type: 'l3.rotated', tenant: 'tenant-a', service: 'orders', version: 4, createdAt: Date.now() }),
    );
    await new Promise((r) => setTimeout(r, 300));
    await env.restart({ port });
    await until(() => seen.includes(e.seq), 3000, 'replayed event');
    await until(() => c.eventSeq.acked >= e.seq, 2000, 'ack');
    assert.equal((await env.store.getEdge('edge-a'))?.ackedSeq, c.eventSeq.acked);
  });

  it('a revocation reaches every connected client: keys destroyed and acked within 1 s', async () => {
    const n = 10;
    const many = Array.from({ length: n }, () => client());
    const keys = await Promise.all(many.map((c) => c.encryptionKey('tenant-a', 'orders')));
    for (const c of many) c.start();
    await until(() => many.every((c) => c.subscribed), 3000, 'subscriptions');
    const t0 = performance.now();
    const e = await env.publish('tenant.revoked', 'tenant-a');
    await until(() => many.every((c) => c.eventSeq.acked >= e.seq), 1000, 'acks from every client');
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 1000, `${elapsed} ms`);
    assert.ok(
      keys.every((k) => k.key.info().destroyed),
      'every handle destroyed',
    );
    const [one] = many;
    assert.ok(one);
    await assert.rejects(one.encryptionKey('tenant-a', 'orders'), { code: 'tenant_revoked' });
    const status = await env.server.ackStatus(e.seq);
    assert.deepEqual(
      status.acked.map((a) => a.edgeId),
      ['edge-a'],
    );
    assert.deepEqual(status.pending, []);
  });
});
