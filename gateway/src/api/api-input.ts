/**
 * Request fields of the direct API, validated once: the JSON object, the key
 * id (path `:key` or body `key`), the batch (`batch` or Vault's
 * `batch_input`), plaintexts (base64 by default, or UTF-8 strings with
 * `"encoding": "utf8"`), contexts (base64, ≤ 4 KiB) and references.
 * Item-level problems throw KcmErrors that the endpoint turns into that
 * item's error; request-level problems answer the whole request.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { MAX_CONTEXT_BYTES } from '../../../common/src/format/envelope.ts';
import { assertKeyId } from '../../../common/src/format/ids.ts';
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import type { GatewayKeys } from '../gateway-keys.ts';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import { resolveTenant, TENANT_HEADER } from '../pipeline/caller.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { isReservedContext } from '../pipeline/context-domains.ts';
import { dataJson, errorBody, jsonResponse, jsonTextResponse, toKcmError } from '../pipeline/responses.ts';

export interface ApiOptions {
  keys: GatewayKeys;
  metrics: GatewayMetrics;
  /** Items one batch may hold (413 `batch_too_large` past it). */
  maxBatchItems: number;
  /** Body limit of the direct API routes. */
  maxBodyBytes: number;
}

export type Encoding = 'base64' | 'utf8';
export type Item = Record<string, unknown>;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const REFERENCE_MAX = 256;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as an object, or 400. */
export function objectBody(ctx: RequestContext): Item {
  const v = ctx.json;
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new KcmError('bad_request', 'body must be a JSON object');
  return v as Item;
}

/** The tenant of the request (see pipeline/caller.ts). */
export function tenantOf(ctx: RequestContext, body: Item): string {
  const tenant = resolveTenant(ctx.caller, ctx.headers[TENANT_HEADER], body.tenant);
  ctx.tenant = tenant;
  return tenant;
}

/** The L3 key id: path `:key` or body `key` (they must agree). Throws `bad_request` / `invalid_key_id`. */
export function keyIdOf(ctx: RequestContext, body: Item, required = true): string | undefined {
  const fromPath = ctx.params.key;
  const fromBody = body.key;
  if (fromPath !== undefined && fromBody !== undefined && fromPath !== fromBody) {
    throw new KcmError('bad_request', 'the key in the path and the body differ');
  }
  const key = fromPath ?? fromBody;
  if (key === undefined) {
    if (required) throw new KcmError('bad_request', 'name the key: /v1/<op>/<key> or the body field key');
    return undefined;
  }
  assertKeyId(key);
  ctx.keyId = key as string;
  return key;
}

/** `base64` unless the body says `"encoding": "utf8"`. */
export function encodingOf(body: Item): Encoding {
  const e = body.encoding;
  if (e === undefined || e === 'base64') return 'base64';
  if (e === 'utf8') return 'utf8';
  throw new KcmError('bad_request', 'encoding must be "base64" or "utf8"');
}

/** The items: `batch` / `batch_input` (1…max objects), or the body itself as one item. */
export function itemsOf(body: Item, max: number): { items: Item[]; batch: boolean } {
  if (body.batch !== undefined && body.batch_input !== undefined) {
    throw new KcmError('bad_request', 'give batch or batch_input, not both');
  }
  const batch = body.batch ?? body.batch_input;
  if (batch === undefined) return { items: [body], batch: false };
  if (!Array.isArray(batch) || batch.length === 0) throw new KcmError('bad_request', 'batch must be a non-empty array');
  if (batch.length > max) throw new KcmError('batch_too_large', `at most ${max} items`);
  return { items: batch as Item[], batch: true };
}

/**
 * The bytes of `value` when it is standard padded base64 (what {@link BASE64}
 * matches), else undefined. Canonical text (every encoder's output) is
 * recognised by re-encoding, which is several times cheaper than the regex on
 * kilobytes; only other text goes through the regex.
 */
function base64Bytes(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || value.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(value, 'base64');
  if (bytes.toString('base64') === value) return bytes;
  return BASE64.test(value) ? bytes : undefined;
}

/** Strict standard base64 (with padding) → bytes; `bad_request` naming the field otherwise. */
export function decodeBase64(value: unknown, field: string): Buffer {
  const bytes = base64Bytes(value);
  if (!bytes) throw new KcmError('bad_request', `${field} must be base64`);
  return bytes;
}

