/** The signed share codec (SPEC.md §9.1): sizes, round trips, strict text form. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SHARE_BYTES } from '../../../../common/src/format/share.ts';
import {
  decodeSignedShare,
  encodeSignedShare,
  encodeSignedShareHeader,
  MAX_SIGNED_SHARE_INPUT_CHARS,
  SIGNED_HEADER_BYTES,
  SIGNED_SHARE_BYTES,
  SIGNED_SHARE_TEXT_CHARS,
  SIGNED_SHARE_TEXT_PREFIX,
  signedShareFromText,
  signedShareToText,
} from '../../../../core/src/seal/shamir/signed-share.ts';
import { cryptoFor } from '../../../../native/index.ts';
import { ceremony, code, error } from './helpers.ts';

const plain = ceremony(cryptoFor('node'), 2, 3, { plain: true });
const text = plain.result.shares[0]?.payload as string;

describe('signed share codec', () => {
  it('has the sizes SPEC.md §9.1 states', () => {
    assert.equal(SIGNED_HEADER_BYTES, 71);
    assert.equal(SHARE_BYTES, 67);
    assert.equal(SIGNED_SHARE_BYTES, 202);
    assert.equal(SIGNED_SHARE_TEXT_PREFIX, 'okcm-signed-share:1:');
    assert.equal(SIGNED_SHARE_TEXT_CHARS, 290);
    assert.equal(text.length, 290);
  });

  it('parse then serialise gives the input back', () => {
    const bytes = signedShareFromText(text);
    const p = decodeSignedShare(bytes);
    assert.equal(p.header.index, 1);
    assert.equal(p.header.threshold, 2);
    assert.equal(p.header.shareCount, 3);
    assert.deepEqual(Buffer.from(p.header.splitId), plain.result.splitId);
    assert.deepEqual(Buffer.from(p.header.clusterFingerprint), plain.result.clusterFingerprint);
    const again = encodeSignedShare(encodeSignedShareHeader(p.header), p.shareBytes, p.signature);
    assert.equal(signedShareToText(again), text);
  });

  it('accepts surrounding white space only', () => {
    assert.deepEqual(signedShareFromText(`  ${text}\r\n`), signedShareFromText(text));
    assert.equal(
      code(() => signedShareFromText(`${text.slice(0, 100)} ${text.slice(100)}`)),
      'invalid_share',
    );
  });

  it('refuses other text forms with a hint', () => {
    const cases: [unknown, RegExp][] = [
      [42, /must be a string/],
      ['x'.repeat(MAX_SIGNED_SHARE_INPUT_CHARS + 1), /too long/],
      [`okcm-share:1:${'A'.repeat(90)}`, /unsigned share is not accepted/],
      ['{"format":"okcm-sealed-share/1"}', /sealed payload/],
      [text.replace(':1:', ':2:'), /unsupported signed share format version/],
      [`okcm:1:${text.slice(20)}`, /must start with okcm-signed-share:1:/],
      [text.slice(0, -1), /290 characters/],
      [`${text}A`, /290 characters/],
      [`${text.slice(0, -1)}*`, /canonical base64url/],
      [`${text.slice(0, -1)}=`, /canonical base64url/],
    ];
    for (const [input, why] of cases) {
      const e = error(() => signedShareFromText(input));
      assert.equal(e.code, 'invalid_share');
      assert.match(e.message, why);
    }
    // 202 = 3·67 + 1: the last character carries 4 unused low bits, which must be zero.
    const last = text.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const nonCanonical = `${text.slice(0, -1)}${alphabet[alphabet.indexOf(last) ^ 1]}`;
    assert.match(error(() => signedShareFromText(nonCanonical)).message, /canonical base64url/);
  });

  it('refuses bad structure: magic, version, M, N, index, length', () => {
    const good = signedShareFromText(text);
    const at = (i: number, v: number) => {
      const b = Buffer.from(good);
      b[i] = v;
      return b;
    };
    const cases: [Buffer, RegExp][] = [
      [at(0, 0x78), /not a signed share/],
      [at(3, 2), /format 2 not supported/],
      [at(20, 1), /threshold outside/],
      [at(21, 1), /share count outside/],
      [at(22, 0), /index outside/],
      [at(22, 4), /index outside/],
      [good.subarray(0, 201), /202 bytes/],
    ];
    for (const [bytes, why] of cases) {
      const e = error(() => decodeSignedShare(bytes));
      assert.equal(e.code, 'invalid_share');
      assert.match(e.message, why);
    }
  });

  it('random input never crashes the parser: invalid_share or a structurally valid share', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        assert.equal(
          code(() => signedShareFromText(s)),
          'invalid_share',
        );
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 202, maxLength: 202 }), (b) => {
        const c = code(() => decodeSignedShare(signedShareFromText(signedShareToText(b))));
        assert.ok(c === 'invalid_share' || c === 'no error');
      }),
    );
  });
});
