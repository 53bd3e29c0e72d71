/**
 * HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869) of KeyHandle on both backends,
 * checked against node:crypto's createHmac / hkdfSync as the reference.
 */
import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BACKENDS, cryptoOf, pattern, skipFor, throwsCode } from './backends.ts';

const empty = new Uint8Array(0);
const hkdf = (ikm: Buffer, salt: Uint8Array, info: Uint8Array): Buffer =>
  Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));

for (const name of BACKENDS) {
  describe(`kdf [${name}]`, { skip: skipFor(name) }, () => {
    it('hmac equals createHmac(sha256, key bytes)', () => {
      const crypto = cryptoOf(name);
      const keyBytes = pattern(32, 9);
      const key = crypto.importKey(Buffer.from(keyBytes));
      const ref = (data: Uint8Array) => createHmac('sha256', keyBytes).update(data).digest();
      assert.deepEqual(key.hmac(empty), ref(empty));
      assert.deepEqual(key.hmac(Buffer.from('Hi There')), ref(Buffer.from('Hi There')));
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2048 }), (data) => {
          assert.deepEqual(key.hmac(data), ref(data));
        }),
        { numRuns: 100 },
      );
      assert.equal(key.info().encryptions, 0, 'hmac is not an encryption');
    });

    it('hmac of another key differs', () => {
      const crypto = cryptoOf(name);
      const data = pattern(40);
      assert.notDeepEqual(crypto.importKey(pattern(32, 1)).hmac(data), crypto.importKey(pattern(32, 2)).hmac(data));
    });

    it('derive(salt, info) is HKDF-SHA-256 of the key bytes (sealed by one, opened by the other)', () => {
      const crypto = cryptoOf(name);
      const keyBytes = pattern(32, 10);
      const key = crypto.importKey(Buffer.from(keyBytes));
      for (const [salt, info] of [
        [pattern(16, 1), Buffer.from('tenant-9/context')],
        [pattern(32, 2), empty],
        [pattern(80, 3), pattern(200, 4)],
      ] as const) {
        const derived = key.derive(salt, info);
        const reference = crypto.importKey(hkdf(keyBytes, salt, info));
        assert.deepEqual(reference.open(derived.seal(pattern(33), info), info), pattern(33));
        assert.deepEqual(derived.open(reference.seal(pattern(34), salt), salt), pattern(34));
        assert.deepEqual(
          derived.hmac(salt),
          createHmac('sha256', hkdf(keyBytes, salt, info))
            .update(salt)
            .digest(),
        );
      }
    });

    it('RFC 5869 empty salt: equals hkdfSync with an empty salt and with HashLen zero bytes', () => {
      const crypto = cryptoOf(name);
      const keyBytes = pattern(32, 11);
      const key = crypto.importKey(Buffer.from(keyBytes));
      const info = Buffer.from('info');
      const derived = key.derive(empty, info);
      const ref = hkdf(keyBytes, empty, info);
      assert.deepEqual(ref, hkdf(keyBytes, Buffer.alloc(32), info), 'RFC 5869 §2.2: empty salt = HashLen zeros');
      assert.deepEqual(crypto.importKey(Buffer.from(ref)).open(derived.seal(pattern(7), empty), empty), pattern(7));
      assert.deepEqual(derived.hmac(info), createHmac('sha256', ref).update(info).digest());
      const zeroSalt = key.derive(Buffer.alloc(32), info);
      assert.deepEqual(zeroSalt.open(derived.seal(pattern(8), empty), empty), pattern(8));
      const both = key.derive(empty, empty);
      assert.deepEqual(
        both.hmac(empty),
        createHmac('sha256', hkdf(keyBytes, empty, empty))
          .update(empty)
          .digest(),
      );
    });

    it('derive is deterministic, and different salt or info gives a different key', () => {
      const crypto = cryptoOf(name);
      const key = crypto.generateKey();
      const salt = pattern(16);
      const a = key.derive(salt, Buffer.from('a'));
      const a2 = key.derive(salt, Buffer.from('a'));
      assert.notEqual(a.info().id, a2.info().id);
      const blob = a.seal(pattern(20), empty);
      assert.deepEqual(a2.open(blob, empty), pattern(20));
      throwsCode(() => key.derive(salt, Buffer.from('b')).open(blob, empty), 'decryption_failed', 'other info');
      throwsCode(
        () => key.derive(pattern(16, 2), Buffer.from('a')).open(blob, empty),
        'decryption_failed',
        'other salt',
      );
      throwsCode(() => key.open(blob, empty), 'decryption_failed', 'the parent key');
      assert.equal(key.info().destroyed, false);
      a.destroy();
      assert.deepEqual(a2.open(blob, empty), pattern(20), 'destroying a derived key leaves its twin');
      key.derive(salt, empty).seal(empty, empty);
    });

    it('non-byte arguments throw invalid_argument', () => {
      const key = cryptoOf(name).generateKey();
      const bad = 7 as unknown as Uint8Array;
      throwsCode(() => key.hmac(bad), 'invalid_argument', 'hmac data');
      throwsCode(() => key.derive(bad, empty), 'invalid_argument', 'derive salt');
      throwsCode(() => key.derive(empty, bad), 'invalid_argument', 'derive info');
    });
  });
}
