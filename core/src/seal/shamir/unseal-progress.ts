/**
 * One Shamir unseal attempt (ADR-202): operators submit signed shares one at
 * a time, in any order; each is verified (verify-share.ts) and kept in memory
 * only, until M distinct shares are held and the combine step takes them.
 *
 *   const p = new UnsealProgress(expectedFromClusterRecord);
 *   p.submit(text);                       // { received: 1, threshold: 3, complete: false }
 *   ...
 *   const key = combineShares(crypto, p.takeShares());
 */
import { KcmError } from '../../../../common/src/errors.ts';
import type { Share } from '../../../../common/src/format/share.ts';
import { type ExpectedCeremony, expectedFingerprint, verifySignedShare } from './verify-share.ts';

export interface UnsealStatus {
  /** Distinct valid shares held. */
  received: number;
  threshold: number;
  /** received ≥ threshold: takeShares() will succeed. */
  complete: boolean;
}

/** The verifier; injectable so tests can watch the shares being wiped. */
export type ShareVerifier = (text: string, expected: ExpectedCeremony) => Share;

function wipe(s: Share): void {
  s.y.fill(0);
  s.kcv.fill(0);
}

function copyShare(s: Share): Share {
  return { ...s, splitId: Buffer.from(s.splitId), kcv: Buffer.from(s.kcv), y: Buffer.from(s.y) };
}

export class UnsealProgress {
  readonly #expected: ExpectedCeremony;
  readonly #verify: ShareVerifier;
  readonly #shares = new Map<number, Share>();

  /** Throws `invalid_shamir_parameters` when `expected` is malformed. */
  constructor(expected: ExpectedCeremony, verify: ShareVerifier = verifySignedShare) {
    expectedFingerprint(expected);
    this.#expected = {
      ...expected,
      ceremonyPublicKey: Buffer.from(expected.ceremonyPublicKey),
      splitId: Buffer.from(expected.splitId),
    };
    this.#verify = verify;
  }

  /** Where the attempt stands. */
  status(): UnsealStatus {
    const received = this.#shares.size;
    const threshold = this.#expected.threshold;
    return { received, threshold, complete: received >= threshold };
  }

  /**
   * Verifies and keeps one signed share. Throws what verifySignedShare throws
   * (`invalid_share`, `foreign_share`), or `duplicate_share` when a share of
   * that index is already held; a refused share is not counted and the held
   * ones are unchanged.
   */
  submit(text: string): UnsealStatus {
    const share = this.#verify(text, this.#expected);
    if (this.#shares.has(share.index)) {
      wipe(share);
      throw new KcmError('duplicate_share', `a share with index ${share.index} was already submitted`);
    }
    this.#shares.set(share.index, share);
    return this.status();
  }

  /**
   * Hands the held shares to the combine step as fresh copies (ascending
   * index; the caller wipes their `y`) and wipes and forgets the internal
   * ones. Throws `not_enough_shares` (keeping them) when fewer than M are held.
   */
  takeShares(): Share[] {
    const { received, threshold } = this.status();
    if (received < threshold) throw new KcmError('not_enough_shares', `${received} of ${threshold} shares`);
    const out = [...this.#shares.values()].sort((a, b) => a.index - b.index).map(copyShare);
    this.reset();
    return out;
  }

  /** Wipes (zero-fills) and forgets every held share. Idempotent. */
  reset(): void {
    for (const s of this.#shares.values()) wipe(s);
    this.#shares.clear();
  }
}
