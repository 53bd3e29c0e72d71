/**
 * The only way a request or response body becomes a JSON value in the proxy:
 * media type, size, UTF-8, nesting depth and syntax are checked, in that
 * order, and every failure is a typed 4xx KcmError. Nothing is ever passed
 * through because it could not be parsed (ANCHORS.md, the Acra lesson).
 * Error details never quote the body (V8's JSON.parse messages do, so they
 * are dropped).
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { BodyLimits } from '../policy/policy-types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * True for `application/json` and `application/<x>+json`, with no parameter
 * but an optional `charset=utf-8` (RFC 8259 §8.1: JSON exchanged between
 * systems is UTF-8).
 */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  if (type === undefined || !/^application\/(?:[a-z0-9.+-]+\+)?json$/.test(type)) return false;
  return params.every((p) => /^charset="?utf-8"?$/.test(p));
}

/**
 * Throws KcmError `json_too_deep` when arrays/objects nest deeper than
 * `maxDepth`. A linear scan that skips strings, run before JSON.parse so no
 * later recursive walk can exhaust the stack.
 */
export function assertJsonDepth(text: string, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw new KcmError('json_too_deep', `more than ${maxDepth} levels`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

/**
 * Parses a whole body. Throws KcmError: `unsupported_media_type` (not JSON
 * per {@link isJsonMediaType}), `body_too_large` (over `limits.bodyBytes`),
 * `json_malformed` (not UTF-8, or not one JSON value), `json_too_deep`.
 */
export function parseJsonBody(body: Uint8Array, contentType: string | undefined, limits: BodyLimits): unknown {
  if (!isJsonMediaType(contentType)) throw new KcmError('unsupported_media_type');
  if (body.length > limits.bodyBytes) throw new KcmError('body_too_large', `limit ${limits.bodyBytes} bytes`);
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new KcmError('json_malformed', 'not UTF-8');
  }
  assertJsonDepth(text, limits.maxDepth);
  try {
    return JSON.parse(text);
  } catch {
    throw new KcmError('json_malformed');
  }
}
