/** Wrapped-key blobs (SPEC.md §4): codec round trip, strict parsing, AAD binding on both backends. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import { KeyKind, type KeyRef } from '../../../common/src/format/key-ref.ts';
import { decodeWrappedKey, encodeWrappedKey, wrapAad } from '../../../common/src/format/wrapped-key.ts';
import { BACKENDS, cryptoOf, skipFor } from '../../native/backends.ts';

const master: KeyRef = { kind: KeyKind.master, tenant: '', keyId: 'cluster-1', version: 1 };
const ivk: KeyRef = { kind: KeyKind.ivk, tenant: '', keyId: 'eu-west', version: 4 };
const l2: KeyRef = { kind: KeyKind.tenant, tenant: 'acme', keyId: 'acme', version: 1 };

describe('wrapped-key codec', () => {
  it('round-trips and is canonical', () => {
    const idChar = fc.constantFrom(...'abcXYZ019-._~');
    fc.assert(
      fc.property(
        fc.string({ unit: idChar, minLength: 1, maxLength: 40 }),
        fc.string({ unit: idChar, minLength: 1, maxLength: 64 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.uint8Array({ minLength: 60, maxLength: 60 }),
        (tenant, keyId, version, sealed) => {
          const blob = { wrapping: ivk, wrapped: { kind: KeyKind.tenant, tenant, keyId, version } as KeyRef, sealed };
          const bytes = encodeWrappedKey(blob);
          const back = decodeWrappedKey(bytes);
          assert.deepEqual(back.wrapped, blob.wrapped);
          assert.deepEqual(back.wrapping, ivk);
          assert.deepEqual(encodeWrappedKey(back), bytes);
        },
      ),
    );
  });

  it('random and truncated input gives a typed error', () => {
    const good = encodeWrappedKey({ wrapping: master, wrapped: ivk, sealed: Buffer.alloc(60) });
    for (let n = 0; n < good.length; n++) {
      assert.throws(
        () => decodeWrappedKey(good.subarray(0, n)),
        (e) => e instanceof KcmError && e.code.startsWith('format_'),
      );
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        try {
          decodeWrappedKey(b);
        } catch (e) {
          assert.ok(e instanceof KcmError && e.code.startsWith('format_'));
        }
      }),
    );
  });

  it('enforces the KeyRef rules per kind', () => {
    const bad: KeyRef[] = [
      { kind: KeyKind.master, tenant: 'acme', keyId: 'c', version: 1 },
      { kind: KeyKind.tenant, tenant: '', keyId: 'c', version: 1 },
      { kind: KeyKind.service, tenant: 'a', keyId: '', version: 1 },
      { kind: KeyKind.data, tenant: 'a', keyId: 'x', version: 0 },
      { kind: KeyKind.data, tenant: 'a', keyId: '', version: 1 },
      { kind: 9 as KeyKind, tenant: 'a', keyId: 'x', version: 1 },
    ];
    for (const ref of bad)
      assert.throws(
        () => wrapAad(master, ref),
        (e) => e instanceof KcmError && e.code === 'format_header',
      );
  });
});

for (const name of BACKENDS) {
  describe(`key wrapping with SPEC AAD on the ${name} backend`, { skip: skipFor(name) }, () => {
    it('a wrapped key only unwraps under the names it was wrapped with', () => {
      const crypto = cryptoOf(name);
      const ivkKey = crypto.generateKey();
      const l2Key = crypto.generateKey();
      const blob = decodeWrappedKey(
        encodeWrappedKey({ wrapping: ivk, wrapped: l2, sealed: ivkKey.wrap(l2Key, wrapAad(ivk, l2)) }),
      );
      const back = ivkKey.unwrap(blob.sealed, wrapAad(blob.wrapping, blob.wrapped));
      const probe = back.seal(Buffer.from('x'), Buffer.alloc(0));
      assert.equal(l2Key.open(probe, Buffer.alloc(0)).toString(), 'x');
      const swapped = [
        wrapAad({ ...ivk, version: 5 }, l2),
        wrapAad(ivk, { ...l2, tenant: 'globex' }),
        wrapAad(ivk, { ...l2, version: 2 }),
        wrapAad(master, l2),
      ];
      for (const aad of swapped) assert.throws(() => ivkKey.unwrap(blob.sealed, aad), /decryption failed/);
    });
  });
}
