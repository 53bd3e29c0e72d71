/**
 * POST /v1/rewrap/:key (or /v1/rewrap with body `key`): re-encrypts
 * ciphertexts of the key under its current L3 version without returning any
 * plaintext (two native calls: open, then seal under one fresh L4).
 *
 *   → { "tenant"?, "ciphertext": "okcm:1:…", "context"?: "<base64>" }
 *   ← { "data": { "ciphertext": "okcm:1:…", "key_version": 4 } }
 *   → { "batch": [ { "ciphertext", "context"?, "reference"? }, … ] }  ← batch_results as for encrypt
 *
 * The context stays bound: the new ciphertext needs the same context to
 * decrypt. Failures to open are the opaque `decryption_failed`, per item.
 */
import { encryptFields, encryptFieldsAsync } from '../../../common/src/crypto/field-cipher.ts';
import { noteKeys } from '../audit/request-audit.ts';
import { recordEncryption } from '../gateway-keys.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Route } from '../pipeline/router.ts';
import {
  type ApiOptions,
  contextOf,
  type ItemResult,
  itemOk,
  itemsOf,
  keyIdOf,
  objectBody,
  referenceOf,
  respondItems,
  tenantOf,
} from './api-input.ts';
import { openItems } from './open-items.ts';

async function handleRewrap(ctx: RequestContext, o: ApiOptions): Promise<void> {
  const body = objectBody(ctx);
  const tenant = tenantOf(ctx, body);
  const keyId = keyIdOf(ctx, body) as string;
  const { items, batch } = itemsOf(body, o.maxBatchItems);
  const opened = await openItems(o.keys, tenant, keyId, items);
  if (opened.reasons.length > 0) ctx.auditReasons = opened.reasons;
  noteKeys(ctx, opened.keys);
  const results: ItemResult[] = new Array(items.length);
  const plaintexts: Buffer[] = [];
  const contexts: Buffer[] = [];
  const slots: number[] = [];
  for (let i = 0; i < items.length; i++) {
    const p = opened.plaintexts[i];
    if (p) {
      plaintexts.push(p);
      contexts.push(contextOf(items[i] as ItemResult));
      slots.push(i);
    } else {
      results[i] = opened.errors[i] as ItemResult;
    }
  }
  try {
    if (slots.length > 0) {
      const key = await o.keys.encryptionKey(tenant, keyId);
      const ref = { tenant, keyId, keyVersion: key.version };
      // A token key (pkcs11 backend) seals off the event loop.
      const ciphertexts = key.handle.asyncEnvelope
        ? await encryptFieldsAsync(key.handle, ref, plaintexts, contexts)
        : encryptFields(key.handle, ref, plaintexts, contexts);
      recordEncryption(ctx, o.keys, tenant, keyId, key.version);
      for (let k = 0; k < slots.length; k++) {
        const i = slots[k] as number;
        results[i] = itemOk(
          { ciphertext: ciphertexts[k], key_version: key.version },
          referenceOf(items[i] as ItemResult),
        );
      }
    }
  } finally {
    for (const p of plaintexts) p.fill(0);
  }
  if (ctx.aborted) return;
  respondItems(ctx, o, results, batch);
}

export function rewrapRoutes(o: ApiOptions): Route[] {
  const handle = (ctx: RequestContext) => handleRewrap(ctx, o);
  const base = {
    method: 'POST',
    body: 'json',
    bodyLimit: o.maxBodyBytes,
    auth: true,
    audit: 'gateway.rewrap',
    handle,
  } as const;
  return [
    { ...base, name: 'rewrap', pattern: '/v1/rewrap/:key' },
    { ...base, name: 'rewrap', pattern: '/v1/rewrap' },
  ];
}
