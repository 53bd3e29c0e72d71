/**
 * Building responses: JSON bodies and the one error shape
 * `{ "error": { "code", "message" } }`. Statuses come from the error table;
 * anything that is not a KcmError is internal (statusForSource('internal'))
 * and its detail goes to the log only.
 */
import { ERRORS, KcmError, statusForSource } from '../../../common/src/errors.ts';
import type { PipelineResponse } from './context.ts';

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;

export function jsonResponse(status: number, value: unknown): PipelineResponse {
  return { status, headers: { ...JSON_HEADERS }, body: JSON.stringify(value) };
}

/** The public body of an error: internal errors say only their code. */
export function errorBody(err: KcmError): { code: string; message: string } {
  const internal = err.source === 'internal';
  return { code: err.code, message: internal ? ERRORS[err.code].message : err.message };
}

/**
 * Maps any thrown value to a KcmError: KcmErrors as they are, errors carrying
 * a known table code (the crypto face's CryptoError) to that code, anything
 * else to `internal_error`.
 */
export function toKcmError(err: unknown): KcmError {
  if (err instanceof KcmError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && Object.hasOwn(ERRORS, code)) {
    return new KcmError(code as keyof typeof ERRORS);
  }
  return new KcmError('internal_error');
}

/** The status of an error: its table status, whose class statusForSource fixes. */
export function statusOf(err: KcmError): number {
  return err.status ?? statusForSource(err.source);
}

export function errorResponse(err: KcmError): PipelineResponse {
  return jsonResponse(statusOf(err), { error: errorBody(err) });
}
