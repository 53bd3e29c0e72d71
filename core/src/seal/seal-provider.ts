/**
 * Auto-unseal providers (ADR-203/204): a provider protects a 32-byte seal data
 * key; the MasterKey itself is wrapped under that data key inside the native
 * module (AAD = cluster id + region), so the MasterKey never leaves native
 * memory. The plaintext data key passes through JavaScript for an instant: the
 * caller imports it into native memory at once (`Crypto.importKey`, which zeroes
 * the buffer). Each provider lives in its own folder (aws-kms/, pkcs11/, dev/);
 * the rest of the Core uses only this interface.
 */

/** Bound into every provider call (AWS KMS EncryptionContext, GCM AAD in the HSM). */
export interface SealContext {
  clusterId: string;
  region: string;
  /**
   * Set when the provider serves as a tenant's L1 (core/src/l1/): the tenant id
   * is then bound too (AWS EncryptionContext `openkcm:tenant`, the l1-context
   * AAD of seal-context.ts), so one tenant's blob never opens as another's.
   */
  tenant?: string;
}

/** Per-call options of generateDataKey. */
export interface DataKeyOptions {
  /** Provider key to use instead of the configured one (a tenant's L1 key id/ARN/label). */
  keyId?: string;
}

export interface EncryptedDataKey {
  /** Provider key id/ARN/label that encrypted it. */
  keyId: string;
  /** Provider key version if the provider reports one, else ''. */
  keyVersion: string;
  ciphertext: Buffer;
}

export interface SealProvider {
  readonly type: 'awskms' | 'pkcs11' | 'dev';
  /** A fresh 32-byte data key: plaintext (import it and let import zero it) and encrypted under the provider key. */
  generateDataKey(ctx: SealContext, opts?: DataKeyOptions): Promise<{ plaintext: Buffer; encrypted: EncryptedDataKey }>;
  /** The plaintext of a data key made by generateDataKey under the same context. */
  decryptDataKey(encrypted: EncryptedDataKey, ctx: SealContext): Promise<Buffer>;
  /** Releases connections/sessions. */
  close(): Promise<void>;
}

/**
 * Normalised provider failures (ADR-501): one kind per way a provider can fail,
 * so one retry policy serves all. `retryable` kinds: rate_limited, unavailable.
 */
export type SealErrorKind =
  | 'rate_limited'
  | 'unavailable'
  | 'access_denied'
  | 'key_disabled'
  | 'key_not_found'
  | 'invalid_ciphertext'
  | 'config';

export class SealProviderError extends Error {
  override readonly name = 'SealProviderError';
  constructor(
    readonly kind: SealErrorKind,
    readonly provider: SealProvider['type'],
    message: string,
  ) {
    super(`${provider}: ${message}`);
  }

  get retryable(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'unavailable';
  }
}
