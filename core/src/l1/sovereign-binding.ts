/**
 * The sovereign binding of an L2 key (ADR-102/302): the L1 provider makes a
 * fresh data key under the tenant's root key (AWS KMS GenerateDataKey, an HSM
 * AES key, …); its plaintext goes straight into native memory (importKey
 * zeroes the buffer) and wraps the L2 there (AES-256-GCM, AAD =
 * wrapAad({3, tenant, "l1", v}, {3, tenant, "l2", v})); the data key is then
 * destroyed. Only the provider ciphertext and the wrapped L2 are stored
 * (sovereign-blob.ts). Opening it asks the L1 to decrypt the data key again:
 * every sovereign unwrap is a call to the customer's KMS (HYOK).
 */
import { KcmError } from '../../../common/src/errors.ts';
import { encodeWrappedKey, wrapAad } from '../../../common/src/format/wrapped-key.ts';
import { type Crypto, CryptoError, type KeyHandle } from '../../../native/index.ts';
import { l1DataKeyRef, l2Ref } from '../keys/key-names.ts';
import type { SealContext } from '../seal/seal-provider.ts';
import type { L1Ref } from '../store/records.ts';
import type { L1Registry } from './l1-registry.ts';
import { decodeSovereignBlob, encodeSovereignBlob } from './sovereign-blob.ts';

export interface SovereignDeps {
  crypto: Crypto;
  l1: L1Registry;
}

/** What every L1 call of a tenant binds (cluster, region, tenant). */
export function l1Context(clusterId: string, region: string, tenant: string): SealContext & { tenant: string } {
  return { clusterId, region, tenant };
}

/**
 * Wraps `l2` (version `l2Version` of the tenant in `ctx.tenant`) under a new
 * L1 data key; returns the blob to store. Throws `l1_unavailable` / `l1_rejected`.
 */
export async function createSovereignBinding(
  d: SovereignDeps,
  ref: L1Ref,
  ctx: SealContext & { tenant: string },
  l2: KeyHandle,
  l2Version: number,
): Promise<Buffer> {
  const { plaintext, encrypted } = await d.l1.generateDataKey(ref, ctx);
  let dk: KeyHandle;
  try {
    dk = d.crypto.importKey(plaintext);
  } finally {
    plaintext.fill(0);
  }
  try {
    const wrapping = l1DataKeyRef(ctx.tenant, l2Version);
    const wrapped = l2Ref(ctx.tenant, l2Version);
    const sealed = dk.wrap(l2, wrapAad(wrapping, wrapped));
    return encodeSovereignBlob({ dataKey: encrypted, wrappedL2: encodeWrappedKey({ wrapping, wrapped, sealed }) });
  } finally {
    dk.destroy();
  }
}

/**
 * Unwraps the L2 of a sovereign binding through the L1 (one provider call).
 * Throws `l1_unavailable` / `l1_rejected` from the provider, `record_tampered`
 * when the blob is malformed, names another key, or does not open.
 */
export async function openSovereignBinding(
  d: SovereignDeps,
  ref: L1Ref,
  ctx: SealContext & { tenant: string },
  blob: Uint8Array,
  l2Version: number,
): Promise<KeyHandle> {
  let parsed: ReturnType<typeof decodeSovereignBlob>;
  try {
    parsed = decodeSovereignBlob(blob);
  } catch (err) {
    throw new KcmError(
      'record_tampered',
      `sovereign binding of ${ctx.tenant} v${l2Version}: ${(err as Error).message}`,
    );
  }
  const wrapping = l1DataKeyRef(ctx.tenant, l2Version);
  const wrapped = l2Ref(ctx.tenant, l2Version);
  const names = parsed.wrapped;
  if (names.wrapped.tenant !== wrapped.tenant || names.wrapped.version !== wrapped.version) {
    throw new KcmError('record_tampered', `sovereign binding of ${ctx.tenant} v${l2Version} names another key`);
  }
  const plaintext = await d.l1.decryptDataKey(ref, parsed.dataKey, ctx);
  let dk: KeyHandle;
  try {
    dk = d.crypto.importKey(plaintext);
  } finally {
    plaintext.fill(0);
  }
  try {
    return dk.unwrap(names.sealed, wrapAad(wrapping, wrapped));
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'decryption_failed') {
      throw new KcmError('record_tampered', `sovereign binding of ${ctx.tenant} v${l2Version} does not open`);
    }
    throw err;
  } finally {
    dk.destroy();
  }
}
