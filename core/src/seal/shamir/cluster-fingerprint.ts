/**
 * The cluster fingerprint carried in every signed share header (SPEC.md §9.1):
 * it ties a share to one cluster, one region and one ceremony, so a share
 * handed to the wrong cluster is refused as `foreign_share` before anything
 * else is looked at.
 *
 *   fingerprint = first 16 bytes of
 *     SHA-256("okcm/cluster/v1" ‖ 00 ‖ cluster id ‖ 00 ‖ region ‖ 00 ‖ ceremony public key)
 *
 * Cluster ids and regions are key ids (SPEC.md §2–3: the MasterKey is named
 * `{1, "", cluster id, 1}`, an IVK `{2, "", region, n}`), so they never contain
 * the 00 separator and the hash input is unambiguous.
 */
import { createHash } from 'node:crypto';
import { KcmError } from '../../../../common/src/errors.ts';
import { isKeyId, KEY_ID_MAX } from '../../../../common/src/format/ids.ts';
import { ED25519_PUBLIC_KEY_BYTES } from './sodium.ts';

export const CLUSTER_FINGERPRINT_BYTES = 16;
const LABEL = Buffer.from('okcm/cluster/v1\0', 'latin1');
const NUL = Buffer.of(0);

/** Throws `invalid_shamir_parameters` naming `fn` and the field unless cluster id and region are valid key ids. */
export function assertClusterNames(fn: string, clusterId: unknown, region: unknown): void {
  for (const [name, v] of [
    ['clusterId', clusterId],
    ['region', region],
  ] as const) {
    if (typeof v !== 'string' || !isKeyId(v)) {
      throw new KcmError(
        'invalid_shamir_parameters',
        `${fn}: ${name} needs 1-${KEY_ID_MAX} characters of A-Z a-z 0-9 - . _ ~`,
      );
    }
  }
}

/**
 * The 16-byte fingerprint of (cluster id, region, ceremony public key).
 * Throws `invalid_shamir_parameters` for an invalid name or a public key that
 * is not 32 bytes.
 */
export function clusterFingerprint(clusterId: string, region: string, ceremonyPublicKey: Uint8Array): Buffer {
  assertClusterNames('clusterFingerprint', clusterId, region);
  if (!(ceremonyPublicKey instanceof Uint8Array) || ceremonyPublicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new KcmError(
      'invalid_shamir_parameters',
      `clusterFingerprint: ceremony public key must be ${ED25519_PUBLIC_KEY_BYTES} bytes`,
    );
  }
  return createHash('sha256')
    .update(LABEL)
    .update(clusterId, 'latin1')
    .update(NUL)
    .update(region, 'latin1')
    .update(NUL)
    .update(ceremonyPublicKey)
    .digest()
    .subarray(0, CLUSTER_FINGERPRINT_BYTES);
}
