/**
 * The error table of OpenKCM: stable code → HTTP status → source → message.
 * Every code here is documented in docs/errors.md (a test checks it). One
 * function maps a source to its default status class (STYLE.md "Errors").
 */

/** Where an error comes from; decides the status class. */
export type ErrorSource = 'client' | 'upstream' | 'internal' | 'keys';

export interface ErrorSpec {
  status: number;
  source: ErrorSource;
  message: string;
}

export const ERRORS = {
  // Field ciphertext and wrapped-key formats (SPEC.md §5). Clients see these only
  // where the format itself is the subject (e.g. a validation endpoint); decrypt
  // paths report them as the opaque `decryption_failed`.
  format_prefix: { status: 400, source: 'client', message: 'not an OpenKCM ciphertext (bad prefix)' },
  format_version: { status: 400, source: 'client', message: 'unsupported ciphertext format version' },
  format_encoding: { status: 400, source: 'client', message: 'ciphertext is not canonical base64url or is too long' },
  format_header: { status: 400, source: 'client', message: 'malformed ciphertext header' },
  format_length: { status: 400, source: 'client', message: 'ciphertext length does not match its header' },
  invalid_tenant_id: { status: 400, source: 'client', message: 'invalid tenant id' },
  invalid_key_id: { status: 400, source: 'client', message: 'invalid key id' },
  invalid_key_version: { status: 400, source: 'client', message: 'invalid key version' },
  invalid_context: { status: 400, source: 'client', message: 'invalid encryption context' },
  plaintext_too_large: { status: 413, source: 'client', message: 'plaintext exceeds the per-field limit' },
  // Decryption: one opaque error whatever the cause; the reason goes to the audit log.
  decryption_failed: { status: 400, source: 'client', message: 'decryption failed' },
  // Crypto backend misuse: these are programming errors, never client input.
  invalid_argument: { status: 500, source: 'internal', message: 'invalid argument to the crypto backend' },
  invalid_key: { status: 500, source: 'internal', message: 'not a key handle' },
  invalid_key_length: { status: 400, source: 'client', message: 'key material must be 32 bytes' },
  key_destroyed: { status: 503, source: 'keys', message: 'key has been destroyed' },
  backend_mismatch: { status: 500, source: 'internal', message: 'key handle belongs to another crypto backend' },
  crypto_failure: { status: 500, source: 'internal', message: 'the crypto library failed' },
  key_memory_unavailable: { status: 503, source: 'keys', message: 'locked key memory is exhausted or unavailable' },
  internal_error: { status: 500, source: 'internal', message: 'internal error' },
  insecure_export_disabled: { status: 500, source: 'internal', message: 'key export is for tests only' },
  key_usage_exhausted: { status: 503, source: 'keys', message: 'key version reached its encryption budget' },
  // Shamir shares (SPEC.md §6).
  invalid_shamir_parameters: { status: 400, source: 'client', message: 'invalid Shamir parameters' },
  invalid_share: { status: 400, source: 'client', message: 'invalid Shamir share' },
  duplicate_share: { status: 400, source: 'client', message: 'duplicate Shamir share' },
  not_enough_shares: { status: 400, source: 'client', message: 'not enough Shamir shares' },
  foreign_share: { status: 400, source: 'client', message: 'share belongs to another split' },
  share_mismatch: { status: 400, source: 'client', message: 'shares do not rebuild the key' },
  // Requests.
  bad_request: { status: 400, source: 'client', message: 'invalid request' },
  not_found: { status: 404, source: 'client', message: 'no such endpoint' },
  method_not_allowed: { status: 405, source: 'client', message: 'method not allowed' },
  body_too_large: { status: 413, source: 'client', message: 'request body exceeds the limit' },
  unsupported_media_type: { status: 415, source: 'client', message: 'content type must be application/json' },
  batch_too_large: { status: 413, source: 'client', message: 'too many batch items' },
  not_ready: { status: 503, source: 'keys', message: 'the gateway cannot obtain keys yet' },
  // Core: state, storage, seal providers (core/src/).
  sealed: { status: 503, source: 'keys', message: 'the Core is sealed' },
  not_initialized: { status: 503, source: 'keys', message: 'the Core has not been initialised' },
  already_initialized: { status: 409, source: 'client', message: 'the Core is already initialised' },
  init_not_confirmed: { status: 409, source: 'client', message: 'the init is not confirmed yet' },
  store_conflict: { status: 409, source: 'client', message: 'record already exists' },
  store_not_found: { status: 404, source: 'client', message: 'record not found' },
  store_unavailable: { status: 503, source: 'keys', message: 'the key store is unavailable' },
  store_schema: { status: 500, source: 'internal', message: 'the database schema is newer than this build' },
  record_tampered: { status: 500, source: 'internal', message: 'a stored record failed its integrity check' },
  seal_provider_unavailable: { status: 503, source: 'keys', message: 'the seal provider is unavailable' },
  seal_provider_rejected: { status: 500, source: 'internal', message: 'the seal provider refused the request' },
  // Tenants and the key hierarchy (Core part 2).
  tenant_not_found: { status: 404, source: 'client', message: 'no such tenant' },
  tenant_exists: { status: 409, source: 'client', message: 'tenant id already used (ids are never reused)' },
  tenant_revoked: { status: 410, source: 'client', message: 'the tenant is revoked' },
  tenant_suspended: { status: 403, source: 'client', message: 'the tenant is suspended: encryption refused' },
  tenant_grace_ended: {
    status: 403,
    source: 'client',
    message: 'the tenant is suspended and its decrypt grace period ended',
  },
  invalid_tenant_state: { status: 409, source: 'client', message: 'the operation is not allowed in the tenant state' },
  l1_unavailable: { status: 503, source: 'keys', message: "the tenant's root key (L1) is unreachable" },
  l1_rejected: { status: 403, source: 'client', message: "the tenant's root key (L1) refused the operation" },
  key_not_found: { status: 404, source: 'client', message: 'no such key or key version' },
  key_exists: { status: 409, source: 'client', message: 'the key already exists' },
  key_revoked: { status: 410, source: 'client', message: 'the key version is revoked' },
  key_version_too_old: {
    status: 403,
    source: 'client',
    message: 'the key version is below the minimum decryption version',
  },
  invalid_key_state: { status: 409, source: 'client', message: 'the operation is not allowed in the key state' },
  // Identity, authorization, quorum, audit (security plane).
  unauthenticated: { status: 401, source: 'client', message: 'a valid client certificate is required' },
  forbidden: { status: 403, source: 'client', message: 'the caller is not allowed to do this' },
  approval_not_found: { status: 404, source: 'client', message: 'no such approval request' },
  approval_closed: { status: 409, source: 'client', message: 'the approval request is no longer pending' },
  approval_self: { status: 403, source: 'client', message: 'the proposer cannot approve their own request' },
  approval_duplicate: { status: 409, source: 'client', message: 'this approver already approved the request' },
  audit_unavailable: { status: 503, source: 'keys', message: 'the audit log cannot be written: operation refused' },
  audit_tampered: { status: 500, source: 'internal', message: 'the audit log failed verification' },
  audit_invalid_record: {
    status: 500,
    source: 'internal',
    message: 'an audit record field is missing, too long or malformed',
  },
  invalid_certificate: { status: 500, source: 'internal', message: 'a certificate or key file is invalid' },
  invalid_policy: { status: 500, source: 'internal', message: 'a policy file (routes or authorization) is invalid' },
  pki_failed: { status: 500, source: 'internal', message: 'the openssl CLI could not issue the certificate' },
  // Edge leasing.
  lease_refused: { status: 403, source: 'client', message: 'the edge may not lease keys of this tenant' },
  core_unavailable: {
    status: 503,
    source: 'keys',
    message: 'the Core cannot be reached and no valid key lease is cached',
  },
  // Gateway proxy: bodies, routes, selectors and field transforms (gateway/src/policy, gateway/src/pipeline).
  json_malformed: { status: 400, source: 'client', message: 'the body is not valid JSON' },
  json_too_deep: { status: 400, source: 'client', message: 'the JSON body nests deeper than the route allows' },
  json_duplicate_key: {
    status: 400,
    source: 'client',
    message: 'the JSON body repeats a member name, or a case variant of one, on a path the policy selects',
  },
  too_many_fields: { status: 413, source: 'client', message: 'the body selects more fields than the route allows' },
  selector_missing: { status: 422, source: 'client', message: 'a field the policy requires is absent' },
  selector_type_mismatch: { status: 422, source: 'client', message: 'a selected field has a type the policy refuses' },
  field_decryption_failed: { status: 422, source: 'client', message: 'an encrypted field could not be decrypted' },
  tenant_unresolved: { status: 400, source: 'client', message: 'the request does not name its tenant' },
  // Gateway proxy: the upstream service (gateway/src/upstream).
  upstream_unavailable: {
    status: 502,
    source: 'upstream',
    message: 'the upstream service could not be reached or broke the connection',
  },
  upstream_timeout: { status: 504, source: 'upstream', message: 'the upstream service did not answer in time' },
  upstream_busy: {
    status: 503,
    source: 'upstream',
    message: 'the upstream service has too many requests waiting; retry later',
  },
  upstream_bad_response: {
    status: 502,
    source: 'upstream',
    message: 'the upstream response could not be processed safely',
  },
  // Gateway HSM offload (the `pkcs11` field backend, gateway/src/hsm).
  hsm_unavailable: {
    status: 503,
    source: 'keys',
    message: 'the HSM token of the pkcs11 field backend failed or cannot be reached',
  },
  // Environment.
  native_unavailable: { status: 500, source: 'internal', message: 'native crypto module unavailable' },
  invalid_config: { status: 500, source: 'internal', message: 'invalid configuration' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Default status of a source: client → 400, upstream → 502, internal → 500, keys → 503. */
export function statusForSource(source: ErrorSource): number {
  switch (source) {
    case 'client':
      return 400;
    case 'upstream':
      return 502;
    case 'internal':
      return 500;
    case 'keys':
      return 503;
  }
}

/** An error with a stable code; `detail` may name the bad field but never holds secrets. */
export class KcmError extends Error {
  override readonly name = 'KcmError';
  readonly status: number;
  readonly source: ErrorSource;
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
  ) {
    const spec: ErrorSpec = ERRORS[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message);
    this.status = spec.status;
    this.source = spec.source;
  }
}
