/**
 * A SealProvider that may fail to start (an HSM whose token store is
 * unreadable, a module that will not initialise) without taking the Core down:
 * it opens the real provider on first use and, while it cannot, every call
 * fails with `unavailable` — which the retry policy retries and the Core
 * answers by staying sealed and accepting recovery shares.
 */
import {
  type DataKeyOptions,
  type EncryptedDataKey,
  type SealContext,
  type SealProvider,
  SealProviderError,
} from './seal-provider.ts';

export class DeferredSealProvider implements SealProvider {
  #inner: SealProvider | null = null;
  #lastError: string | null = null;

  constructor(
    readonly type: SealProvider['type'],
    private readonly open: () => SealProvider,
  ) {
    try {
      this.#inner = open();
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
    }
  }

  /** Why the provider could not be opened, while it cannot. */
  get startError(): string | null {
    return this.#inner ? null : this.#lastError;
  }

  #get(): SealProvider {
    if (this.#inner) return this.#inner;
    try {
      this.#inner = this.open();
      this.#lastError = null;
      return this.#inner;
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
      throw new SealProviderError('unavailable', this.type, `provider cannot start: ${this.#lastError}`);
    }
  }

  generateDataKey(
    ctx: SealContext,
    opts?: DataKeyOptions,
  ): Promise<{ plaintext: Buffer; encrypted: EncryptedDataKey }> {
    return Promise.resolve().then(() => this.#get().generateDataKey(ctx, opts));
  }

  decryptDataKey(encrypted: EncryptedDataKey, ctx: SealContext): Promise<Buffer> {
    return Promise.resolve().then(() => this.#get().decryptDataKey(encrypted, ctx));
  }

  async close(): Promise<void> {
    await this.#inner?.close();
  }
}
