/**
 * POST /v1/datakey/:type/:key (type `plaintext` or `wrapped`; or /v1/datakey
 * with body `type` and `key`): a fresh random data key for the caller to use
 * locally (envelope encryption in the app), returned wrapped (and in
 * plaintext for `plaintext`).
 *
 *   → { "tenant"?, "context"?: "<base64>", "bits"?: 128 | 256 | 512 }
 *   ← { "data": { "plaintext": "<base64>", "ciphertext": "okcm:1:…", "key_version": 3 } }
 *
 * The wrapped form is an ordinary field ciphertext of the key bytes (SPEC.md
 * §5) under the key's current L3 version: /v1/decrypt with the same context
 * returns the data key, /v1/rewrap moves it to a newer version.
 */
import { randomFillSync } from 'node:crypto';
import { encryptFieldsAsync } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { recordEncryption } from '../gateway-keys.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { jsonResponse } from '../pipeline/responses.ts';
import type { Route } from '../pipeline/router.ts';
import { type ApiOptions, contextOf, keyIdOf, objectBody, tenantOf } from './api-input.ts';

const BITS = new Set([128, 256, 512]);

async function handleDatakey(ctx: RequestContext, o: ApiOptions): Promise<void> {
  const body = objectBody(ctx);
  const type = ctx.params.type ?? body.type;
  if (type !== 'plaintext' && type !== 'wrapped') {
    throw new KcmError('bad_request', 'type must be "plaintext" or "wrapped"');
  }
  if (ctx.params.type !== undefined && body.type !== undefined && body.type !== ctx.params.type) {
    throw new KcmError('bad_request', 'the type in the path and the body differ');
  }
  const tenant = tenantOf(ctx, body);
  const keyId = keyIdOf(ctx, body) as string;
  const bits = body.bits ?? 256;
  if (typeof bits !== 'number' || !BITS.has(bits)) throw new KcmError('bad_request', 'bits must be 128, 256 or 512');
  const context = contextOf(body);
  const key = await o.keys.encryptionKey(tenant, keyId);
  const dataKey = randomFillSync(Buffer.alloc(bits / 8));
  try {
    const [ciphertext] = await encryptFieldsAsync(
      key.handle,
      { tenant, keyId, keyVersion: key.version },
      [dataKey],
      [context],
    );
    recordEncryption(ctx, o.keys, tenant, keyId, key.version);
    const data: Record<string, unknown> = { ciphertext, key_version: key.version };
    if (type === 'plaintext') data.plaintext = dataKey.toString('base64');
    ctx.response = jsonResponse(200, { data });
  } finally {
    dataKey.fill(0);
  }
}

export function datakeyRoutes(o: ApiOptions): Route[] {
  const handle = (ctx: RequestContext) => handleDatakey(ctx, o);
  const base = {
    method: 'POST',
    body: 'json',
    bodyLimit: 64 * 1024,
    auth: true,
    audit: 'gateway.datakey',
    handle,
  } as const;
  return [
    { ...base, name: 'datakey', pattern: '/v1/datakey/:type/:key' },
    { ...base, name: 'datakey', pattern: '/v1/datakey' },
  ];
}
