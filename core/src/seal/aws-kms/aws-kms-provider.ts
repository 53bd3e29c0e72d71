/**
 * Auto-unseal through AWS KMS (ADR-203/204): `GenerateDataKey` (AES_256) makes
 * the seal data key and `Decrypt` recovers it, both with the EncryptionContext
 * { "openkcm:cluster": clusterId, "openkcm:region": region }, which KMS binds
 * into the ciphertext (a blob presented with another context fails) and logs
 * in CloudTrail.
 *
 * keyId = the key ARN that KMS reports (aliases resolve to it, so a later
 * alias retarget does not strand old blobs); decryptDataKey passes it as
 * `KeyId`, and KMS refuses a blob of any other key. keyVersion = the
 * response's `KeyMaterialId` (the key-material generation KMS used; present
 * since KMS on-demand rotation of key material, 2025) or '' when KMS omits it.
 *
 * The SDK never retries (maxAttempts 1; withRetry in ../retry.ts does, for
 * every provider alike) and each call has a deadline (`timeoutMs`, default
 * 2 s: socket timeouts plus an abort signal). Plaintext hygiene: the
 * plaintext Uint8Array the SDK decodes is copied into a fresh, unpooled
 * Buffer and zeroed at once; the HTTP response text itself is a JS string
 * that cannot be wiped (a limit of any JS KMS client).
 */
import { DecryptCommand, GenerateDataKeyCommand, KMSClient, type KMSClientConfig } from '@aws-sdk/client-kms';
import {
  type DataKeyOptions,
  type EncryptedDataKey,
  type SealContext,
  type SealProvider,
  SealProviderError,
} from '../seal-provider.ts';
import { kmsSealError } from './kms-errors.ts';

export const KMS_DATA_KEY_BYTES = 32;
/** KMS's maximum CiphertextBlob size. */
const MAX_CIPHERTEXT_BYTES = 6144;
export const DEFAULT_KMS_TIMEOUT_MS = 2000;

export interface AwsKmsSealConfig {
  /** Key id, key ARN, alias name (alias/…) or alias ARN. */
  keyId: string;
  region: string;
  /** Override of the service endpoint (VPC endpoint, tests); http(s) URL. */
  endpoint?: string;
  /** Static credentials; default: the SDK's provider chain (env, profile, IMDS, …). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Per-call deadline in ms (1..60000); default 2000. */
  timeoutMs?: number;
}

export class AwsKmsSealProvider implements SealProvider {
  readonly type = 'awskms' as const;
  readonly #keyId: string;
  readonly #timeoutMs: number;
  readonly #client: KMSClient;
  #closed = false;

