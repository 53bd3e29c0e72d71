/** Splicing new JSON values into a body, and the byte-level JSON string literal of a decrypted value. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { spliceJson } from '../../../gateway/src/pipeline/json-splice.ts';
import { jsonStringBytes } from '../../../native/index.ts';

describe('JSON splice', () => {
  it('replaces spans with strings and with bytes, in any order, copying every other byte', () => {
    const body = Buffer.from('{"a":"x","b":[1, 2],"c":null}');
    const out = spliceJson(body, [
      { start: 24, end: 28, text: Buffer.from('"é"') },
      { start: 5, end: 8, text: '"okcm:1:abc"' },
      { start: 13, end: 19, text: new Uint8Array([0x31, 0x2e, 0x35, 0x30]) },
    ]);
    assert.equal(out.toString('utf8'), '{"a":"okcm:1:abc","b":1.50,"c":"é"}');
    assert.throws(
      () =>
        spliceJson(body, [
          { start: 5, end: 9, text: '1' },
          { start: 8, end: 10, text: '2' },
        ]),
      RangeError,
    );
  });
});

describe('jsonStringBytes', () => {
  it('writes what JSON.stringify writes for every well-formed string', () => {
    const unit = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\x00', '\x1f', '\x7f') },
      { weight: 3, arbitrary: fc.constantFrom('a', 'é', '\u2028', '\u2029', '\ufffd', '😀', '\uffff') },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 1 }) },
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (s) => {
        const out = jsonStringBytes(Buffer.from(s, 'utf8'));
        assert.equal(out.toString('utf8'), JSON.stringify(s));
      }),
      { numRuns: 2000 },
    );
    for (let c = 0; c < 0x80; c++) {
      const s = String.fromCharCode(c);
      assert.equal(jsonStringBytes(Buffer.from(s)).toString('latin1'), JSON.stringify(s), `char 0x${c.toString(16)}`);
    }
    assert.equal(jsonStringBytes(Buffer.alloc(0)).toString(), '""');
  });
});
