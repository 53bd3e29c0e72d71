/** The locked-memory LRU: every way out destroys the handle; tenant prefixes do not bleed into each other. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyCache } from '../../../core/src/tenants/key-cache.ts';
import { defaultCrypto, type KeyHandle } from '../../../native/index.ts';

const crypto = defaultCrypto();
const destroyed = (h: KeyHandle) => h.info().destroyed;

describe('KeyCache', () => {
  it('evicts the least recently used past max, destroying it', () => {
    const c = new KeyCache(2);
    const [a, b, d] = [crypto.generateKey(), crypto.generateKey(), crypto.generateKey()];
    c.set('t\0a', a);
    c.set('t\0b', b);
    assert.equal(c.get('t\0a'), a); // a is now the most recent
    c.set('t\0d', d);
    assert.deepEqual([destroyed(a), destroyed(b), destroyed(d)], [false, true, false]);
    assert.equal(c.get('t\0b'), undefined);
    c.clear();
    assert.deepEqual([destroyed(a), destroyed(d), c.size], [true, true, 0]);
  });

  it('replacing, deleting and deleting by tenant prefix destroy exactly the handles concerned', () => {
    const c = new KeyCache(10);
    const keys = Array.from({ length: 4 }, () => crypto.generateKey());
    const [k0, k1, k2, k3] = keys as [KeyHandle, KeyHandle, KeyHandle, KeyHandle];
    c.set('a\0x', k0);
    c.set('a\0x', k1);
    c.set('ab\0x', k2);
    c.set('a\0y', k3);
    assert.equal(destroyed(k0), true);
    assert.equal(c.deletePrefix('a\0'), 2);
    assert.deepEqual([destroyed(k1), destroyed(k3), destroyed(k2)], [true, true, false]);
    c.delete('ab\0x');
    assert.equal(destroyed(k2), true);
    assert.throws(() => new KeyCache(0), RangeError);
  });
});