  /** Validates `config` (throws `config` naming the field) and builds the SDK client; no network I/O. */
  constructor(config: AwsKmsSealConfig) {
    const c = validateAwsKmsConfig(config);
    this.#keyId = c.keyId;
    this.#timeoutMs = c.timeoutMs ?? DEFAULT_KMS_TIMEOUT_MS;
    const sdk: KMSClientConfig = {
      region: c.region,
      maxAttempts: 1,
      requestHandler: { requestTimeout: this.#timeoutMs, connectionTimeout: this.#timeoutMs },
    };
    if (c.endpoint !== undefined) sdk.endpoint = c.endpoint;
    if (c.credentials !== undefined) sdk.credentials = { ...c.credentials };
    this.#client = new KMSClient(sdk);
  }

  /**
   * GenerateDataKey(KeySpec AES_256). Throws the normalised kinds of
   * kms-errors.ts; `unavailable` when KMS answers without a 32-byte key.
   * `opts.keyId` names another key than the configured one (a tenant's L1).
   */
  async generateDataKey(
    ctx: SealContext,
    opts?: DataKeyOptions,
  ): Promise<{ plaintext: Buffer; encrypted: EncryptedDataKey }> {
    const keyId = opts?.keyId || this.#keyId;
    const command = new GenerateDataKeyCommand({
      KeyId: keyId,
      KeySpec: 'AES_256',
      EncryptionContext: encryptionContext(ctx),
    });
    const res = await this.#call('GenerateDataKey', (abortSignal) => this.#client.send(command, { abortSignal }));
    const plaintext = takePlaintext(res.Plaintext);
    const blob = res.CiphertextBlob;
    if (!plaintext || !blob || blob.length === 0) {
      plaintext?.fill(0);
      throw new SealProviderError('unavailable', 'awskms', 'GenerateDataKey returned no 32-byte key and ciphertext');
    }
    return {
      plaintext,
      encrypted: {
        keyId: res.KeyId ?? keyId,
        keyVersion: res.KeyMaterialId ?? '',
        ciphertext: Buffer.from(blob),
      },
    };
  }

  /**
   * Decrypt with KeyId = `encrypted.keyId` (or the configured key when empty)
   * and the context. Throws `invalid_ciphertext` (opaque) for a wrong context,
   * a tampered blob or another key's blob, and the normalised kinds otherwise.
   */
  async decryptDataKey(encrypted: EncryptedDataKey, ctx: SealContext): Promise<Buffer> {
    const blob = encrypted?.ciphertext;
    if (!Buffer.isBuffer(blob) || blob.length === 0 || blob.length > MAX_CIPHERTEXT_BYTES) {
      throw new SealProviderError('invalid_ciphertext', 'awskms', 'data key decryption failed');
    }
    const command = new DecryptCommand({
      CiphertextBlob: blob,
      KeyId: encrypted.keyId || this.#keyId,
      EncryptionContext: encryptionContext(ctx),
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    const res = await this.#call('Decrypt', (abortSignal) => this.#client.send(command, { abortSignal }));
    const plaintext = takePlaintext(res.Plaintext);
    if (!plaintext) throw new SealProviderError('invalid_ciphertext', 'awskms', 'data key decryption failed');
    return plaintext;
  }

  /** Destroys the SDK client (closes its keep-alive sockets). Idempotent; later calls throw `config`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  /** Runs one SDK call with the deadline signal; normalises its failure. */
  async #call<T>(operation: string, send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closed) throw new SealProviderError('config', 'awskms', 'provider is closed');
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    try {
      return await send(deadline);
    } catch (err) {
      if (deadline.aborted) {
        throw new SealProviderError('unavailable', 'awskms', `${operation} timed out after ${this.#timeoutMs} ms`);
      }
      throw kmsSealError(err, operation);
    }
  }
}

/**
 * The EncryptionContext of `ctx` (plus `openkcm:tenant` when `ctx.tenant` is
 * set); throws `config` when a field is not a non-empty string.
 */
export function encryptionContext(ctx: SealContext): Record<string, string> {
  const names =
    ctx?.tenant === undefined ? (['clusterId', 'region'] as const) : (['clusterId', 'region', 'tenant'] as const);
  for (const name of names) {
    const v = (ctx as Partial<SealContext> | undefined)?.[name];
    if (typeof v !== 'string' || v.length === 0) {
      throw new SealProviderError('config', 'awskms', `context.${name} must be a non-empty string`);
    }
  }
  const out: Record<string, string> = { 'openkcm:cluster': ctx.clusterId, 'openkcm:region': ctx.region };
  if (ctx.tenant !== undefined) out['openkcm:tenant'] = ctx.tenant;
  return out;
}

/** Copies a 32-byte SDK plaintext into a fresh Buffer and zeroes the SDK's array; undefined (zeroed) otherwise. */
function takePlaintext(pt: Uint8Array | undefined): Buffer | undefined {
  if (!pt) return undefined;
  try {
    if (pt.length !== KMS_DATA_KEY_BYTES) return undefined;
    const out = Buffer.alloc(KMS_DATA_KEY_BYTES);
    out.set(pt);
    return out;
  } finally {
    pt.fill(0);
  }
}

/** Throws SealProviderError `config` naming the first bad field. */
export function validateAwsKmsConfig(config: AwsKmsSealConfig): AwsKmsSealConfig {
  const c = (config ?? {}) as unknown as Record<string, unknown>;
  const bad = (field: string, want: string) =>
    new SealProviderError('config', 'awskms', `config.${field} must be ${want} (got ${describe(c, field)})`);
  if (typeof c.keyId !== 'string' || c.keyId.length === 0 || c.keyId.length > 2048) {
    throw bad('keyId', 'a key id, key ARN or alias of 1..2048 characters');
  }
  if (typeof c.region !== 'string' || !/^[a-z]{2,}(-[a-z0-9]+)+-\d+$/.test(c.region)) {
    throw bad('region', 'an AWS region such as eu-central-1');
  }
  if (c.endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = typeof c.endpoint === 'string' ? new URL(c.endpoint) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw bad('endpoint', 'an http(s) URL');
  }
  if (c.credentials !== undefined) {
    const cr = (c.credentials ?? {}) as Record<string, unknown>;
    for (const f of ['accessKeyId', 'secretAccessKey'] as const) {
      if (typeof cr[f] !== 'string' || cr[f] === '') {
        throw new SealProviderError('config', 'awskms', `config.credentials.${f} must be a non-empty string`);
      }
    }
    if (cr.sessionToken !== undefined && typeof cr.sessionToken !== 'string') {
      throw new SealProviderError('config', 'awskms', 'config.credentials.sessionToken must be a string');
    }
  }
  const t = c.timeoutMs;
  if (t !== undefined && (!Number.isInteger(t) || (t as number) < 1 || (t as number) > 60_000)) {
    throw bad('timeoutMs', 'an integer number of ms in 1..60000');
  }
  return config;
}

/** The bad value for an error message; credentials are never echoed. */
function describe(c: Record<string, unknown>, field: string): string {
  const v = c[field];
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : String(v);
}
