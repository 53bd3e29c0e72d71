/**
 * Key wrapping on both backends: wrap(target) is a sealed blob of the target's
 * 32 bytes (60 bytes, backend.ts), and unwrap refuses anything else with
 * `decryption_failed`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WRAPPED_KEY_BYTES } from '../../native/index.ts';
import { BACKENDS, cryptoOf, flipBit, pattern, skipFor, throwsCode } from './backends.ts';

const empty = new Uint8Array(0);
const aad = Buffer.from('tenant-7/key-3/v2');

for (const name of BACKENDS) {
  describe(`wrap/unwrap [${name}]`, { skip: skipFor(name) }, () => {
    it('the unwrapped key opens what the original sealed, and the reverse', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      const dk = crypto.generateKey();
      const wrapped = kek.wrap(dk, aad);
      assert.equal(wrapped.length, WRAPPED_KEY_BYTES);
      assert.equal(WRAPPED_KEY_BYTES, 60);
      const back = kek.unwrap(wrapped, aad);
      assert.notEqual(back.info().id, dk.info().id, 'unwrap makes a new handle');
      assert.equal(back.info().encryptions, 0);
      assert.deepEqual(back.open(dk.seal(pattern(50), empty), empty), pattern(50));
      assert.deepEqual(dk.open(back.seal(pattern(51), aad), aad), pattern(51));
      assert.deepEqual(kek.unwrap(wrapped, aad).open(dk.seal(empty, empty), empty), Buffer.alloc(0), 'unwrap twice');
      assert.equal(dk.info().destroyed, false, 'wrapping leaves the target alive');
    });

    it('two wraps of the same key differ (random nonces) and both unwrap', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      const dk = crypto.generateKey();
      const w1 = kek.wrap(dk, empty);
      const w2 = kek.wrap(dk, empty);
      assert.notDeepEqual(w1, w2);
      const blob = dk.seal(pattern(8), empty);
      assert.deepEqual(kek.unwrap(w1, empty).open(blob, empty), pattern(8));
      assert.deepEqual(kek.unwrap(w2, empty).open(blob, empty), pattern(8));
    });

    it('format: a wrapped key is seal(key bytes, aad) under the kek', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      const bytes = pattern(32, 5);
      // seal() of raw bytes unwraps into the same key as importKey(bytes)…
      const sealedBytes = kek.seal(bytes, aad);
      const fromSeal = kek.unwrap(sealedBytes, aad);
      const imported = crypto.importKey(Buffer.from(bytes));
      assert.deepEqual(fromSeal.open(imported.seal(pattern(9), empty), empty), pattern(9));
      // …and open() of a wrapped key gives its bytes back (test-only use of the format).
      assert.deepEqual(kek.open(kek.wrap(imported, aad), aad), bytes);
    });

    it('a wrong aad fails with decryption_failed', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      const wrapped = kek.wrap(crypto.generateKey(), aad);
      throwsCode(() => kek.unwrap(wrapped, empty), 'decryption_failed', 'empty aad');
      throwsCode(() => kek.unwrap(wrapped, aad.subarray(1)), 'decryption_failed', 'shorter aad');
      for (let i = 0; i < aad.length; i++) {
        throwsCode(() => kek.unwrap(wrapped, flipBit(aad, i, i % 8)), 'decryption_failed', `aad byte ${i}`);
      }
    });

    it('a wrong kek fails with decryption_failed', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.importKey(pattern(32, 1));
      const wrapped = kek.wrap(crypto.generateKey(), aad);
      throwsCode(() => crypto.importKey(pattern(32, 2)).unwrap(wrapped, aad), 'decryption_failed', 'other kek');
      throwsCode(() => crypto.generateKey().unwrap(wrapped, aad), 'decryption_failed', 'random kek');
      const target = crypto.generateKey();
      throwsCode(() => target.unwrap(kek.wrap(target, aad), aad), 'decryption_failed', 'target as its own kek');
    });

    it('flipping any bit of the wrapped key fails with decryption_failed', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      const wrapped = kek.wrap(crypto.generateKey(), aad);
      for (let i = 0; i < wrapped.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          throwsCode(() => kek.unwrap(flipBit(wrapped, i, bit), aad), 'decryption_failed', `byte ${i} bit ${bit}`);
        }
      }
      kek.unwrap(wrapped, aad);
    });

    it('a wrapped key of the wrong length fails with decryption_failed', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      const wrapped = kek.wrap(crypto.generateKey(), aad);
      for (let len = 0; len < wrapped.length; len++) {
        throwsCode(() => kek.unwrap(wrapped.subarray(0, len), aad), 'decryption_failed', `${len} bytes`);
      }
      throwsCode(() => kek.unwrap(Buffer.concat([wrapped, Buffer.alloc(1)]), aad), 'decryption_failed', '61 bytes');
      // Authentic blobs of other lengths are not keys either.
      for (const n of [0, 16, 31, 33, 64]) {
        throwsCode(() => kek.unwrap(kek.seal(pattern(n), aad), aad), 'decryption_failed', `sealed ${n}-byte plaintext`);
      }
    });

    it('wrapping under or of a destroyed key throws key_destroyed', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      const dk = crypto.generateKey();
      const wrapped = kek.wrap(dk, aad);
      dk.destroy();
      throwsCode(() => kek.wrap(dk, aad), 'key_destroyed', 'destroyed target');
      const back = kek.unwrap(wrapped, aad);
      assert.equal(back.info().destroyed, false, 'destroying the original does not touch an unwrapped copy');
      back.seal(empty, empty);
      kek.destroy();
      throwsCode(() => kek.unwrap(wrapped, aad), 'key_destroyed', 'destroyed kek');
    });
  });
}
