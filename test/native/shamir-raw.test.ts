/**
 * Raw Shamir points (KeyHandle.splitRaw / Crypto.combineRaw) on both backends:
 * every m-subset rebuilds the key, m−1 shares do not, and the parameter and
 * share checks throw their codes (Vault shamir tests: invalid-parameter table,
 * every k-of-n subset).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Crypto, KeyHandle } from '../../native/index.ts';
import { BACKENDS, cryptoOf, pattern, skipFor, subsets, throwsCode } from './backends.ts';

const aad = Buffer.from('master-key-check');

/** Asserts that the key rebuilt from `shares` opens `blob` (sealed by the original). */
function rebuildsKey(crypto: Crypto, shares: Buffer[], blob: Buffer, what: string): void {
  const key = crypto.combineRaw(shares);
  try {
    assert.deepEqual(key.open(blob, aad), pattern(48), what);
  } finally {
    key.destroy();
  }
}

function splitAndCheck(crypto: Crypto, original: KeyHandle, m: number, n: number): number {
  const shares = original.splitRaw(m, n);
  const blob = original.seal(pattern(48), aad);
  assert.equal(shares.length, n);
  shares.forEach((s, i) => {
    assert.equal(s.length, 33, `share ${i} length`);
    assert.equal(s[0], i + 1, `share ${i} x`);
  });
  let checked = 0;
  for (const subset of subsets(shares, m)) {
    const what = `x = ${subset.map((s) => s[0]).join(',')}`;
    rebuildsKey(crypto, subset, blob, what);
    rebuildsKey(crypto, [...subset].reverse(), blob, `${what} reversed`);
    checked++;
  }
  rebuildsKey(crypto, shares, blob, `all ${n} shares`);
  for (const subset of subsets(shares, m - 1)) {
    if (subset.length < 2) break;
    const key = crypto.combineRaw(subset);
    throwsCode(() => key.open(blob, aad), 'decryption_failed', `${m - 1} shares x = ${subset.map((s) => s[0])}`);
    key.destroy();
  }
  return checked;
}

const binom = (n: number, k: number): number => (k === 0 ? 1 : (binom(n - 1, k - 1) * n) / k);

for (const name of BACKENDS) {
  describe(`shamir raw [${name}]`, { skip: skipFor(name) }, () => {
    it('3-of-5: every 3-subset rebuilds the key; no 2-subset does', () => {
      const crypto = cryptoOf(name);
      assert.equal(splitAndCheck(crypto, crypto.generateKey(), 3, 5), binom(5, 3));
    });

    it('5-of-9: every 5-subset rebuilds the key; no 4-subset does', () => {
      const crypto = cryptoOf(name);
      assert.equal(splitAndCheck(crypto, crypto.importKey(pattern(32, 3)), 5, 9), binom(9, 5));
    });

    it('boundaries: 2-of-2, 2-of-255 and 255-of-255', () => {
      const crypto = cryptoOf(name);
      const key = crypto.generateKey();
      const blob = key.seal(pattern(48), aad);
      rebuildsKey(crypto, key.splitRaw(2, 2), blob, '2-of-2');
      const wide = key.splitRaw(2, 255);
      assert.deepEqual(
        wide.map((s) => s[0]),
        Array.from({ length: 255 }, (_, i) => i + 1),
      );
      rebuildsKey(crypto, [wide[254] as Buffer, wide[0] as Buffer], blob, '2-of-255, x = 255,1');
      const full = key.splitRaw(255, 255);
      rebuildsKey(crypto, full, blob, '255-of-255');
      const fewer = crypto.combineRaw(full.slice(1));
      throwsCode(() => fewer.open(blob, aad), 'decryption_failed', '254 of 255');
    });

    it('two splits of the same key differ (random polynomials) but both rebuild it', () => {
      const crypto = cryptoOf(name);
      const key = crypto.generateKey();
      const blob = key.seal(pattern(48), aad);
      const a = key.splitRaw(2, 3);
      const b = key.splitRaw(2, 3);
      assert.notDeepEqual(a, b);
      rebuildsKey(crypto, [a[0] as Buffer, a[1] as Buffer], blob, 'split a');
      rebuildsKey(crypto, [b[1] as Buffer, b[2] as Buffer], blob, 'split b');
      const mixed = crypto.combineRaw([a[0] as Buffer, b[1] as Buffer]);
      throwsCode(() => mixed.open(blob, aad), 'decryption_failed', 'shares of two splits');
    });

    it('invalid (m, n) throws invalid_shamir_parameters', () => {
      const key = cryptoOf(name).generateKey();
      const table: [number, number][] = [
        [1, 5],
        [0, 0],
        [0, 3],
        [-1, 3],
        [1, 1],
        [3, 2],
        [5, 4],
        [2, 256],
        [256, 256],
        [2, 1000],
        [2.5, 5],
        [3, 5.5],
        [Number.NaN, 5],
        [2, Number.NaN],
        [2, Number.POSITIVE_INFINITY],
        [Number.NEGATIVE_INFINITY, 3],
      ];
      for (const [m, n] of table) throwsCode(() => key.splitRaw(m, n), 'invalid_shamir_parameters', `m=${m} n=${n}`);
      assert.equal(key.splitRaw(2, 3).length, 3, 'the key still splits');
    });

    it('bad share sets throw duplicate_share, invalid_share, not_enough_shares', () => {
      const crypto = cryptoOf(name);
      const shares = crypto.generateKey().splitRaw(3, 5);
      const [s1, s2, s3] = shares as [Buffer, Buffer, Buffer];
      throwsCode(() => crypto.combineRaw([s1, s2, s1]), 'duplicate_share', 'same share twice');
      const sameX = Buffer.from(s3);
      sameX[0] = s2[0] as number;
      throwsCode(() => crypto.combineRaw([s1, s2, sameX]), 'duplicate_share', 'different y, same x');
      const x0 = Buffer.from(s3);
      x0[0] = 0;
      throwsCode(() => crypto.combineRaw([s1, s2, x0]), 'invalid_share', 'x = 0');
      for (const len of [0, 1, 32, 34, 65]) {
        const bad = Buffer.concat([s3, Buffer.alloc(33)]).subarray(0, len);
        throwsCode(() => crypto.combineRaw([s1, s2, bad]), 'invalid_share', `${len}-byte share`);
      }
      throwsCode(() => crypto.combineRaw([]), 'not_enough_shares', 'no shares');
      throwsCode(() => crypto.combineRaw([s1]), 'not_enough_shares', 'one share');
    });

    it('combineRaw does not consume its input; rebuilt keys are independent handles', () => {
      const crypto = cryptoOf(name);
      const key = crypto.generateKey();
      const blob = key.seal(pattern(48), aad);
      const shares = key.splitRaw(2, 3);
      const copy = shares.map((s) => Buffer.from(s));
      const a = crypto.combineRaw(shares.slice(0, 2));
      assert.deepEqual(shares, copy, 'shares unchanged');
      const b = crypto.combineRaw(shares.slice(1));
      assert.notEqual(a.info().id, b.info().id);
      a.destroy();
      assert.deepEqual(b.open(blob, aad), pattern(48));
      key.destroy();
      rebuildsKey(crypto, shares.slice(0, 2), blob, 'after the original is destroyed');
    });
  });
}
