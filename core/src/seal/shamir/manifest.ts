/**
 * The ceremony manifest (SPEC.md §9.3, ADR-204): a JSON-able record of one
 * Shamir ceremony — who got which share, sealed to which public key, and the
 * SHA-256 of every issued payload, so a holder (or an auditor) can check the
 * file they received is the one issued. It holds no secret: it is stored in
 * the cluster record and may be published.
 */
import { createHash } from 'node:crypto';

export const MANIFEST_FORMAT = 'okcm-ceremony-manifest/1';
/** `distribution` when each signed share is sealed to its holder's X25519 key. */
export const DISTRIBUTION_SEALED = 'sealed to holder X25519 keys (crypto_box_seal)';
/** `distribution` when no holder keys were given: the payloads are the signed share texts themselves. */
export const DISTRIBUTION_PLAIN = 'unsealed (plain) shares';

export interface ManifestShare {
  index: number;
  /** Base64 X25519 public key the payload is sealed to; null for plain shares. */
  holderPublicKey: string | null;
  /** Lower-case hex SHA-256 of the issued payload's UTF-8 bytes. */
  payloadSha256: string;
}

export interface CeremonyManifest {
  format: typeof MANIFEST_FORMAT;
  clusterId: string;
  region: string;
  threshold: number;
  shareCount: number;
  /** Hex, 16 bytes. */
  splitId: string;
  /** Hex, 16 bytes (SPEC.md §9.1). */
  clusterFingerprint: string;
  /** Base64 Ed25519 public key that signed every share header. */
  ceremonyPublicKey: string;
  distribution: typeof DISTRIBUTION_SEALED | typeof DISTRIBUTION_PLAIN;
  /** ISO 8601 UTC, milliseconds. */
  createdAt: string;
  /** One entry per share, by ascending index. */
  shares: ManifestShare[];
}

/** Lower-case hex SHA-256 of `payload` as UTF-8: the manifest's per-share hash. */
export function payloadSha256(payload: string): string {
  return createHash('sha256').update(payload, 'utf8').digest('hex');
}
