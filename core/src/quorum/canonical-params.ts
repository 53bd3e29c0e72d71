/**
 * Canonical JSON for the parameters of an approval request (ADR-404): the
 * text the approvers see is the exact text that is stored, MAC'd and handed
 * to the executor, so two spellings of the same parameters are one request.
 *
 * Canonical form: JSON.stringify with object keys sorted by UTF-16 code units,
 * no whitespace. Only plain JSON values are accepted: objects, arrays,
 * strings, booleans, null and finite numbers (integers must be safe). Bounds:
 * nesting depth ≤ 8, canonical text ≤ MAX_PARAMS_BYTES UTF-8 bytes.
 */
import { KcmError } from '../../../common/src/errors.ts';

/** Largest canonical parameter text accepted (UTF-8 bytes). */
export const MAX_PARAMS_BYTES = 8 * 1024;
/** Deepest nesting of objects/arrays accepted. */
export const MAX_PARAMS_DEPTH = 8;

/** A JSON value as the parameters of an operation may hold it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

function bad(path: string, rule: string): never {
  throw new KcmError('bad_request', `params${path} ${rule}`);
}

/** Serialises `v` canonically (sorted keys, no whitespace), refusing anything that is not plain JSON. */
function write(v: unknown, path: string, depth: number): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) bad(path, 'must be a finite number');
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) bad(path, 'is an integer beyond 2^53');
    return JSON.stringify(v);
  }
  if (typeof v !== 'object') bad(path, `has a ${typeof v}, not a JSON value`);
  if (depth >= MAX_PARAMS_DEPTH) bad(path, `nests deeper than ${MAX_PARAMS_DEPTH} levels`);
  if (Array.isArray(v)) return `[${v.map((x, i) => write(x, `${path}[${i}]`, depth + 1)).join(',')}]`;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) bad(path, 'must be a plain JSON object');
  // Object.keys would list integer-like keys first; sort() orders every key by UTF-16 code units.
  const keys = Object.keys(v).sort();
  const o = v as Record<string, unknown>;
  return `{${keys.map((k) => `${JSON.stringify(k)}:${write(o[k], `${path}.${k}`, depth + 1)}`).join(',')}}`;
}

/**
 * The canonical JSON text of `params`. Throws KcmError `bad_request` naming
 * the offending path for a value that is not plain JSON, too deep, or whose
 * canonical text exceeds MAX_PARAMS_BYTES.
 */
export function canonicalParams(params: unknown): string {
  const text = write(params, '', 0);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_PARAMS_BYTES) bad('', `take ${size} bytes as canonical JSON (at most ${MAX_PARAMS_BYTES})`);
  return text;
}

/** Parses stored canonical text back into a value; throws `internal_error` when it is not JSON. */
export function parseParams(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw new KcmError('internal_error', 'stored approval params are not JSON');
  }
}
