/** Framed Shamir shares (SPEC.md §6) on both backends: subsets, checks, and every way a share set can be wrong. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combineShares, splitKey } from '../../../common/src/crypto/shamir.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { decodeShare, encodeShare, type Share, shareFromText, shareToText } from '../../../common/src/format/share.ts';
import type { Crypto } from '../../../native/index.ts';
import { code, sameKey } from '../../core/seal/shamir/helpers.ts';
import { BACKENDS, cryptoOf, skipFor, subsets } from '../../native/backends.ts';

for (const name of BACKENDS) {
  describe(`Shamir shares on the ${name} backend`, { skip: skipFor(name) }, () => {
    const c = (): Crypto => cryptoOf(name);

    for (const [m, n] of [
      [3, 5],
      [5, 9],
    ] as const) {
      it(`every ${m}-subset of a ${m}-of-${n} split rebuilds the key; every ${m - 1}-subset is refused`, () => {
        const key = c().generateKey();
        const shares = splitKey(key, m, n).map((s) => shareFromText(shareToText(s)));
        const full = subsets(shares, m);
        assert.equal(full.length, m === 3 ? 10 : 126);
        for (const set of full) {
          const rebuilt = combineShares(c(), set);
          assert.ok(sameKey(key, rebuilt), `subset ${set.map((s) => s.index)}`);
          rebuilt.destroy();
        }
        for (const set of subsets(shares, m - 1))
          assert.equal(
            code(() => combineShares(c(), set)),
            'not_enough_shares',
          );
      });
    }

    it('shares in any order, and more than M of them, rebuild the key', () => {
      const key = c().generateKey();
      const shares = splitKey(key, 3, 5);
      assert.ok(sameKey(key, combineShares(c(), [...shares].reverse())));
    });

    it('refuses duplicate, foreign, corrupted and mistyped shares with a clear code', () => {
      const key = c().generateKey();
      const shares = splitKey(key, 3, 5);
      const [a, b, s3] = shares as [Share, Share, Share];
      assert.equal(
        code(() => combineShares(c(), [a, b, a])),
        'duplicate_share',
      );
      const foreign = splitKey(c().generateKey(), 3, 5);
      assert.equal(
        code(() => combineShares(c(), [a, b, foreign[2] as Share])),
        'foreign_share',
      );
      const sameKeyOtherSplit = splitKey(key, 3, 5);
      assert.equal(
        code(() => combineShares(c(), [a, b, sameKeyOtherSplit[2] as Share])),
        'foreign_share',
      );
      // One bit of y flipped (setting a byte to a constant left it unchanged when it already held it: 1 in 256).
      const y = Buffer.from(s3.y);
      y[0] = (y[0] as number) ^ 1;
      const tampered = { ...s3, y };
      assert.equal(
        code(() => combineShares(c(), [a, b, tampered])),
        'share_mismatch',
      );
      assert.equal(
        code(() => combineShares(c(), [])),
        'not_enough_shares',
      );
      const bytes = encodeShare(s3);
      for (let i = 0; i < bytes.length; i++) {
        const bad = Buffer.from(bytes);
        bad[i] = (bad[i] as number) ^ 0x20;
        assert.equal(
          code(() => decodeShare(bad)),
          'invalid_share',
          `byte ${i}`,
        );
      }
      assert.equal(
        code(() => shareFromText('okcm-share:1:!!')),
        'invalid_share',
      );
      assert.equal(
        code(() => shareFromText('hello')),
        'invalid_share',
      );
      assert.equal(
        code(() => decodeShare(bytes.subarray(1))),
        'invalid_share',
      );
    });

    it('messages never contain share or key material', () => {
      const shares = splitKey(c().generateKey(), 2, 3);
      const text = shareToText(shares[0] as Share);
      for (const bad of [text.slice(0, -2), `${text}A`, text.replace('okcm-share', 'okcm-shart')]) {
        try {
          shareFromText(bad);
          assert.fail('accepted');
        } catch (e) {
          assert.ok(e instanceof KcmError);
          assert.ok(!e.message.includes(text.slice(13, 30)), e.message);
        }
      }
    });
  });
}
