/**
 * Key versions at the edge, against a real edge API (mTLS, SQLite store):
 * a request needing several versions keeps the keys it already holds while
 * the next is fetched; forged versions cost no Core round trip beyond the
 * first; the version list stays within the edge API's limit of 64; an answer
 * the edge cannot use counts as an outage (cache serves, then 503).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encryptFields } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { openItems } from '../../../gateway/src/api/open-items.ts';
import { CoreGatewayKeys } from '../../../gateway/src/core-gateway-keys.ts';
import { MAX_VERSIONS_ASKED } from '../../../gateway/src/keys/core-edge-client.ts';
import { type EdgeEnv, makeEdgeEnv } from '../../core/edge/edge-fixtures.ts';

describe('edge key versions', () => {
  let env: EdgeEnv;
  const open: CoreGatewayKeys[] = [];
  const gatewayKeys = (logs: string[] = []) => {
    const k = new CoreGatewayKeys({
      url: env.server.url,
      tls: env.clientTls(env.pki.edgeA),
      crypto: env.crypto,
      connectTimeoutMs: 500,
      requestTimeoutMs: 2000,
      log: (m) => logs.push(m),
    });
    open.push(k);
    return k;
  };
  const sealed = (service: string, v: number, text: string) =>
    encryptFields(
      env.source.handle('tenant-a', service, v),
      { tenant: 'tenant-a', keyId: service, keyVersion: v },
      [Buffer.from(text)],
      [Buffer.alloc(0)],
    )[0] as string;
  const texts = (r: Awaited<ReturnType<typeof openItems>>) => r.plaintexts.map((p) => p?.toString());

  before(async () => {
    env = await makeEdgeEnv();
  });
  after(async () => {
    for (const k of open) await k.close();
    await env.cleanup();
  });

  it('a batch naming the cached version and an uncached one opens both (warm cache)', async () => {
    const keys = gatewayKeys();
    await keys.encryptionKey('tenant-a', 'orders'); // caches the active version only
    const r = await openItems(keys, 'tenant-a', 'orders', [
      { ciphertext: sealed('orders', 2, 'new') },
      { ciphertext: sealed('orders', 1, 'old') },
    ]);
    assert.deepEqual(texts(r), ['new', 'old']);
  });

  it('a batch of two uncached old versions opens both on a cold cache (fetches are serialised per service)', async () => {
    env.source.add('tenant-a', 'rot', 3);
    const keys = gatewayKeys();
    const r = await openItems(keys, 'tenant-a', 'rot', [
      { ciphertext: sealed('rot', 1, 'v1') },
      { ciphertext: sealed('rot', 2, 'v2') },
    ]);
    assert.deepEqual(texts(r), ['v1', 'v2']);
  });

  it('forged versions cost one Core request once, not one per version per request, and break no held key', async () => {
    const keys = gatewayKeys();
    const held = await keys.encryptionKey('tenant-a', 'orders');
    const junk = env.crypto.generateKey();
    const forged = (v: number) =>
      encryptFields(
        junk,
        { tenant: 'tenant-a', keyId: 'orders', keyVersion: v },
        [Buffer.from('x')],
        [Buffer.alloc(0)],
      );
    try {
      // Versions above the active one: at most one Core request a second for the service.
      const future = Array.from({ length: 200 }, (_, i) => ({ ciphertext: forged(1000 + i)[0] as string }));
      let before = env.source.calls;
      let r = await openItems(keys, 'tenant-a', 'orders', future);
      assert.ok(r.errors.every((e) => e !== undefined));
      assert.ok(env.source.calls - before <= 1, `${env.source.calls - before} Core requests for 200 forged versions`);
      before = env.source.calls;
      await openItems(keys, 'tenant-a', 'orders', future);
      assert.equal(env.source.calls - before, 0, 'the same request again costs nothing within the second');
      // A version below the active one that the Core does not hand out (revoked) is asked for once.
      env.source.add('tenant-a', 'holes', 3);
      env.source.tenants.get('tenant-a')?.services.get('holes')?.versions.delete(2);
      const gone = encryptFields(
        junk,
        { tenant: 'tenant-a', keyId: 'holes', keyVersion: 2 },
        [Buffer.from('x')],
        [Buffer.alloc(0)],
      )[0] as string;
      await keys.encryptionKey('tenant-a', 'holes');
      before = env.source.calls;
      for (let i = 0; i < 5; i++) {
        r = await openItems(keys, 'tenant-a', 'holes', [{ ciphertext: gone }]);
        assert.notEqual(r.errors[0], undefined);
      }
      assert.equal(env.source.calls - before, 1, 'one Core request for the missing version, then none');
      assert.equal(held.handle.info().destroyed, false, 'the encryption key in use was not wiped by the churn');
    } finally {
      junk.destroy();
    }
  });

  it(`never names more than ${MAX_VERSIONS_ASKED} versions in a lease request (a service with 70 versions)`, async () => {
    env.source.add('tenant-a', 'big', 70);
    const keys = gatewayKeys();
    const asked: number[] = [];
    const orig = env.source.leaseSet.bind(env.source);
    env.source.leaseSet = async (t, s, w) => {
      asked.push(w.length);
      return orig(t, s, w);
    };
    try {
      for (let v = 1; v <= 69; v++) {
        const r = await openItems(keys, 'tenant-a', 'big', [{ ciphertext: sealed('big', v, `v${v}`) }]);
        assert.equal(texts(r)[0], `v${v}`);
      }
    } finally {
      env.source.leaseSet = orig;
    }
    assert.ok(Math.max(...asked) <= MAX_VERSIONS_ASKED, `asked ${Math.max(...asked)}`);
  });

  it("stops at the lease's encryption budget: asks the Core again, then refuses with key_usage_exhausted", async () => {
    const orig = env.source.leaseSet.bind(env.source);
    let budget = 2;
    env.source.leaseSet = async (t, s, w) => ({ ...(await orig(t, s, w)), activeBudgetLeft: budget });
    try {
      const keys = gatewayKeys();
      const before = env.source.calls;
      for (let i = 0; i < 2; i++) {
        const k = await keys.encryptionKey('tenant-a', 'orders');
        keys.recordEncryptions('tenant-a', 'orders', k.version, 1);
      }
      assert.equal(env.source.calls - before, 1, 'within the budget: the cached lease');
      assert.equal(keys.cachedEncryptionKey('tenant-a', 'orders'), undefined, 'budget used up: not from the cache');
      budget = 0; // the Core has nothing left either (it would have rotated at 90 %)
      await assert.rejects(keys.encryptionKey('tenant-a', 'orders'), (e: unknown) => {
        assert.ok(e instanceof KcmError);
        assert.equal(e.code, 'key_usage_exhausted');
        assert.equal(e.status, 503);
        return true;
      });
      assert.equal(env.source.calls - before, 2, 'the exhausted lease was asked for again first');
      budget = 5;
      assert.equal((await keys.encryptionKey('tenant-a', 'orders')).version, 2, 'a fresh budget serves again');
    } finally {
      env.source.leaseSet = orig;
    }
  });

  it('a lease answer the edge cannot use is an outage: 503 with no detail for the caller, the detail logged', async () => {
    const logs: string[] = [];
    const keys = gatewayKeys(logs);
    const orig = env.source.leaseSet.bind(env.source);
    env.source.leaseSet = async (t, s, w) => ({ ...(await orig(t, s, w)), activeBudgetLeft: -1 });
    try {
      await assert.rejects(keys.encryptionKey('tenant-a', 'orders'), (e: unknown) => {
        assert.ok(e instanceof KcmError);
        assert.equal(e.code, 'core_unavailable');
        assert.equal(e.status, 503);
        assert.doesNotMatch(e.message, /activeBudgetLeft|edge API/);
        return true;
      });
      assert.ok(logs.some((l) => l.includes('unusable')));
    } finally {
      env.source.leaseSet = orig;
    }
  });
});
