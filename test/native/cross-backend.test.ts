/**
 * The two backends are byte-compatible (native/ts/backend.ts): with the same
 * imported key bytes, what one seals, wraps, batches or splits, the other
 * opens, unwraps or combines. Runs only when the native module loads (and
 * fails under CI=true when it does not).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackendName, Crypto, KeyHandle } from '../../native/index.ts';
import { cryptoOf, pattern, skipFor } from './backends.ts';

const aad = Buffer.from('cross');
const pairs: [BackendName, BackendName][] = [
  ['native', 'node'],
  ['node', 'native'],
];

/** The same key bytes imported into both backends. */
function twin(seed: number): { from: (c: Crypto) => KeyHandle } {
  return { from: (c) => c.importKey(pattern(32, seed)) };
}

describe('cross-backend compatibility', { skip: skipFor('native') }, () => {
  for (const [a, b] of pairs) {
    describe(`${a} → ${b}`, () => {
      it('sealed blobs and batches open on the other side', () => {
        const [ca, cb] = [cryptoOf(a), cryptoOf(b)];
        const k = twin(1);
        const [ka, kb] = [k.from(ca), k.from(cb)];
        for (const n of [0, 1, 16, 1000]) assert.deepEqual(kb.open(ka.seal(pattern(n), aad), aad), pattern(n));
        const pts = [pattern(3), pattern(0), pattern(77)];
        const aads = [aad, aad, Buffer.alloc(0)];
        assert.deepEqual(kb.openBatch(ka.sealBatch(pts, aads), aads), pts);
        assert.throws(() => kb.open(ka.seal(pattern(5), aad), Buffer.alloc(0)), { code: 'decryption_failed' });
      });

      it('wrapped keys unwrap on the other side', () => {
        const [ca, cb] = [cryptoOf(a), cryptoOf(b)];
        const kek = twin(2);
        const dk = twin(3);
        const wrapped = kek.from(ca).wrap(dk.from(ca), aad);
        const unwrapped = kek.from(cb).unwrap(wrapped, aad);
        assert.deepEqual(unwrapped.open(dk.from(ca).seal(pattern(9), aad), aad), pattern(9));
        assert.deepEqual(dk.from(ca).open(unwrapped.seal(pattern(10), aad), aad), pattern(10));
      });

      it('data-key batches cross over, including mixed with the other side’s batches', () => {
        const [ca, cb] = [cryptoOf(a), cryptoOf(b)];
        const kek = twin(4);
        const [ka, kb] = [kek.from(ca), kek.from(cb)];
        const pts = [pattern(1), pattern(2), pattern(300)];
        const aads = [aad, aad, aad];
        const fromA = ka.dataKeySealBatch(aad, pts, aads);
        const fromB = kb.dataKeySealBatch(aad, pts, aads);
        const opened = kb.dataKeyOpenBatch(
          [fromA.wrappedKey, fromB.wrappedKey, fromA.wrappedKey, fromA.wrappedKey],
          [aad, aad, aad, aad],
          [fromA.sealed[0], fromB.sealed[1], fromA.sealed[2], fromA.sealed[1]] as Buffer[],
          [aad, aad, aad, aad],
        );
        assert.deepEqual(opened, [pts[0], pts[1], pts[2], pts[1]]);
      });

      it('shares split on one side combine on the other', () => {
        const [ca, cb] = [cryptoOf(a), cryptoOf(b)];
        const key = twin(5).from(ca);
        const blob = key.seal(pattern(48), aad);
        const shares = key.splitRaw(3, 5);
        for (const subset of [shares.slice(0, 3), shares.slice(2), [shares[4], shares[0], shares[2]] as Buffer[]]) {
          assert.deepEqual(cb.combineRaw(subset).open(blob, aad), pattern(48));
        }
      });

      it('hmac and derive agree', () => {
        const [ca, cb] = [cryptoOf(a), cryptoOf(b)];
        const k = twin(6);
        const data = pattern(100);
        assert.deepEqual(k.from(ca).hmac(data), k.from(cb).hmac(data));
        const salt = pattern(16, 7);
        const info = Buffer.from('ctx');
        const da = k.from(ca).derive(salt, info);
        const db = k.from(cb).derive(salt, info);
        assert.deepEqual(db.open(da.seal(pattern(20), aad), aad), pattern(20));
        assert.deepEqual(da.hmac(data), db.hmac(data));
        assert.deepEqual(
          k.from(cb).derive(new Uint8Array(0), info).hmac(data),
          k.from(ca).derive(new Uint8Array(0), info).hmac(data),
        );
      });
    });
  }
});
