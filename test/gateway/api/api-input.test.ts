/** Direct API input decoding: standard padded base64 exactly as the documented pattern, whatever path decodes it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import { contextOf, decodeBase64 } from '../../../gateway/src/api/api-input.ts';

/** The documented grammar: groups of 4, optional final group with 1 or 2 '='. */
const PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function verdict(fn: () => Buffer): Buffer | string {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof KcmError, String(err));
    return err.code;
  }
}

describe('api input base64', () => {
  it('accepts exactly the pattern (canonical or not) and decodes to the same bytes', () => {
    const alphabet = fc.constantFrom(...'ABCDQRSTabcz0189+/=-_ .\n');
    const text = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
      fc.string({ unit: alphabet, maxLength: 12 }),
      // Valid pattern with non-zero unused bits in the last character ("QR==", "QRS=").
      fc
        .tuple(fc.uint8Array({ maxLength: 6 }), fc.constantFrom('QR==', 'QRT=', 'AB==', '////'))
        .map(([b, tail]) => Buffer.from(b.subarray(0, b.length - (b.length % 3))).toString('base64') + tail),
    );
    fc.assert(
      fc.property(text, (t) => {
        const got = verdict(() => decodeBase64(t, 'plaintext'));
        if (PATTERN.test(t)) assert.deepEqual(got, Buffer.from(t, 'base64'), t);
        else assert.equal(got, 'bad_request', t);
        const ctx = verdict(() => contextOf({ context: t } as never));
        if (PATTERN.test(t)) assert.deepEqual(ctx, Buffer.from(t, 'base64'), t);
        else assert.equal(ctx, 'invalid_context', t);
      }),
      { numRuns: 3000 },
    );
    assert.equal(
      verdict(() => decodeBase64(42, 'plaintext')),
      'bad_request',
    );
    assert.deepEqual(
      verdict(() => decodeBase64('', 'plaintext')),
      Buffer.alloc(0),
    );
    assert.deepEqual(
      verdict(() => decodeBase64('QR==', 'plaintext')),
      Buffer.from([0x41]),
      'non-canonical bits',
    );
  });
});
