/**
 * CoreGatewayKeys against a real edge API (mTLS): readiness follows the
 * event stream and the held leases; a Core outage is ridden out from the
 * cache until the TTL, then every call fails closed with 503; a rotation
 * event switches the active version; revocation refuses the tenant and
 * empties readiness; the proxy's FieldKeyProvider sees the same keys; the
 * synchronous cache answers (cachedEncryptionKey / cachedDecryptionKey)
 * follow the same TTL, rotation and revocation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreGatewayKeys } from '../../../gateway/src/core-gateway-keys.ts';
import { fieldKeyProvider } from '../../../gateway/src/field-keys.ts';
import type { CoreEdgeClientOptions } from '../../../gateway/src/keys/core-edge-client.ts';
import { type EdgeEnv, makeEdgeEnv } from '../../core/edge/edge-fixtures.ts';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** The version and handle of a key answer (a cached one also says how long its lease has left). */
const keyOf = (k: { version: number; handle: unknown } | undefined) => k && { version: k.version, handle: k.handle };

describe('CoreGatewayKeys', () => {
  let env: EdgeEnv;
  const all: CoreGatewayKeys[] = [];
  const make = (o: Partial<CoreEdgeClientOptions> = {}) => {
    const k = new CoreGatewayKeys({
      url: env.server.url,
      tls: env.clientTls(env.pki.edgeA),
      crypto: env.crypto,
      backoff: { baseMs: 20, maxMs: 200 },
      connectTimeoutMs: 500,
      requestTimeoutMs: 1000,
      log: () => {},
      ...o,
    });
    all.push(k);
    return k;
  };
  before(async () => {
    env = await makeEdgeEnv({ leaseTtl: { minSeconds: 1, defaultSeconds: 300, maxSeconds: 3600 }, heartbeatMs: 100 });
  });
  after(async () => {
    for (const k of all) await k.close();
    await env.cleanup();
  });

  it('rides out a Core outage from the cache until the TTL, then fails closed (503) and is not ready', async () => {
    const clock = { now: Date.now() };
    const keys = make({ now: () => clock.now, ttlSeconds: 300 });
    assert.equal(keys.ready(), false, 'no stream, no lease');
    assert.equal(keys.cachedEncryptionKey('tenant-a', 'orders'), undefined, 'nothing cached: ask encryptionKey');
    const first = await keys.encryptionKey('tenant-a', 'orders');
    assert.equal(keys.ready(), true, 'a lease is held');
    assert.equal(keys.stats().cacheMisses, 1);
    const hits = keys.stats().cacheHits;
    assert.deepEqual(
      keyOf(keys.cachedEncryptionKey('tenant-a', 'orders')),
      keyOf(first),
      'the cached answer is the same key',
    );
    assert.equal(keys.cachedDecryptionKey('tenant-a', 'orders', first.version), first.handle);
    assert.equal(keys.stats().cacheHits, hits + 2, 'cached answers count as hits');
    const port = env.server.port;
    await env.server.close();
    try {
      clock.now += 250_000;
      assert.equal((await keys.encryptionKey('tenant-a', 'orders')).handle, first.handle, 'served from cache');
      assert.equal(keys.cachedEncryptionKey('tenant-a', 'orders')?.handle, first.handle, 'within the TTL');
      assert.equal(keys.ready(), true);
      clock.now += 60_000;
      assert.equal(keys.cachedEncryptionKey('tenant-a', 'orders'), undefined, 'past the TTL: never from the cache');
      assert.equal(keys.cachedDecryptionKey('tenant-a', 'orders', first.version), undefined);
      const stats = keys.stats();
      await assert.rejects(keys.encryptionKey('tenant-a', 'orders'), { code: 'core_unavailable', status: 503 });
      assert.equal(keys.stats().cacheHits, stats.cacheHits, 'a failed lookup is no cache hit');
      assert.equal(keys.stats().cacheMisses, stats.cacheMisses + 1, 'it asked the Core: a miss');
      await assert.rejects(keys.decryptionKey('tenant-a', 'orders', first.version), { code: 'core_unavailable' });
      await assert.rejects(async () => fieldKeyProvider(keys).encryptKey('tenant-a', 'orders'), {
        code: 'core_unavailable',
      });
      assert.equal(keys.ready(), false, 'Core unreachable and the cache is empty');
    } finally {
      await env.restart({ port });
    }
  });

  it('events apply at once: rotation switches the active version, revocation refuses the tenant', async () => {
    const keys = make();
    keys.start();
    await until(() => keys.client.subscribed, 3000, 'subscription');
    assert.equal(keys.ready(), true);
    const v1 = await keys.encryptionKey('tenant-a', 'orders');
    const next = env.source.rotate('tenant-a', 'orders');
    const changed: (string | undefined)[] = [];
    const unhook = keys.onKeysChanged((t) => changed.push(t));
    const rotated = await env.publish('l3.rotated', 'tenant-a', 'orders', next);
    await until(() => keys.client.eventSeq.applied >= rotated.seq, 1000, 'the rotation event');
    assert.deepEqual(changed, ['tenant-a'], 'key-change listeners hear of it (the native front drops its copies)');
    unhook();
    assert.equal(keys.cachedEncryptionKey('tenant-a', 'orders'), undefined, 'rotated: the stale lease is not served');
    const v2 = await keys.encryptionKey('tenant-a', 'orders');
    assert.equal(v2.version, v1.version + 1, 'the next encryption uses the new version');
    assert.deepEqual(keyOf(keys.cachedEncryptionKey('tenant-a', 'orders')), keyOf(v2));
    assert.ok(await keys.decryptionKey('tenant-a', 'orders', v1.version), 'the old version still decrypts');
    assert.ok(keys.cachedDecryptionKey('tenant-a', 'orders', v1.version), 'and is cached');
    assert.equal(keys.cachedDecryptionKey('tenant-a', 'orders', 99), undefined, 'not held: ask decryptionKey');
    assert.equal(await keys.decryptionKey('tenant-a', 'orders', 99), undefined, 'unknown version: undefined');

    const e = await env.publish('tenant.revoked', 'tenant-a');
    await until(() => keys.client.eventSeq.applied >= e.seq, 1000, 'the revocation');
    assert.equal(v2.handle.info().destroyed, true, 'keys wiped');
    assert.equal(keys.cachedEncryptionKey('tenant-a', 'orders'), undefined, 'revoked: nothing from the cache');
    assert.equal(keys.cachedDecryptionKey('tenant-a', 'orders', v1.version), undefined);
    await assert.rejects(keys.encryptionKey('tenant-a', 'orders'), { code: 'tenant_revoked', status: 410 });
    await assert.rejects(keys.decryptionKey('tenant-a', 'orders', v1.version), { code: 'tenant_revoked' });
    assert.ok(keys.stats().revocationsApplied >= 1);
    await keys.close();
    assert.equal(keys.ready(), false, 'closed');
    assert.equal(keys.cachedEncryptionKey('tenant-b', 'orders'), undefined, 'closed: nothing from the cache');
  });
});
