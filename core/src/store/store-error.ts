/**
 * Errors of the store layer: every failure leaves a store as a KcmError with
 * one of the store codes (or `internal_error` for misuse such as an invalid
 * record or a finished transaction). The driver error, if any, is kept as
 * `cause` for logs; it never reaches a client message.
 */
import { type ErrorCode, KcmError } from '../../../common/src/errors.ts';

/** The codes a store throws. */
export type StoreErrorCode = Extract<
  ErrorCode,
  'store_conflict' | 'store_not_found' | 'store_unavailable' | 'store_schema' | 'internal_error' | 'invalid_config'
>;

/** A KcmError with `code`, `detail` in its message and the driver error as `cause`. */
export function storeError(code: StoreErrorCode, detail: string, cause?: unknown): KcmError {
  const err = new KcmError(code, detail);
  if (cause !== undefined) err.cause = cause;
  return err;
}

/** True when `e` is a KcmError with one of `codes`. */
export function isStoreError(e: unknown, ...codes: StoreErrorCode[]): e is KcmError {
  return e instanceof KcmError && (codes.length === 0 || (codes as string[]).includes(e.code));
}
