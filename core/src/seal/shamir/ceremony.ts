/**
 * The Shamir key ceremony (ADR-202, ADR-204; SPEC.md §9): split the MasterKey
 * M-of-N, sign a header for every share with a one-time Ed25519 ceremony key,
 * seal each signed share to its holder's X25519 key, and write a manifest.
 *
 *   const c = runCeremony({ crypto, masterKey, clusterId, region, threshold: 3, shareCount: 5, holderPublicKeys });
 *   // c.shares[i].payload goes to holder i (once); c.ceremonyPublicKey, c.splitId and
 *   // c.manifest go into the cluster record; nothing else survives the call.
 *
 * The ceremony secret key is wiped as soon as the last header is signed, so no
 * one can sign another share for this split: the cluster keeps only the
 * public key, to verify submissions (verify-share.ts). Limit: libsodium.js
 * frees but does not zero its WebAssembly heap, so a copy of that key (and of
 * the signed shares passed to crypto_box_seal) may linger there until the
 * memory is reused; the JavaScript copies are wiped.
 */
import { createHash } from 'node:crypto';
import { combineShares, splitKey } from '../../../../common/src/crypto/shamir.ts';
import { KcmError } from '../../../../common/src/errors.ts';
import { encodeShare, type Share } from '../../../../common/src/format/share.ts';
import type { Crypto, KeyHandle } from '../../../../native/index.ts';
import { encodeBase64 } from './base64.ts';
import { assertClusterNames, clusterFingerprint } from './cluster-fingerprint.ts';
import {
  type CeremonyManifest,
  DISTRIBUTION_PLAIN,
  DISTRIBUTION_SEALED,
  MANIFEST_FORMAT,
  payloadSha256,
} from './manifest.ts';
import { encodeSealedPayload } from './sealed-payload.ts';
import { encodeSignedShare, encodeSignedShareHeader, signatureMessage, signedShareToText } from './signed-share.ts';
import { sodium, X25519_KEY_BYTES } from './sodium.ts';

export interface CeremonyOptions {
  crypto: Crypto;
  /** The key to split; it stays usable (the caller destroys it when done). */
  masterKey: KeyHandle;
  clusterId: string;
  region: string;
  /** M: 2 … N. */
  threshold: number;
  /** N: M … 255. */
  shareCount: number;
  /** N distinct X25519 public keys (32 bytes), holder i gets share i+1. Absent: plain shares. */
  holderPublicKeys?: readonly Uint8Array[] | undefined;
  /** Clock for the manifest (tests); default Date.now. */
  now?: (() => number) | undefined;
}

export interface IssuedShare {
  index: number;
  /** The X25519 key the payload is sealed to, or null for a plain share. */
  holderPublicKey: Buffer | null;
  /** Sealed mode: the SPEC.md §9.2 JSON document; plain mode: the signed share text (§9.1). */
  payload: string;
  /** Hex SHA-256 of the payload's UTF-8 bytes (as in the manifest). */
  payloadSha256: string;
}

export interface CeremonyResult {
  splitId: Buffer;
  /** Ed25519, 32 bytes: store it in the cluster record to verify submitted shares. */
  ceremonyPublicKey: Buffer;
  clusterFingerprint: Buffer;
  /** By ascending index. */
  shares: IssuedShare[];
  manifest: CeremonyManifest;
}

function bad(detail: string): never {
  throw new KcmError('invalid_shamir_parameters', `runCeremony: ${detail}`);
}

/** Validates M, N, names and holder keys before any key is touched. */
function validate(o: CeremonyOptions): void {
  assertClusterNames('runCeremony', o.clusterId, o.region);
  const { threshold: m, shareCount: n } = o;
  if (!Number.isInteger(m) || m < 2 || m > 255) bad(`threshold ${m} outside 2..255`);
  if (!Number.isInteger(n) || n < 2 || n > 255) bad(`share count ${n} outside 2..255`);
  if (m > n) bad(`threshold ${m} exceeds share count ${n}`);
  if (o.masterKey.backend !== o.crypto.backend.name) {
    throw new KcmError('backend_mismatch', 'runCeremony: master key belongs to another crypto backend');
  }
  if (o.holderPublicKeys !== undefined) assertHolderPublicKeys(o.holderPublicKeys, n);
}

/**
 * Checks a list of holder keys for an N-share split: exactly `shareCount`
 * keys, each 32 bytes, a usable X25519 public key, no two equal. Throws
 * `invalid_shamir_parameters` naming the key by position (never its bytes).
 */
export function assertHolderPublicKeys(keys: readonly Uint8Array[], shareCount: number): void {
  const n = shareCount;
  if (keys.length !== n) bad(`${keys.length} holder public keys for ${n} shares`);
  const seen = new Map<string, number>();
  for (const [i, k] of keys.entries()) {
    if (!(k instanceof Uint8Array) || k.length !== X25519_KEY_BYTES) {
      bad(`holder public key #${i + 1} must be ${X25519_KEY_BYTES} bytes`);
    }
    const hex = Buffer.from(k).toString('hex');
    const first = seen.get(hex);
    if (first !== undefined) bad(`holder public keys #${first} and #${i + 1} are the same`);
    seen.set(hex, i + 1);
    try {
      sodium.crypto_box_seal(new Uint8Array(0), k); // libsodium refuses low-order (all-zero result) keys
    } catch {
      bad(`holder public key #${i + 1} is not a usable X25519 public key`);
    }
  }
}

