/**
 * AWS KMS / SDK failures → normalised seal error kinds (ADR-501).
 *
 * The table is keyed by the error `name` the SDK gives (the AWS `__type`,
 * whether modelled or not). Errors without a name in the table fall back on
 * the HTTP status (429 → rate_limited, 5xx → unavailable, other 4xx → config),
 * and errors without a status (no HTTP response: connection refused/reset,
 * timeouts, aborts, DNS) are `unavailable`. Messages carry the AWS error name,
 * the HTTP status and the service's message; requests and responses never
 * carry the plaintext in an error path, and no `cause` is attached.
 */
import { type SealErrorKind, SealProviderError } from '../seal-provider.ts';

const KINDS: Readonly<Record<string, SealErrorKind>> = {
  ThrottlingException: 'rate_limited',
  Throttling: 'rate_limited',
  TooManyRequestsException: 'rate_limited',
  RequestLimitExceeded: 'rate_limited',
  LimitExceededException: 'rate_limited',
  KMSInternalException: 'unavailable',
  DependencyTimeoutException: 'unavailable',
  KeyUnavailableException: 'unavailable',
  ServiceUnavailableException: 'unavailable',
  InternalFailure: 'unavailable',
  CustomKeyStoreInvalidStateException: 'unavailable',
  XksProxyUriUnreachableException: 'unavailable',
  XksProxyInvalidResponseException: 'unavailable',
  // The SDK's own credential chain (IMDS/STS/SSO) failing: usually transient;
  // a missing configuration still surfaces, with this message, once retries run out.
  CredentialsProviderError: 'unavailable',
  AccessDeniedException: 'access_denied',
  UnrecognizedClientException: 'access_denied',
  InvalidSignatureException: 'access_denied',
  IncompleteSignatureException: 'access_denied',
  ExpiredTokenException: 'access_denied',
  MissingAuthenticationTokenException: 'access_denied',
  InvalidGrantTokenException: 'access_denied',
  DisabledException: 'key_disabled',
  KMSInvalidStateException: 'key_disabled',
  NotFoundException: 'key_not_found',
  XksKeyNotFoundException: 'key_not_found',
  // Wrong context, wrong/tampered blob, blob of another key: one opaque kind.
  InvalidCiphertextException: 'invalid_ciphertext',
  IncorrectKeyException: 'invalid_ciphertext',
  InvalidKeyUsageException: 'config',
  InvalidArnException: 'config',
  ValidationException: 'config',
  UnsupportedOperationException: 'config',
};

/**
 * Normalises anything thrown by `KMSClient.send` during `operation`
 * ('GenerateDataKey', 'Decrypt'). A SealProviderError passes through.
 */
export function kmsSealError(err: unknown, operation: string): SealProviderError {
  if (err instanceof SealProviderError) return err;
  const e = (err ?? {}) as {
    name?: unknown;
    message?: unknown;
    code?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message.slice(0, 300) : '';
  const kind = kindOf(name, status);
  const detail = [name, status === undefined ? undefined : `HTTP ${status}`, code].filter(Boolean).join(', ');
  const what = kind === 'invalid_ciphertext' ? 'data key decryption failed' : message;
  return new SealProviderError(kind, 'awskms', `${operation} failed (${detail})${what ? `: ${what}` : ''}`);
}

function kindOf(name: string, status: number | undefined): SealErrorKind {
  // Own names only: an error type named `constructor` from the service is unknown, not Object's.
  const known = Object.hasOwn(KINDS, name) ? KINDS[name] : undefined;
  if (known) return known;
  if (status === 429) return 'rate_limited';
  if (status !== undefined && status >= 500) return 'unavailable';
  if (status !== undefined && status >= 400) return 'config';
  // No HTTP response at all: ECONNREFUSED/ECONNRESET, TimeoutError, AbortError, DNS, …
  return 'unavailable';
}
