/**
 * Opening direct-API ciphertexts for decrypt and rewrap: validates items,
 * fetches each distinct L3 version the ciphertexts name (tenant checked
 * first, so no key of another tenant is ever looked up), then opens them
 * with decryptFields (one native call per L3 version; one for the usual
 * single-version request). Every failure is the opaque `decryption_failed`;
 * the precise reasons are kept for the audit record.
 */
import { decryptFields, type FieldOpenResult } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { type FieldKeyRef, parseEnvelope } from '../../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../../native/index.ts';
import type { GatewayKeys } from '../gateway-keys.ts';
import { ciphertextOf, contextOf, type Item, type ItemResult, itemError, referenceOf } from './api-input.ts';

export interface OpenedItems {
  /** Per item: an error result, or undefined when the item opened. */
  errors: (ItemResult | undefined)[];
  /** Per item: the plaintext (caller zeroes it), for items without an error. */
  plaintexts: (Buffer | undefined)[];
  /** Why items failed (for the audit log only). */
  reasons: string[];
}

function refId(r: FieldKeyRef): string {
  return `${r.keyId}\0${r.keyVersion}`;
}

/**
 * Opens `items` of `tenant`. When `keyId` is given, ciphertexts under other
 * keys fail. Throws only what aborts the request (key service unavailable,
 * internal errors).
 */
export async function openItems(
  keys: GatewayKeys,
  tenant: string,
  keyId: string | undefined,
  items: readonly Item[],
): Promise<OpenedItems> {
  const n = items.length;
  const errors: (ItemResult | undefined)[] = new Array(n);
  const plaintexts: (Buffer | undefined)[] = new Array(n);
  const reasons: string[] = [];
  const ciphertexts: string[] = [];
  const contexts: Buffer[] = [];
  const slots: number[] = [];
  const wanted = new Map<string, FieldKeyRef>();
  for (let i = 0; i < n; i++) {
    const item = items[i] as Item;
    try {
      const ct = ciphertextOf(item);
      contexts.push(contextOf(item));
      ciphertexts.push(ct);
      slots.push(i);
    } catch (err) {
      errors[i] = itemError(err, referenceOf(item));
      continue;
    }
    try {
      const env = parseEnvelope(ciphertexts[ciphertexts.length - 1] as string);
      if (env.tenant === tenant && (keyId === undefined || env.keyId === keyId)) wanted.set(refId(env), env);
    } catch {
      // decryptFields reports the format reason for this item.
    }
  }
  const handles = new Map<string, KeyHandle>();
  await Promise.all(
    [...wanted].map(async ([id, ref]) => {
      const h = await keys.decryptionKey(tenant, ref.keyId, ref.keyVersion);
      if (h) handles.set(id, h);
    }),
  );
  const opened: FieldOpenResult[] =
    slots.length > 0 ? decryptFields(tenant, (ref) => handles.get(refId(ref)), ciphertexts, contexts) : [];
  for (let k = 0; k < slots.length; k++) {
    const i = slots[k] as number;
    const r = opened[k] as FieldOpenResult;
    if (r.ok) {
      plaintexts[i] = r.plaintext;
    } else {
      reasons.push(r.reason);
      errors[i] = itemError(new KcmError('decryption_failed'), referenceOf(items[i] as Item));
    }
  }
  return { errors, plaintexts, reasons };
}
