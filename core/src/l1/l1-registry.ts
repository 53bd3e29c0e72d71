/**
 * The tenants' root keys (L1, ADR-501/502): named provider instances from the
 * Core configuration (`l1Providers: { [name]: SealConfig }`), built with the
 * same drivers as the seal (AWS KMS, PKCS#11, dev) through openSealProvider.
 * A tenant's L1Ref names one instance plus the key (ARN / label) in it; every
 * call binds the cluster, the region and the tenant (SealContext.tenant).
 *
 * Calls are retried with the one retry policy (../seal/retry.ts) and mapped
 * to `l1_unavailable` / `l1_rejected` (l1-errors.ts). Providers open lazily
 * (DeferredSealProvider): one that cannot start makes its tenants'
 * L1 calls fail `l1_unavailable`, never the Core's start.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { isKeyId } from '../../../common/src/format/ids.ts';
import { DeferredSealProvider } from '../seal/deferred-provider.ts';
import { openSealProvider, type SealConfig } from '../seal/open-seal-provider.ts';
import { type RetryOptions, withRetry } from '../seal/retry.ts';
import type { EncryptedDataKey, SealContext, SealProvider } from '../seal/seal-provider.ts';
import type { L1Ref } from '../store/records.ts';
import { l1Error } from './l1-errors.ts';

/** Longest provider key id accepted in an L1Ref (AWS key ARNs and alias ARNs fit). */
export const L1_KEY_ID_MAX = 2048;

export interface L1RegistryOptions {
  /** Development mode: the only mode that accepts `type: 'dev'` providers. */
  devMode: boolean;
  /** Retry of every L1 call; default 3 attempts, 50 ms base, 1 s cap. */
  retry?: Pick<RetryOptions, 'attempts' | 'baseMs' | 'maxMs'>;
}

const DEFAULT_RETRY = { attempts: 3, baseMs: 50, maxMs: 1000 };

/**
 * Validates the `l1Providers` section: an object of name (1-64 characters of
 * A-Z a-z 0-9 - . _ ~) → seal config of type awskms, pkcs11 or dev (dev only
 * in devMode). Throws KcmError `invalid_config` naming the field.
 */
export function l1ProvidersConfig(v: unknown, devMode: boolean): Record<string, SealConfig> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new KcmError('invalid_config', 'l1Providers must be an object');
  }
  // No prototype: a provider named `__proto__` or `constructor` is a name like any other, and an
  // unknown name never finds a member of Object.
  const out: Record<string, SealConfig> = Object.create(null);
  for (const [name, c] of Object.entries(v as Record<string, unknown>)) {
    if (!isKeyId(name))
      throw new KcmError('invalid_config', `l1Providers: bad provider name (1-64 of A-Z a-z 0-9 - . _ ~)`);
    const type = (c as { type?: unknown } | null)?.type;
    if (type !== 'awskms' && type !== 'pkcs11' && type !== 'dev') {
      throw new KcmError('invalid_config', `l1Providers.${name}.type must be awskms, pkcs11 or dev`);
    }
    if (type === 'dev' && !devMode) {
      throw new KcmError('invalid_config', `l1Providers.${name}: "dev" is refused outside development mode`);
    }
    out[name] = c as SealConfig;
  }
  return out;
}

export class L1Registry {
  readonly #configs: Map<string, SealConfig>;
  readonly #providers = new Map<string, SealProvider>();
  readonly #retry: Pick<RetryOptions, 'attempts' | 'baseMs' | 'maxMs'>;
  readonly #devMode: boolean;

  /** Keeps the configs (validate them with l1ProvidersConfig first); opens nothing yet. */
  constructor(configs: Readonly<Record<string, SealConfig>>, o: L1RegistryOptions) {
    this.#configs = new Map(Object.entries(configs));
    this.#retry = o.retry ?? DEFAULT_RETRY;
    this.#devMode = o.devMode;
  }

  /** Configured provider names, sorted. */
  names(): string[] {
    return [...this.#configs.keys()].sort();
  }

  /**
   * Checks a tenant's L1Ref against the configuration: the provider exists,
   * the key id is 1..2048 characters, and the region equals the provider's
   * (AWS KMS: its configured region; PKCS#11 and dev: ''). Throws `bad_request`
   * naming the field.
   */
  checkRef(ref: L1Ref): void {
    const c = this.#configs.get(ref?.provider);
    if (!c)
      throw new KcmError(
        'bad_request',
        `l1.provider: no L1 provider named ${JSON.stringify(String(ref?.provider).slice(0, 64))}`,
      );
    if (typeof ref.keyId !== 'string' || ref.keyId.length === 0 || ref.keyId.length > L1_KEY_ID_MAX) {
      throw new KcmError('bad_request', `l1.keyId must be 1-${L1_KEY_ID_MAX} characters`);
    }
    const region = c.type === 'awskms' ? c.region : '';
    if (ref.region !== region) {
      throw new KcmError('bad_request', `l1.region must be ${JSON.stringify(region)} for provider ${ref.provider}`);
    }
  }

  /** The provider type of a configured name (for status APIs); undefined when unknown. */
  typeOf(name: string): SealConfig['type'] | undefined {
    return this.#configs.get(name)?.type;
  }

  #provider(name: string): SealProvider {
    let p = this.#providers.get(name);
    if (p) return p;
    const c = this.#configs.get(name);
    if (!c) throw new KcmError('l1_unavailable', `no L1 provider named ${name} is configured`);
    p = new DeferredSealProvider(c.type, () => openSealProvider(c, { devMode: this.#devMode }));
    this.#providers.set(name, p);
    return p;
  }

  /**
   * A fresh data key from the tenant's L1 key: plaintext (import it into native
   * memory at once; importKey zeroes it) and the provider ciphertext.
   * Throws `l1_unavailable` / `l1_rejected`.
   */
  async generateDataKey(ref: L1Ref, ctx: SealContext): Promise<{ plaintext: Buffer; encrypted: EncryptedDataKey }> {
    const p = this.#provider(ref.provider);
    try {
      return await withRetry(() => p.generateDataKey(ctx, { keyId: ref.keyId }), this.#retry);
    } catch (err) {
      throw l1Error(err, ref.provider);
    }
  }

  /** The plaintext of a data key made by generateDataKey with the same context. Throws `l1_unavailable` / `l1_rejected`. */
  async decryptDataKey(ref: L1Ref, encrypted: EncryptedDataKey, ctx: SealContext): Promise<Buffer> {
    const p = this.#provider(ref.provider);
    try {
      return await withRetry(() => p.decryptDataKey(encrypted, ctx), this.#retry);
    } catch (err) {
      throw l1Error(err, ref.provider);
    }
  }

  /** Closes every opened provider. */
  async close(): Promise<void> {
    const all = [...this.#providers.values()];
    this.#providers.clear();
    await Promise.all(all.map((p) => p.close().catch(() => undefined)));
  }
}
