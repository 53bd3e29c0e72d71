import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeBase64urlStrict, encodeBase64url } from '../../../common/src/format/base64url.ts';

describe('strict base64url', () => {
  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        assert.deepEqual(decodeBase64urlStrict(encodeBase64url(b)), Buffer.from(b));
      }),
    );
  });

  it('accepts exactly one encoding per byte string', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'ABCDQRwxyz019-_'), maxLength: 40 }), (s) => {
        let decoded: Buffer;
        try {
          decoded = decodeBase64urlStrict(s);
        } catch {
          return;
        }
        assert.equal(encodeBase64url(decoded), s);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses padding, the standard alphabet, white space and impossible lengths', () => {
    for (const bad of ['AA==', 'AB+/', 'AB C', 'A', 'AAAAA', 'AB', 'AAB', 'Zg=', ' Zg']) {
      assert.throws(
        () => decodeBase64urlStrict(bad),
        (e: Error & { code?: string }) => e.code === 'format_encoding',
        bad,
      );
    }
    assert.deepEqual(decodeBase64urlStrict('Zg'), Buffer.from('f'));
    assert.deepEqual(decodeBase64urlStrict('AAA'), Buffer.alloc(2));
  });
});
