/**
 * M-of-N splitting of a key into framed, checkable shares (SPEC.md §6), on the
 * native Shamir split/combine. The rebuilt key is verified against the key
 * check value every share carries, so a wrong set of shares is refused instead
 * of yielding a wrong key.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import { KcmError } from '../errors.ts';
import { SHARE_KCV_BYTES, type Share } from '../format/share.ts';

const KCV_LABEL = Buffer.from('okcm/shamir-kcv/v1\0', 'latin1');

/** First 8 bytes of HMAC-SHA-256(key, label ‖ split id). */
export function shareKcv(key: KeyHandle, splitId: Uint8Array): Buffer {
  return key.hmac(Buffer.concat([KCV_LABEL, splitId])).subarray(0, SHARE_KCV_BYTES);
}

/** Splits `key` into `total` shares, any `threshold` of which rebuild it. Throws `invalid_shamir_parameters`. */
export function splitKey(key: KeyHandle, threshold: number, total: number): Share[] {
  const points = key.splitRaw(threshold, total);
  const splitId = randomBytes(16);
  const kcv = shareKcv(key, splitId);
  return points.map((p) => ({ threshold, total, index: p[0] as number, splitId, kcv, y: p.subarray(1) }));
}

/**
 * Rebuilds the key from decoded shares. Checks, in order: at least one share;
 * all from the same split (`foreign_share`, naming the first foreign one); the
 * same threshold; distinct indexes (`duplicate_share`); at least M of them
 * (`not_enough_shares`); then the rebuilt key against the key check value
 * (`share_mismatch`, the key is wiped).
 */
export function combineShares(crypto: Crypto, shares: readonly Share[]): KeyHandle {
  const first = shares[0];
  if (!first) throw new KcmError('not_enough_shares', 'no shares given');
  const seen = new Set<number>();
  for (const [i, s] of shares.entries()) {
    if (Buffer.compare(s.splitId, first.splitId) !== 0 || s.threshold !== first.threshold || s.total !== first.total) {
      throw new KcmError('foreign_share', `share #${i + 1} (index ${s.index}) belongs to another split`);
    }
    if (seen.has(s.index)) throw new KcmError('duplicate_share', `index ${s.index} given twice`);
    seen.add(s.index);
  }
  if (shares.length < first.threshold) {
    throw new KcmError('not_enough_shares', `${shares.length} of ${first.threshold} shares`);
  }
  const points = shares.map((s) => Buffer.concat([Buffer.of(s.index), s.y]));
  const key = crypto.combineRaw(points);
  for (const p of points) p.fill(0);
  if (!timingSafeEqual(shareKcv(key, first.splitId), first.kcv)) {
    key.destroy();
    throw new KcmError('share_mismatch', 'the shares do not rebuild the key they were made from');
  }
  return key;
}
