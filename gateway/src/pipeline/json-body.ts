/**
 * The only way a request or response body is read as JSON in the proxy:
 * media type, size and UTF-8 are checked, in that order, then one scan
 * (json-scan.ts) checks syntax and nesting depth and keeps the selected
 * values' places. Every failure is a typed 4xx KcmError. Nothing is ever
 * passed through because it could not be parsed (ANCHORS.md, the Acra
 * lesson). Error details never quote the body.
 */
import { isUtf8 } from 'node:buffer';
import { KcmError } from '../../../common/src/errors.ts';
import type { BodyLimits } from '../policy/policy-types.ts';
import { type JsonNode, type PlanNode, scanJson } from './json-scan.ts';

/**
 * True for `application/json` and `application/<x>+json`, with no parameter
 * but an optional `charset=utf-8` (RFC 8259 §8.1: JSON exchanged between
 * systems is UTF-8).
 */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  let known = mediaTypes.get(contentType);
  if (known === undefined) {
    known = judgeMediaType(contentType);
    if (mediaTypes.size >= MEDIA_TYPE_CACHE) mediaTypes.clear();
    mediaTypes.set(contentType, known);
  }
  return known;
}

/** Content-Type values already judged (a client sends the same few again and again); bounded. */
const mediaTypes = new Map<string, boolean>();
const MEDIA_TYPE_CACHE = 64;

function judgeMediaType(contentType: string): boolean {
  const [type, ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  if (type === undefined || !/^application\/(?:[a-z0-9.+-]+\+)?json$/.test(type)) return false;
  return params.every((p) => /^charset="?utf-8"?$/.test(p));
}

/** A body checked as one JSON value, with the skeleton of the values its plan selects. */
export interface ScannedJson {
  bytes: Uint8Array;
  /** The root of the skeleton (json-scan.ts). */
  root: JsonNode;
}

/**
 * Checks a whole body and scans it for `plan`. Throws KcmError:
 * `unsupported_media_type` (not JSON per {@link isJsonMediaType}),
 * `body_too_large` (over `limits.bodyBytes`), `json_malformed` (not UTF-8, or
 * not one JSON value), `json_too_deep`, `json_duplicate_key` (json-scan.ts).
 */
export function scanJsonBody(
  body: Uint8Array,
  contentType: string | undefined,
  limits: BodyLimits,
  plan: PlanNode,
): ScannedJson {
  checkJsonBody(body, contentType, limits);
  return scanCheckedBody(body, limits, plan);
}

/** The checks of {@link scanJsonBody} before the scan: media type, size, UTF-8 (same errors). */
export function checkJsonBody(body: Uint8Array, contentType: string | undefined, limits: BodyLimits): void {
  if (!isJsonMediaType(contentType)) throw new KcmError('unsupported_media_type');
  if (body.length > limits.bodyBytes) throw new KcmError('body_too_large', `limit ${limits.bodyBytes} bytes`);
  if (!isUtf8(body)) throw new KcmError('json_malformed', 'not UTF-8');
}

/** The scan of {@link scanJsonBody}, for a body {@link checkJsonBody} passed (same errors). */
export function scanCheckedBody(body: Uint8Array, limits: BodyLimits, plan: PlanNode): ScannedJson {
  return { bytes: body, root: scanJson(body, plan, limits.maxDepth) as JsonNode };
}
