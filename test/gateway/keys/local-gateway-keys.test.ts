/**
 * LocalGatewayKeys' synchronous cache answers agree with its async ones:
 * the same key on a hit, undefined (ask the async method) before first use,
 * after a revocation, for an unknown version, and while not ready.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decryptionKeyOf, encryptionKeyOf, LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';

describe('LocalGatewayKeys cached answers', () => {
  it('answer a hit at once, and leave everything else to the async methods', async () => {
    const keys = new LocalGatewayKeys();
    assert.equal(keys.cachedEncryptionKey('t1', 'orders'), undefined, 'never used: no key yet');
    assert.ok(encryptionKeyOf(keys, 't1', 'orders') instanceof Promise, 'a miss goes to encryptionKey');
    const v1 = await keys.encryptionKey('t1', 'orders');
    assert.deepEqual(keys.cachedEncryptionKey('t1', 'orders'), v1);
    assert.deepEqual(encryptionKeyOf(keys, 't1', 'orders'), v1, 'a hit: no promise');
    assert.equal(keys.rotate('t1', 'orders'), 2);
    assert.equal(keys.cachedEncryptionKey('t1', 'orders')?.version, 2, 'a rotation switches the cached answer');
    assert.equal(keys.cachedDecryptionKey('t1', 'orders', 1), v1.handle);
    assert.equal(decryptionKeyOf(keys, 't1', 'orders', 1), v1.handle);
    for (const v of [0, 3, -1, 1.5])
      assert.equal(keys.cachedDecryptionKey('t1', 'orders', v), undefined, `version ${v}`);
    keys.revoke('t1', 'orders', 1);
    assert.equal(keys.cachedDecryptionKey('t1', 'orders', 1), undefined, 'revoked: not from the cache');
    assert.equal(await decryptionKeyOf(keys, 't1', 'orders', 1), undefined, 'and the async answer agrees');
    keys.setReady(false);
    assert.equal(keys.cachedEncryptionKey('t1', 'orders'), undefined, 'not ready: never from the cache');
    assert.equal(keys.cachedDecryptionKey('t1', 'orders', 2), undefined);
    await assert.rejects(Promise.resolve(encryptionKeyOf(keys, 't1', 'orders')), { code: 'not_ready' });
  });
});
