/**
 * One unseal attempt on both backends: shares submitted one at a time in any
 * order, duplicates and bad shares refused without being counted, and the
 * held shares wiped by reset() and takeShares().
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combineShares } from '../../../../common/src/crypto/shamir.ts';
import type { Share } from '../../../../common/src/format/share.ts';
import { openSealedShare } from '../../../../core/src/seal/shamir/open-share.ts';
import { UnsealProgress } from '../../../../core/src/seal/shamir/unseal-progress.ts';
import { type ExpectedCeremony, verifySignedShare } from '../../../../core/src/seal/shamir/verify-share.ts';
import type { Crypto } from '../../../../native/index.ts';
import { BACKENDS, cryptoOf, skipFor } from '../../../native/backends.ts';
import { type Ceremony, ceremony, code, error, sameKey, shuffled } from './helpers.ts';

function textsOf(cer: Ceremony): string[] {
  return cer.result.shares.map((s, i) => openSealedShare(s.payload, cer.holders[i]?.secretKey as Buffer));
}

/** A progress whose verifier remembers every share it hands out, to check the wiping. */
function watched(expected: ExpectedCeremony): { p: UnsealProgress; handed: Share[] } {
  const handed: Share[] = [];
  const p = new UnsealProgress(expected, (t, e) => {
    const s = verifySignedShare(t, e);
    handed.push(s);
    return s;
  });
  return { p, handed };
}

const zero = (b: Uint8Array) => b.every((x) => x === 0);

for (const name of BACKENDS) {
  describe(`UnsealProgress on the ${name} backend`, { skip: skipFor(name) }, () => {
    const c = (): Crypto => cryptoOf(name);

    it('counts 3 of 5 shares submitted in any order, then rebuilds the MasterKey', () => {
      const cer = ceremony(c(), 3, 5);
      const texts = textsOf(cer);
      for (let seed = 1; seed <= 6; seed++) {
        const p = new UnsealProgress(cer.expected);
        const picked = shuffled(texts, seed).slice(0, 3);
        assert.deepEqual(p.submit(picked[0] as string), { received: 1, threshold: 3, complete: false });
        assert.deepEqual(p.submit(picked[1] as string), { received: 2, threshold: 3, complete: false });
        assert.deepEqual(p.submit(picked[2] as string), { received: 3, threshold: 3, complete: true });
        const key = combineShares(c(), p.takeShares());
        assert.ok(sameKey(cer.key, key), `seed ${seed}`);
        assert.deepEqual(p.status(), { received: 0, threshold: 3, complete: false });
      }
    });

    it('accepts more than M shares', () => {
      const cer = ceremony(c(), 2, 4);
      const p = new UnsealProgress(cer.expected);
      for (const t of shuffled(textsOf(cer), 5)) p.submit(t);
      assert.deepEqual(p.status(), { received: 4, threshold: 2, complete: true });
      const shares = p.takeShares();
      assert.deepEqual(
        shares.map((s) => s.index),
        [1, 2, 3, 4],
      );
      assert.ok(sameKey(cer.key, combineShares(c(), shares)));
    });

    it('refuses a duplicate index without counting it, and bad shares without counting them', () => {
      const cer = ceremony(c(), 3, 5);
      const texts = textsOf(cer);
      const { p, handed } = watched(cer.expected);
      p.submit(texts[1] as string);
      const dup = error(() => p.submit(`  ${texts[1]}\n`));
      assert.equal(dup.code, 'duplicate_share');
      assert.match(dup.message, /index 2 was already submitted/);
      assert.ok(zero((handed[1] as Share).y), 'the refused duplicate is wiped');
      assert.ok(!zero((handed[0] as Share).y), 'the held share is kept');
      const other = ceremony(c(), 3, 5, { plain: true });
      assert.equal(
        code(() => p.submit(other.result.shares[0]?.payload as string)),
        'foreign_share',
      );
      assert.equal(
        code(() => p.submit('okcm-signed-share:1:garbage')),
        'invalid_share',
      );
      assert.equal(
        code(() => p.submit(cer.result.shares[0]?.payload as string)),
        'invalid_share',
        'a sealed payload is not a share',
      );
      assert.deepEqual(p.status(), { received: 1, threshold: 3, complete: false });
      p.submit(texts[4] as string);
      assert.equal(p.submit(texts[0] as string).complete, true);
      assert.ok(sameKey(cer.key, combineShares(c(), p.takeShares())));
    });

    it('takeShares with fewer than M is not_enough_shares and keeps them; so is combining two', () => {
      const cer = ceremony(c(), 3, 5);
      const texts = textsOf(cer);
      const p = new UnsealProgress(cer.expected);
      p.submit(texts[3] as string);
      p.submit(texts[0] as string);
      assert.equal(
        code(() => p.takeShares()),
        'not_enough_shares',
      );
      assert.equal(p.status().received, 2);
      const two = [texts[3], texts[0]].map((t) => verifySignedShare(t as string, cer.expected));
      assert.equal(
        code(() => combineShares(c(), two)),
        'not_enough_shares',
      );
      p.submit(texts[2] as string);
      assert.ok(sameKey(cer.key, combineShares(c(), p.takeShares())));
    });

    it('reset() wipes and forgets the held shares', () => {
      const cer = ceremony(c(), 3, 5);
      const texts = textsOf(cer);
      const { p, handed } = watched(cer.expected);
      p.submit(texts[0] as string);
      p.submit(texts[2] as string);
      assert.ok(handed.every((s) => !zero(s.y)));
      p.reset();
      assert.equal(handed.length, 2);
      assert.ok(
        handed.every((s) => zero(s.y) && zero(s.kcv)),
        'y and kcv zero-filled',
      );
      assert.deepEqual(p.status(), { received: 0, threshold: 3, complete: false });
      p.submit(texts[0] as string); // the same index is welcome again after a reset
      assert.equal(p.status().received, 1);
      p.reset();
      p.reset();
    });

    it('takeShares() hands out copies and wipes the internal ones', () => {
      const cer = ceremony(c(), 2, 3);
      const texts = textsOf(cer);
      const { p, handed } = watched(cer.expected);
      p.submit(texts[2] as string);
      p.submit(texts[1] as string);
      const taken = p.takeShares();
      assert.ok(
        handed.every((s) => zero(s.y)),
        'internal copies wiped',
      );
      assert.ok(
        taken.every((s) => !zero(s.y)),
        'the copies are intact',
      );
      assert.ok(sameKey(cer.key, combineShares(c(), taken)));
    });
  });
}

describe('UnsealProgress construction', () => {
  it('refuses a malformed expectation', () => {
    const cer = ceremony(cryptoOf('node'), 2, 3);
    assert.equal(
      code(() => new UnsealProgress({ ...cer.expected, ceremonyPublicKey: Buffer.alloc(8) })),
      'invalid_shamir_parameters',
    );
    assert.equal(
      code(() => new UnsealProgress({ ...cer.expected, threshold: 4 })),
      'invalid_shamir_parameters',
    );
  });

  it('keeps its own copy of the expectation', () => {
    const cer = ceremony(cryptoOf('node'), 2, 3);
    const expected = { ...cer.expected, splitId: Buffer.from(cer.expected.splitId) };
    const p = new UnsealProgress(expected);
    expected.splitId.fill(0);
    assert.equal(p.submit(textsOf(cer)[0] as string).received, 1);
  });
});
