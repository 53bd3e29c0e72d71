/** responses.ts dataJson: the direct API's single-item answers, written without JSON.stringify, are its text byte for byte. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { dataJson } from '../../../gateway/src/pipeline/responses.ts';

describe('dataJson', () => {
  it('is JSON.stringify({ data: item }) for any flat item (property)', () => {
    const base64ish = fc.stringMatching(/^[A-Za-z0-9+/=_:.-]{0,40}$/);
    const value = fc.oneof(
      base64ish,
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.integer(),
      fc.double(),
      fc.constantFrom(undefined, null, true, 2 ** 53, -0, Number.NaN),
      fc.array(fc.integer(), { maxLength: 2 }),
    );
    const key = fc.oneof(
      fc.constantFrom('ciphertext', 'key_version', 'reference', 'plaintext', '0', '12'),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 5 }), (item) => {
        assert.equal(dataJson(item), JSON.stringify({ data: item }));
      }),
      { numRuns: 2000 },
    );
  });

  it('hands arrays, objects with toJSON and inherited members to JSON.stringify', () => {
    const proto = { inherited: 'x' };
    const child = Object.assign(Object.create(proto) as Record<string, unknown>, { a: '1' });
    const withToJson = { a: '1', toJSON: () => ({ b: 2 }) };
    for (const item of [['a', 'b'] as unknown as Record<string, unknown>, child, withToJson]) {
      assert.equal(dataJson(item), JSON.stringify({ data: item }));
    }
  });

  it('writes an envelope and a version as they are', () => {
    const item = { ciphertext: 'okcm:1:AQVi-_x', key_version: 3, reference: 'a"b\n' };
    assert.equal(dataJson(item), '{"data":{"ciphertext":"okcm:1:AQVi-_x","key_version":3,"reference":"a\\"b\\n"}}');
  });
});