/** Rebuilds the key from the first M and the last M shares before anything is issued (share_mismatch otherwise). */
function selfCheck(crypto: Crypto, shares: readonly Share[], m: number): void {
  for (const set of [shares.slice(0, m), shares.slice(-m)]) combineShares(crypto, set).destroy();
}

interface SigningContext {
  fingerprint: Buffer;
  secretKey: Uint8Array;
  clusterId: string;
}

/** Signs one share and, with a holder key, seals it; wipes the plaintext buffers it made. */
function issue(ctx: SigningContext, share: Share, holder: Uint8Array | null): IssuedShare {
  const shareBytes = encodeShare(share);
  const headerBytes = encodeSignedShareHeader({
    clusterFingerprint: ctx.fingerprint,
    threshold: share.threshold,
    shareCount: share.total,
    index: share.index,
    splitId: share.splitId,
    shareSha256: createHash('sha256').update(shareBytes).digest(),
  });
  const signature = sodium.crypto_sign_detached(signatureMessage(headerBytes), ctx.secretKey);
  const signed = encodeSignedShare(headerBytes, shareBytes, signature);
  shareBytes.fill(0);
  try {
    const payload = holder
      ? encodeSealedPayload({
          clusterId: ctx.clusterId,
          index: share.index,
          holderPublicKey: holder,
          sealed: sodium.crypto_box_seal(signed, holder),
        })
      : signedShareToText(signed);
    return {
      index: share.index,
      holderPublicKey: holder ? Buffer.from(holder) : null,
      payload,
      payloadSha256: payloadSha256(payload),
    };
  } finally {
    signed.fill(0);
  }
}

/**
 * Runs the ceremony. Returns the payloads to hand out (each exactly once),
 * the split id, the ceremony public key and the manifest.
 *
 * Throws `invalid_shamir_parameters` (naming the problem) for a bad cluster
 * id or region, M outside 2..N, N above 255, a holder key list whose length
 * is not N, a key that is not 32 bytes or not a usable X25519 key, or two
 * equal keys; `backend_mismatch` when `masterKey` is not of `crypto`;
 * `share_mismatch` if the split fails its own rebuild check; a CryptoError
 * from the backend (e.g. `key_destroyed` for a destroyed MasterKey). Share values and
 * the ceremony secret key are wiped before it returns or throws.
 */
export function runCeremony(o: CeremonyOptions): CeremonyResult {
  validate(o);
  const shares = splitKey(o.masterKey, o.threshold, o.shareCount);
  const kp = sodium.crypto_sign_keypair();
  try {
    selfCheck(o.crypto, shares, o.threshold);
    const ceremonyPublicKey = Buffer.from(kp.publicKey);
    const ctx = {
      fingerprint: clusterFingerprint(o.clusterId, o.region, ceremonyPublicKey),
      secretKey: kp.privateKey,
      clusterId: o.clusterId,
    };
    const issued = shares
      .map((s) => issue(ctx, s, o.holderPublicKeys?.[s.index - 1] ?? null))
      .sort((a, b) => a.index - b.index);
    const splitId = Buffer.from((shares[0] as Share).splitId);
    const createdAt = new Date((o.now ?? Date.now)()).toISOString();
    const manifest = buildManifest(o, splitId, ctx.fingerprint, ceremonyPublicKey, createdAt, issued);
    return { splitId, ceremonyPublicKey, clusterFingerprint: ctx.fingerprint, shares: issued, manifest };
  } finally {
    sodium.memzero(kp.privateKey);
    for (const s of shares) s.y.fill(0);
  }
}

function buildManifest(
  o: CeremonyOptions,
  splitId: Buffer,
  fingerprint: Buffer,
  ceremonyPublicKey: Buffer,
  createdAt: string,
  issued: readonly IssuedShare[],
): CeremonyManifest {
  return {
    format: MANIFEST_FORMAT,
    clusterId: o.clusterId,
    region: o.region,
    threshold: o.threshold,
    shareCount: o.shareCount,
    splitId: splitId.toString('hex'),
    clusterFingerprint: fingerprint.toString('hex'),
    ceremonyPublicKey: encodeBase64(ceremonyPublicKey),
    distribution: o.holderPublicKeys ? DISTRIBUTION_SEALED : DISTRIBUTION_PLAIN,
    createdAt,
    shares: issued.map((s) => ({
      index: s.index,
      holderPublicKey: s.holderPublicKey ? encodeBase64(s.holderPublicKey) : null,
      payloadSha256: s.payloadSha256,
    })),
  };
}
