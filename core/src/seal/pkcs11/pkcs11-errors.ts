/**
 * PKCS#11 return values (CKR_*) → normalised seal error kinds (ADR-501).
 *
 * Contract of {@link pkcs11SealError}: any value thrown by pkcs11js becomes a
 * SealProviderError; `dropSession` says whether the session is unusable and
 * must be reopened (and the user logged in again) before the next call.
 * A SealProviderError passes through unchanged.
 */
import pkcs11js from 'pkcs11js';
import { type SealErrorKind, SealProviderError } from '../seal-provider.ts';

const P = pkcs11js;

/** The session (or the whole token connection) is gone: reopen it, and let the retry policy try again. */
const SESSION_LOST: readonly number[] = [
  P.CKR_SESSION_HANDLE_INVALID,
  P.CKR_SESSION_CLOSED,
  P.CKR_DEVICE_REMOVED,
  P.CKR_DEVICE_ERROR,
  P.CKR_DEVICE_MEMORY,
  P.CKR_TOKEN_NOT_PRESENT,
  P.CKR_TOKEN_NOT_RECOGNIZED,
  P.CKR_USER_NOT_LOGGED_IN,
  P.CKR_CRYPTOKI_NOT_INITIALIZED,
  // A cached object handle that no longer resolves: a fresh session looks the key up again.
  P.CKR_OBJECT_HANDLE_INVALID,
  P.CKR_KEY_HANDLE_INVALID,
];

const KINDS = new Map<number, SealErrorKind>([
  [P.CKR_PIN_INCORRECT, 'access_denied'],
  [P.CKR_PIN_INVALID, 'access_denied'],
  [P.CKR_PIN_LEN_RANGE, 'access_denied'],
  [P.CKR_PIN_EXPIRED, 'access_denied'],
  [P.CKR_PIN_LOCKED, 'access_denied'],
  [P.CKR_USER_PIN_NOT_INITIALIZED, 'access_denied'],
  [P.CKR_USER_TYPE_INVALID, 'access_denied'],
  [P.CKR_KEY_FUNCTION_NOT_PERMITTED, 'access_denied'],
  [P.CKR_HOST_MEMORY, 'unavailable'],
  [P.CKR_FUNCTION_FAILED, 'unavailable'],
  [P.CKR_SESSION_COUNT, 'unavailable'],
  [P.CKR_MECHANISM_INVALID, 'config'],
  [P.CKR_MECHANISM_PARAM_INVALID, 'config'],
  [P.CKR_KEY_TYPE_INCONSISTENT, 'config'],
  [P.CKR_KEY_SIZE_RANGE, 'config'],
  [P.CKR_FUNCTION_NOT_SUPPORTED, 'config'],
  [P.CKR_TEMPLATE_INCOMPLETE, 'config'],
  [P.CKR_TEMPLATE_INCONSISTENT, 'config'],
  [P.CKR_ATTRIBUTE_VALUE_INVALID, 'config'],
  [P.CKR_SESSION_READ_ONLY, 'config'],
  [P.CKR_ENCRYPTED_DATA_INVALID, 'invalid_ciphertext'],
  [P.CKR_ENCRYPTED_DATA_LEN_RANGE, 'invalid_ciphertext'],
  ...SESSION_LOST.map((rv): [number, SealErrorKind] => [rv, 'unavailable']),
]);

/** What a failed PKCS#11 call means for the caller and for the session. */
export interface Pkcs11Failure {
  error: SealProviderError;
  dropSession: boolean;
}

/**
 * Normalises `err` thrown during `phase` (a short label used in the message,
 * e.g. 'decrypt'). CKR_GENERAL_ERROR is `unavailable` here: the provider maps
 * it to invalid_ciphertext itself, and only around C_Decrypt, where SoftHSM
 * uses it for a GCM tag failure. A return value missing from the table is
 * `unavailable` too (an HSM's vendor codes are mostly transient faults) and
 * drops the session; its name is in the message.
 */
export function pkcs11SealError(err: unknown, phase: string): Pkcs11Failure {
  if (err instanceof SealProviderError) return { error: err, dropSession: false };
  const rv = pkcs11ReturnValue(err);
  if (rv === undefined) {
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { error: new SealProviderError('unavailable', 'pkcs11', `${phase} failed: ${what}`), dropSession: true };
  }
  const name = (err as Error).message || `CKR 0x${rv.toString(16)}`;
  const kind = KINDS.get(rv) ?? 'unavailable';
  const dropSession = SESSION_LOST.includes(rv) || !KINDS.has(rv);
  if (kind === 'invalid_ciphertext') return { error: invalidCiphertext(), dropSession };
  return { error: new SealProviderError(kind, 'pkcs11', `${phase} failed: ${name}`), dropSession };
}

/** The one opaque decryption failure: never says whether the tag, the context or the key was wrong. */
export function invalidCiphertext(): SealProviderError {
  return new SealProviderError('invalid_ciphertext', 'pkcs11', 'data key decryption failed');
}

/** The CK_RV of a pkcs11js Pkcs11Error, or undefined for any other value. */
export function pkcs11ReturnValue(err: unknown): number | undefined {
  if (!(err instanceof Error) || err.name !== 'Pkcs11Error') return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}
