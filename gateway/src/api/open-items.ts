/**
 * Opening direct-API ciphertexts for decrypt and rewrap: validates items,
 * fetches each distinct L3 version the ciphertexts name (tenant checked
 * first, so no key of another tenant is ever looked up), then opens them
 * (one native call per L3 version; one for the usual single-version
 * request). Each ciphertext is parsed once. Every failure is the opaque `decryption_failed`;
 * the precise reasons are kept for the audit record.
 */
import {
  anyAsyncEnvelope,
  type FieldOpenResult,
  openParsedFields,
  openParsedFieldsAsync,
  parseFieldCiphertexts,
} from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldKeyRef } from '../../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../../native/index.ts';
import { decryptionKeyOf, type GatewayKeys } from '../gateway-keys.ts';
import { ciphertextOf, contextOf, type Item, type ItemResult, itemError, referenceOf } from './api-input.ts';

export interface OpenedItems {
  /** Per item: an error result, or undefined when the item opened. */
  errors: (ItemResult | undefined)[];
  /** Per item: the plaintext (caller zeroes it), for items without an error. */
  plaintexts: (Buffer | undefined)[];
  /** Why items failed (for the audit log only). */
  reasons: string[];
  /** The L3 versions looked up for these items, each once (the audit record's resource). */
  keys: FieldKeyRef[];
}

function refId(r: FieldKeyRef): string {
  return `${r.keyId}\0${r.keyVersion}`;
}

/**
 * Opens `items` of `tenant`. When `keyId` is given, ciphertexts under other
 * keys fail. Answers synchronously when every key is in the cache (no promise
 * on the hot path). Throws (or rejects with) only what aborts the request
 * (key service unavailable, internal errors).
 */
export function openItems(
  keys: GatewayKeys,
  tenant: string,
  keyId: string | undefined,
  items: readonly Item[],
): OpenedItems | Promise<OpenedItems> {
  const n = items.length;
  const errors: (ItemResult | undefined)[] = new Array(n);
  const ciphertexts: string[] = [];
  const contexts: Buffer[] = [];
  const slots: number[] = [];
  for (let i = 0; i < n; i++) {
    const item = items[i] as Item;
    try {
      const ct = ciphertextOf(item);
      contexts.push(contextOf(item));
      ciphertexts.push(ct);
      slots.push(i);
    } catch (err) {
      errors[i] = itemError(err, referenceOf(item));
    }
  }
  // Each ciphertext is parsed once: the parse names the keys to fetch and is what gets opened.
  const parsed = parseFieldCiphertexts(tenant, ciphertexts);
  const handles = new Map<string, KeyHandle>();
  // Each L3 version once, in the order the ciphertexts name them.
  const asked = new Map<string, FieldKeyRef>();
  let pending: Promise<void>[] | undefined;
  for (const group of parsed.groups.values()) {
    const ref = parsed.envelopes[group[0] as number] as FieldKeyRef;
    if (keyId !== undefined && ref.keyId !== keyId) continue;
    const id = refId(ref);
    if (asked.has(id)) continue;
    asked.set(id, ref);
    const h = decryptionKeyOf(keys, tenant, ref.keyId, ref.keyVersion);
    if (!(h instanceof Promise)) handles.set(id, h);
    else {
      pending ??= [];
      pending.push(
        h.then((v) => {
          if (v) handles.set(id, v);
        }),
      );
    }
  }
  const resolve = (ref: FieldKeyRef) => handles.get(refId(ref));
  const answer = (opened: readonly FieldOpenResult[]): OpenedItems => {
    const plaintexts: (Buffer | undefined)[] = new Array(n);
    const reasons: string[] = [];
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
    return { errors, plaintexts, reasons, keys: [...asked.values()] };
  };
  // A token key (pkcs11 backend) opens off the event loop; every other key synchronously.
  const open = (): OpenedItems | Promise<OpenedItems> =>
    anyAsyncEnvelope(handles.values())
      ? openParsedFieldsAsync(parsed, resolve, contexts).then(answer)
      : answer(openParsedFields(parsed, resolve, contexts));
  return pending ? Promise.all(pending).then(open) : open();
}
