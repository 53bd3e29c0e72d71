/** Stable codes thrown by both crypto backends on misuse (never on authentication failure). */
export type BackendErrorCode =
  | 'invalid_argument'
  | 'invalid_key'
  | 'invalid_key_length'
  | 'key_destroyed'
  | 'invalid_shamir_parameters'
  | 'invalid_share'
  | 'duplicate_share'
  | 'not_enough_shares'
  // Not the caller's fault (native only): libcrypto failed, key memory could not be had, a bug.
  | 'crypto_failure'
  | 'key_memory_unavailable'
  | 'internal_error'
  | 'insecure_export_disabled';

/** An Error shaped like the native module's: `code` set, message `[code] detail`. */
export function backendError(code: BackendErrorCode, detail: string): Error & { code: BackendErrorCode } {
  return Object.assign(new Error(`[${code}] ${detail}`), { code });
}
