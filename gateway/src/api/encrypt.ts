/**
 * POST /v1/encrypt/:key (or /v1/encrypt with body `key`): encrypts one
 * plaintext or a batch under the current L3 version of the key, in ONE
 * native call (one fresh L4 data key per request, SPEC.md §5).
 *
 *   → { "tenant"?, "plaintext": "<base64>", "context"?: "<base64>", "encoding"?: "base64"|"utf8" }
 *   ← { "data": { "ciphertext": "okcm:1:…", "key_version": 3 } }
 *   → { "batch": [ { "plaintext", "context"?, "reference"? }, … ] }
 *   ← { "data": { "batch_results": [ { "ciphertext", "key_version", "reference"? } | { "error": {…} } ] } }
 *
 * A bad item (not base64, over 1 MiB, context over 4 KiB) gets its own error;
 * a key-service or internal failure answers the whole request.
 */
import { encryptFields, encryptFieldsAsync } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { MAX_FIELD_PLAINTEXT } from '../../../common/src/format/envelope.ts';
import { type EncryptionKey, encryptionKeyOf, recordEncryption } from '../gateway-keys.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Route } from '../pipeline/router.ts';
import {
  type ApiOptions,
  contextOf,
  encodingOf,
  type ItemResult,
  itemError,
  itemOk,
  itemsOf,
  keyIdOf,
  objectBody,
  plaintextOf,
  referenceOf,
  respondItems,
  tenantOf,
} from './api-input.ts';

/**
 * Benchmark fault injection (bench:ci must go red on a slow encrypt path):
 * when KCM_TEST_HOOKS=1 and KCM_BENCH_INJECT_DELAY_MS=N (N > 0), every encrypt
 * waits N ms before sealing. Inert otherwise — read once at load, as
 * core/src/fault/crash-point.ts; a production process never sets both.
 */
const injectDelayMs =
  process.env.KCM_TEST_HOOKS === '1' ? Math.max(0, Number(process.env.KCM_BENCH_INJECT_DELAY_MS ?? 0) || 0) : 0;

/**
 * Seals the request's items, answering synchronously when the key is in the
 * cache (no promise on the hot path), else once the key service answers.
 */
function handleEncrypt(ctx: RequestContext, o: ApiOptions): void | Promise<void> {
  const body = objectBody(ctx);
  const tenant = tenantOf(ctx, body);
  const keyId = keyIdOf(ctx, body) as string;
  const encoding = encodingOf(body);
  const { items, batch } = itemsOf(body, o.maxBatchItems);
  const s: Sealing = {
    ctx,
    o,
    tenant,
    keyId,
    items,
    batch,
    results: new Array(items.length),
    plaintexts: [],
    contexts: [],
    slots: [],
  };
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Record<string, unknown>;
    const reference = referenceOf(item);
    let plaintext: Buffer | undefined;
    try {
      plaintext = plaintextOf(item, encoding);
      if (plaintext.length > MAX_FIELD_PLAINTEXT) {
        throw new KcmError('plaintext_too_large', `at most ${MAX_FIELD_PLAINTEXT} bytes`);
      }
      s.contexts.push(contextOf(item));
      s.plaintexts.push(plaintext);
      s.slots.push(i);
    } catch (err) {
      plaintext?.fill(0); // decoded but refused (too large, bad context): never sealed, wiped now
      s.results[i] = itemError(err, reference);
    }
  }
  if (s.slots.length === 0) {
    respondItems(ctx, o, s.results, batch);
    return;
  }
  let key: EncryptionKey | Promise<EncryptionKey>;
  try {
    key = injectDelayMs > 0 ? delayedKey(o, tenant, keyId) : encryptionKeyOf(o.keys, tenant, keyId);
  } catch (err) {
    wipe(s.plaintexts);
    throw err;
  }
  if (!(key instanceof Promise)) return seal(s, key);
  return key.then(
    (k) => seal(s, k),
    (err: unknown) => {
      wipe(s.plaintexts);
      throw err;
    },
  );
}

/** One request's items on their way to the seal. */
interface Sealing {
  ctx: RequestContext;
  o: ApiOptions;
  tenant: string;
  keyId: string;
  items: Record<string, unknown>[];
  batch: boolean;
  results: ItemResult[];
  plaintexts: Buffer[];
  contexts: Buffer[];
  slots: number[];
}

function wipe(plaintexts: readonly Buffer[]): void {
  for (const p of plaintexts) p.fill(0);
}

function delayedKey(o: ApiOptions, tenant: string, keyId: string): Promise<EncryptionKey> {
  return new Promise((r) => setTimeout(r, injectDelayMs)).then(() => o.keys.encryptionKey(tenant, keyId));
}

/**
 * Seals every accepted item in one backend call (off the event loop for a
 * token key), wipes the plaintexts on every path, answers.
 */
function seal(s: Sealing, key: EncryptionKey): void | Promise<void> {
  const { ctx, tenant, keyId } = s;
  const ref = { tenant, keyId, keyVersion: key.version };
  if (ctx.aborted || !key.handle.asyncEnvelope) {
    let ciphertexts: string[];
    try {
      if (ctx.aborted) return;
      ciphertexts = encryptFields(key.handle, ref, s.plaintexts, s.contexts);
    } finally {
      // Wiped on every path: sealed, aborted, or failed (key service, limits).
      wipe(s.plaintexts);
    }
    return sealed(s, key, ciphertexts);
  }
  return encryptFieldsAsync(key.handle, ref, s.plaintexts, s.contexts)
    .finally(() => wipe(s.plaintexts))
    .then((c) => {
      if (!ctx.aborted) sealed(s, key, c);
    });
}

/** Records the encryption and answers the items once sealed. */
function sealed(s: Sealing, key: EncryptionKey, ciphertexts: readonly string[]): void {
  const { ctx, o, tenant, keyId } = s;
  recordEncryption(ctx, o.keys, tenant, keyId, key.version);
  for (let k = 0; k < s.slots.length; k++) {
    const i = s.slots[k] as number;
    s.results[i] = itemOk(
      { ciphertext: ciphertexts[k], key_version: key.version },
      referenceOf(s.items[i] as ItemResult),
    );
  }
  respondItems(ctx, o, s.results, s.batch);
}

/** The encrypt routes: with the key in the path, and with the key in the body. */
export function encryptRoutes(o: ApiOptions): Route[] {
  const handle = (ctx: RequestContext) => handleEncrypt(ctx, o);
  const base = {
    method: 'POST',
    body: 'json',
    bodyLimit: o.maxBodyBytes,
    auth: true,
    audit: 'gateway.encrypt',
    handle,
  } as const;
  return [
    { ...base, name: 'encrypt', pattern: '/v1/encrypt/:key' },
    { ...base, name: 'encrypt', pattern: '/v1/encrypt' },
  ];
}