/** An item's plaintext in the request's encoding (must be present; may be empty). */
export function plaintextOf(item: Item, encoding: Encoding): Buffer {
  if (typeof item !== 'object' || item === null) throw new KcmError('bad_request', 'a batch item must be an object');
  const v = item.plaintext;
  if (encoding === 'utf8') {
    if (typeof v !== 'string') throw new KcmError('bad_request', 'plaintext must be a string');
    // A lone surrogate has no UTF-8 form: it would be sealed as U+FFFD, i.e. not what was sent.
    if (hasLoneSurrogate(v)) throw new KcmError('bad_request', 'plaintext is not well-formed Unicode');
    return Buffer.from(v, 'utf8');
  }
  return decodeBase64(v, 'plaintext');
}

/** An item's ciphertext string. */
export function ciphertextOf(item: Item): string {
  if (typeof item !== 'object' || item === null) throw new KcmError('bad_request', 'a batch item must be an object');
  const v = item.ciphertext;
  if (typeof v !== 'string' || v.length === 0)
    throw new KcmError('bad_request', 'ciphertext must be a non-empty string');
  return v;
}

const EMPTY = Buffer.alloc(0);

/**
 * An item's context (base64, ≤ 4 KiB), or empty. Throws `invalid_context`,
 * also for a context in a reserved domain (the proxy's field contexts,
 * context-domains.ts): proxied fields are read only through their route.
 */
export function contextOf(item: Item): Buffer {
  const v = (item as Item | null)?.context;
  if (v === undefined) return EMPTY;
  const c = base64Bytes(v);
  if (!c) throw new KcmError('invalid_context', 'context must be base64');
  if (c.length > MAX_CONTEXT_BYTES)
    throw new KcmError('invalid_context', `context longer than ${MAX_CONTEXT_BYTES} bytes`);
  if (isReservedContext(c)) throw new KcmError('invalid_context', 'this context prefix is reserved for proxied fields');
  return c;
}

/** An item's reference, echoed in its result (≤ 256 characters), or undefined. */
export function referenceOf(item: Item): string | undefined {
  const v = (item as Item | null)?.reference;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > REFERENCE_MAX) return undefined;
  return v;
}

/** Encodes a plaintext for the response, then zeroes it. */
export function encodePlaintext(plaintext: Buffer, encoding: Encoding): string {
  try {
    if (encoding === 'base64') return plaintext.toString('base64');
    try {
      return utf8.decode(plaintext);
    } catch {
      throw new KcmError('bad_request', 'plaintext is not UTF-8: ask with "encoding": "base64"');
    }
  } finally {
    plaintext.fill(0);
  }
}

/** A per-item result: either data fields or an error, with the reference when given. */
export type ItemResult = Record<string, unknown>;

/** The item result of a client error; internal and key-service errors are rethrown (they abort the batch). */
export function itemError(err: unknown, reference: string | undefined): ItemResult {
  const k = toKcmError(err);
  if (k.source !== 'client') throw err;
  return reference === undefined ? { error: errorBody(k) } : { reference, error: errorBody(k) };
}

/** Adds the reference to a successful item. */
export function itemOk(data: ItemResult, reference: string | undefined): ItemResult {
  if (reference !== undefined) data.reference = reference;
  return data;
}

/**
 * The response: a batch answers 200 with `data.batch_results` (per-item data
 * or error); a single item answers its data, or its error with the error's status.
 */
export function respondItems(ctx: RequestContext, o: ApiOptions, results: ItemResult[], batch: boolean): void {
  let failed = 0;
  for (const r of results) if (r.error) failed++;
  o.metrics.batchItems.inc({ route: ctx.routeName, outcome: 'ok' }, results.length - failed);
  if (failed) o.metrics.batchItems.inc({ route: ctx.routeName, outcome: 'error' }, failed);
  if (batch) {
    ctx.response = jsonResponse(200, { data: { batch_results: results } });
    return;
  }
  const only = results[0] as ItemResult;
  if (only.error) {
    const code = (only.error as { code: string }).code;
    const err = new KcmError(code as 'bad_request');
    ctx.error = err;
    ctx.response = jsonResponse(err.status, { error: only.error });
    return;
  }
  ctx.response = jsonTextResponse(200, dataJson(only));
}
