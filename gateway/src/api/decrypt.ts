/**
 * POST /v1/decrypt/:key (or /v1/decrypt, key optional): opens one ciphertext
 * or a batch for the caller's tenant.
 *
 *   → { "tenant"?, "ciphertext": "okcm:1:…", "context"?: "<base64>", "encoding"?: "base64"|"utf8" }
 *   ← { "data": { "plaintext": "<base64 or text>" } }
 *   → { "batch": [ { "ciphertext", "context"?, "reference"? }, … ] }
 *   ← { "data": { "batch_results": [ { "plaintext", "reference"? } | { "error": { "code": "decryption_failed", … } } ] } }
 *
 * Every failure of a ciphertext (format, tenant, key, version, tag, context,
 * another key than the path names) is the opaque `decryption_failed`.
 */

import { noteKeys } from '../audit/request-audit.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Route } from '../pipeline/router.ts';
import {
  type ApiOptions,
  type Encoding,
  encodePlaintext,
  encodingOf,
  type ItemResult,
  itemError,
  itemOk,
  itemsOf,
  keyIdOf,
  objectBody,
  referenceOf,
  respondItems,
  tenantOf,
} from './api-input.ts';
import { type OpenedItems, openItems } from './open-items.ts';

/** Opens the request's items: synchronously when every key is in the cache (no promise on the hot path). */
function handleDecrypt(ctx: RequestContext, o: ApiOptions): void | Promise<void> {
  const body = objectBody(ctx);
  const tenant = tenantOf(ctx, body);
  const keyId = keyIdOf(ctx, body, false);
  const encoding = encodingOf(body);
  const { items, batch } = itemsOf(body, o.maxBatchItems);
  const opened = openItems(o.keys, tenant, keyId, items);
  if (!(opened instanceof Promise)) return answer(ctx, o, items, batch, encoding, opened);
  return opened.then((r) => answer(ctx, o, items, batch, encoding, r));
}

/** Encodes each opened plaintext (zeroing it) or keeps the item's error, then answers. */
function answer(
  ctx: RequestContext,
  o: ApiOptions,
  items: readonly ItemResult[],
  batch: boolean,
  encoding: Encoding,
  opened: OpenedItems,
): void {
  if (opened.reasons.length > 0) ctx.auditReasons = opened.reasons;
  noteKeys(ctx, opened.keys);
  const results: ItemResult[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const reference = referenceOf(items[i] as ItemResult);
    const plaintext = opened.plaintexts[i];
    if (!plaintext) {
      results[i] = opened.errors[i] as ItemResult;
      continue;
    }
    try {
      results[i] = itemOk({ plaintext: encodePlaintext(plaintext, encoding) }, reference);
    } catch (err) {
      results[i] = itemError(err, reference);
    }
  }
  if (ctx.aborted) return;
  respondItems(ctx, o, results, batch);
}

export function decryptRoutes(o: ApiOptions): Route[] {
  const handle = (ctx: RequestContext) => handleDecrypt(ctx, o);
  const base = {
    method: 'POST',
    body: 'json',
    bodyLimit: o.maxBodyBytes,
    auth: true,
    audit: 'gateway.decrypt',
    handle,
  } as const;
  return [
    { ...base, name: 'decrypt', pattern: '/v1/decrypt/:key' },
    { ...base, name: 'decrypt', pattern: '/v1/decrypt' },
  ];
}
