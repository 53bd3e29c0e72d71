/**
 * Verification of a submitted signed share (SPEC.md §9.1) against the cluster
 * record, before it is kept for the unseal: only shares this cluster's
 * ceremony signed, for its current split, reach `combineShares`.
 */
import { createHash } from 'node:crypto';
import { KcmError } from '../../../../common/src/errors.ts';
import { decodeShare, type Share, SPLIT_ID_BYTES } from '../../../../common/src/format/share.ts';
import { clusterFingerprint } from './cluster-fingerprint.ts';
import { decodeSignedShare, signatureMessage, signedShareFromText } from './signed-share.ts';
import { ED25519_PUBLIC_KEY_BYTES, sodium } from './sodium.ts';

/** What the cluster record says about its split (ClusterRecord fields). */
export interface ExpectedCeremony {
  clusterId: string;
  region: string;
  /** Ed25519, 32 bytes. */
  ceremonyPublicKey: Uint8Array;
  /** 16 bytes. */
  splitId: Uint8Array;
  threshold: number;
  shareCount: number;
}

/**
 * Checks `expected` once and returns its cluster fingerprint. Throws
 * `invalid_shamir_parameters` naming the bad field.
 */
export function expectedFingerprint(expected: ExpectedCeremony): Buffer {
  const { ceremonyPublicKey: pk, splitId, threshold: m, shareCount: n } = expected;
  if (!(pk instanceof Uint8Array) || pk.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new KcmError('invalid_shamir_parameters', 'verifySignedShare: ceremonyPublicKey must be 32 bytes');
  }
  if (!(splitId instanceof Uint8Array) || splitId.length !== SPLIT_ID_BYTES) {
    throw new KcmError('invalid_shamir_parameters', 'verifySignedShare: splitId must be 16 bytes');
  }
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 2 || m > n || n > 255) {
    throw new KcmError('invalid_shamir_parameters', `verifySignedShare: ${m}-of-${n} is not a valid split`);
  }
  return clusterFingerprint(expected.clusterId, expected.region, pk);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/**
 * Verifies a signed share text and returns its decoded SPEC.md §6 share (the
 * share owns its memory; wipe `y` when done). Checks, in order:
 *  1. text form, length, magic, version, header ranges → `invalid_share`;
 *  2. the Ed25519 signature under `expected.ceremonyPublicKey` →
 *     `invalid_share` "signature does not verify" — or `foreign_share` when the
 *     (unauthenticated) fingerprint names another cluster or ceremony, the
 *     likelier mistake and the more useful message; the share is refused
 *     either way;
 *  3. the cluster fingerprint → `foreign_share` "share belongs to another cluster";
 *  4. split id, M, N → `foreign_share`;
 *  5. SHA-256 of the share bytes against the signed hash → `invalid_share`;
 *  6. decodeShare (checksum, fields) and agreement of the share's index, M, N,
 *     split id with the header → `invalid_share`.
 * Throws only KcmError (`invalid_shamir_parameters` for a bad `expected`);
 * messages never contain share bytes.
 */
export function verifySignedShare(text: string, expected: ExpectedCeremony): Share {
  const fingerprint = expectedFingerprint(expected);
  const bytes = signedShareFromText(text);
  try {
    const { header, headerBytes, shareBytes, signature } = decodeSignedShare(bytes);
    const ok = sodium.crypto_sign_verify_detached(signature, signatureMessage(headerBytes), expected.ceremonyPublicKey);
    if (!ok && !same(header.clusterFingerprint, fingerprint)) {
      throw new KcmError('foreign_share', 'share belongs to another cluster (or another ceremony)');
    }
    if (!ok) throw new KcmError('invalid_share', 'signature does not verify');
    if (!same(header.clusterFingerprint, fingerprint)) {
      throw new KcmError('foreign_share', 'share belongs to another cluster');
    }
    if (!same(header.splitId, expected.splitId)) throw new KcmError('foreign_share', 'share belongs to another split');
    if (header.threshold !== expected.threshold || header.shareCount !== expected.shareCount) {
      throw new KcmError(
        'foreign_share',
        `share is from a ${header.threshold}-of-${header.shareCount} split, this cluster uses ${expected.threshold}-of-${expected.shareCount}`,
      );
    }
    if (!same(createHash('sha256').update(shareBytes).digest(), header.shareSha256)) {
      throw new KcmError('invalid_share', 'share bytes do not match the signed hash');
    }
    const copy = Buffer.from(shareBytes);
    let share: Share;
    try {
      share = decodeShare(copy);
    } catch (err) {
      copy.fill(0);
      throw err;
    }
    if (
      share.index !== header.index ||
      share.threshold !== header.threshold ||
      share.total !== header.shareCount ||
      !same(share.splitId, header.splitId)
    ) {
      copy.fill(0);
      throw new KcmError('invalid_share', 'share fields disagree with the signed header');
    }
    return share;
  } catch (err) {
    if (err instanceof KcmError) throw err;
    throw new KcmError('internal_error', 'verifySignedShare failed unexpectedly');
  } finally {
    bytes.fill(0);
  }
}
