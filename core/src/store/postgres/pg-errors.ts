/**
 * node-postgres errors → store KcmErrors, by SQLSTATE: 23505 → `store_conflict`;
 * serialization failures (40001, 40P01 deadlock) → `store_unavailable`
 * marked retryable (see isSerializationFailure); connection, resource,
 * authentication and server-shutdown classes (08, 28, 3D, 53, 57P, 58) and
 * every client-side error without a SQLSTATE (refused, reset, timed out,
 * pool ended) → `store_unavailable`; anything else (missing table, CHECK
 * violation) → `internal_error`. KcmErrors pass through unchanged. The
 * message keeps the server's message, never its DETAIL (which quotes values).
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { storeError } from '../store-error.ts';

const SERIALIZATION = new Set(['40001', '40P01']);
const UNAVAILABLE = /^(08|28|3D|53|57P|58)/;

function sqlstate(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function mapPgError(e: unknown, op: string): KcmError {
  if (e instanceof KcmError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const code = sqlstate(e);
  if (code === undefined) return storeError('store_unavailable', `${op}: ${message}`, e);
  if (code === '23505') return storeError('store_conflict', `${op}: ${message}`, e);
  if (SERIALIZATION.has(code)) return storeError('store_unavailable', `${op}: serialization failure (${code})`, e);
  if (UNAVAILABLE.test(code)) return storeError('store_unavailable', `${op}: ${code}: ${message}`, e);
  return storeError('internal_error', `${op}: ${code}: ${message}`, e);
}

/** True for a mapped serialization failure or deadlock: the whole transaction may be retried. */
export function isSerializationFailure(e: unknown): boolean {
  if (!(e instanceof KcmError)) return false;
  const code = sqlstate(e.cause);
  return code !== undefined && SERIALIZATION.has(code);
}
