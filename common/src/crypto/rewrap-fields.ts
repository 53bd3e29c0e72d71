/**
 * Rewrap (Vault transit `rewrap`): field ciphertexts under older L3 versions
 * become ciphertexts under `target`, without the plaintext leaving this call.
 * Decryption is per item (decryptFields); every item that opened is sealed
 * again under the target version in one backend call, with its own context;
 * the plaintext buffers are zero-filled before returning.
 */
import type { KeyHandle } from '../../../native/index.ts';
import type { FieldKeyRef } from '../format/envelope.ts';
import { decryptFields, encryptFields, type FieldFailureReason, type FieldKeyResolver } from './field-cipher.ts';

export type RewrapResult = { ok: true; ciphertext: string } | { ok: false; reason: FieldFailureReason };

/**
 * Rewraps `ciphertexts` (each with its context) of `target.tenant` under the
 * key `targetKey` named by `target`. Items that do not open keep their
 * failure reason (for the audit log; callers answer `decryption_failed`).
 * Throws like encryptFields/decryptFields for caller errors.
 */
export function rewrapFields(
  resolve: FieldKeyResolver,
  targetKey: KeyHandle,
  target: FieldKeyRef,
  ciphertexts: readonly string[],
  contexts: readonly Uint8Array[],
): RewrapResult[] {
  const opened = decryptFields(target.tenant, resolve, ciphertexts, contexts);
  const idx: number[] = [];
  const plaintexts: Buffer[] = [];
  const ctxs: Uint8Array[] = [];
  opened.forEach((r, i) => {
    if (!r.ok) return;
    idx.push(i);
    plaintexts.push(r.plaintext);
    ctxs.push(contexts[i] as Uint8Array);
  });
  try {
    const sealed = plaintexts.length > 0 ? encryptFields(targetKey, target, plaintexts, ctxs) : [];
    const out: RewrapResult[] = opened.map((r) => (r.ok ? { ok: true, ciphertext: '' } : r));
    idx.forEach((i, k) => {
      out[i] = { ok: true, ciphertext: sealed[k] as string };
    });
    return out;
  } finally {
    for (const p of plaintexts) p.fill(0);
  }
}
